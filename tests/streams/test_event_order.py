"""Event-time order across source partitions, without a broker (streams.ordering, DetectionPipeline).

The topology is simulated as Kafka runs it: events keyed by root task land on source partitions
(murmur2, as the producer does), ingest instances read the sources at unrelated speeds (random
chunks, in a random order) and forward each record to the workflow's internal partition followed
by a watermark to every partition; detect reads each internal partition in order, in random
batches. Whatever the interleaving, the detect stage must raise what ``burnguard replay`` raises.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from burnguard.replay import replay_file
from burnguard.simulator.fleet import FleetSimulator
from detectors.config import BurnguardConfig
from schemas.timefmt import parse_ts
from streams.feed import encode_event
from streams.ordering import EventTimeMerge, Mark
from streams.pipeline import DetectionPipeline, Record, Watermark, route_with_time
from streams.topics import partition_for_key

NOW = 1_793_577_600.0
SOURCES, PARTITIONS = 4, 4


def test_records_leave_in_event_time_order_once_no_source_can_precede_them() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge(["s:0", "s:1", "s:2"])
    merge.add("s:0", 5.0, "a5")
    merge.add("s:1", 3.0, "b3")
    assert merge.release() == []  # s:2 has not been heard of
    merge.watermark("s:2", 4.0, idle=False)
    assert merge.release() == ["b3"]  # s:2 may still send something at 4.0: a5 waits
    merge.watermark("s:2", None, idle=True)  # read to its end
    assert merge.release() == []  # s:1 is empty and may still send something earlier than 5.0
    merge.watermark("s:1", 9.0, idle=False)
    assert merge.release() == ["a5"]
    assert merge.reached() == 5.0  # s:0 has got no further
    merge.add("s:2", 1.0, "c1")  # late: earlier than what has left, and s:2 is no longer idle
    assert merge.release() == ["c1"]


def test_ties_leave_in_source_order_and_a_full_merge_gives_up_waiting() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge(["s:0", "s:1"], max_held=2)
    merge.add("s:1", 7.0, "b")
    merge.watermark("s:0", 7.0, idle=False)
    assert merge.release() == []  # s:0 may still send a 7.0, and it comes first
    merge.add("s:0", 7.0, "a")
    merge.add("s:0", 8.0, "a8")
    assert merge.release() == ["a", "b"]
    merge.add("s:0", 9.0, "a9")
    merge.add("s:0", 10.0, "a10")  # three held, s:1 silent: the oldest leaves anyway
    assert merge.release() == ["a8"] and merge.forced == 1 and merge.held == 2


def fleet(tmp_path: Path) -> tuple[list[tuple[bytes, bytes]], list[dict[str, Any]], float]:
    """18 simulated hours (about 17k events, three task-level incidents; the first is not on a whole
    minute, where every engine ticks) and what replay raises on it up to the last watermark (the
    worker never ticks past it)."""
    events = list(
        FleetSimulator(seed=3, hours=18, scale=0.25, incidents=("runaway_loop", "subagent_explosion", "zombie_task"))
        .events()
    )
    lines = [encode_event(ev) for ev in events]
    path = tmp_path / "fleet.jsonl"
    path.write_bytes(b"".join(value + b"\n" for _, value in lines))
    expected = [orjson.loads(a.to_json()) for a in replay_file(path, None).anomalies]
    cutoff = max(ev["ts"] for ev in events) - BurnguardConfig().lateness_s
    return lines, expected, cutoff


def task_level(anomalies: list[dict[str, Any]], cutoff: float) -> Counter[tuple[Any, ...]]:
    return Counter(
        (a["anomaly_id"], a["detector"], a["status"], a["severity"], a["observed"])
        for a in anomalies
        # young_runaway pools every partition's tasks: the roll-up stage's (tests/streams/test_rollup.py),
        # and these partitions run without one
        if "root_task_id" in a["scope"] and a["detector"] != "young_runaway" and parse_ts(a["ts"]) <= cutoff
    )


def through_partitions(
    lines: list[tuple[bytes, bytes]],
    rng: random.Random,
    crash_at: int | None = None,
    idle_first: str = "",
    ingest_restarts: float = 0.0,
) -> Any:
    """The fleet through simulated ingest and detect (see the module docstring); with ``crash_at``,
    the detect stage loses its memory after that many batches and restarts from its table, its
    partitions redelivered from the first record it had not acknowledged. With ``idle_first``, every
    source was found idle before the fleet was produced (a burst into an empty topic), the idle
    check telling the end offsets it saw (``"ends"``: all 0) or not (``"bare"``, as before). With
    ``ingest_restarts``, the chance after each ingest chunk that the ingest dies before committing
    it: its successor forwards every source again from its last committed offset."""
    sources: list[list[bytes]] = [[] for _ in range(SOURCES)]
    for key, value in lines:
        sources[partition_for_key(key, SOURCES)].append(value)
    logs: list[list[Record | Watermark]] = [[] for _ in range(PARTITIONS)]  # the internal topic
    read = [0] * SOURCES
    frontier: list[float | None] = [None] * SOURCES

    def pipeline(table: dict[bytes, bytes]) -> DetectionPipeline:
        pipe = DetectionPipeline(
            BurnguardConfig(), partitions=PARTITIONS, clock=lambda: NOW, sources=[f"ev:{s}" for s in range(SOURCES)]
        )
        for p in range(PARTITIONS):
            pipe.load(p, table)
        return pipe

    table: dict[bytes, bytes] = {}
    pipe, consumed, acked = pipeline(table), [0] * PARTITIONS, [-1] * PARTITIONS
    out: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    batches = 0
    names = [f"ev:{s}" for s in range(SOURCES)]
    if idle_first:
        before = {name: 0 for name in names} if idle_first == "ends" else None
        for p in range(PARTITIONS):
            logs[p].append(Watermark(p, 0, {name: Mark(None, True, None, before) for name in names}))
    produced = {name: len(sources[s]) for s, name in enumerate(names)}

    def detect(everything: bool = False) -> None:
        nonlocal pipe, batches
        items: list[Record | Watermark] = []
        for p in range(PARTITIONS):
            take = len(logs[p]) - consumed[p] if everything else rng.randint(0, len(logs[p]) - consumed[p])
            items += logs[p][consumed[p] : consumed[p] + take]
            consumed[p] += take
        result = pipe.process(items)
        table.update(result.state)
        out.extend(orjson.loads(v) for _, v in result.anomalies)
        summaries.extend(orjson.loads(v) for _, v in result.summaries)
        for p, done in result.done.items():
            acked[p] = max(acked[p], done)
        batches += 1
        if batches == crash_at:
            pipe = pipeline(table)
            for p in range(PARTITIONS):
                consumed[p] = acked[p] + 1

    committed = [0] * SOURCES
    while any(read[s] < len(sources[s]) for s in range(SOURCES)):
        s = rng.choice([s for s in range(SOURCES) if read[s] < len(sources[s])])
        if rng.random() < ingest_restarts:  # the chunk before was forwarded, never committed
            read[:], frontier[:] = committed, [None] * SOURCES
            continue
        committed[:] = read
        for value in sources[s][read[s] : read[s] + rng.randint(1, 600)]:
            routed, _, ts = route_with_time(value)
            assert routed is not None and ts is not None
            p = partition_for_key(routed, PARTITIONS)
            logs[p].append(Record(routed, value, p, len(logs[p]), ("ev", s, read[s]), ts))
            read[s] += 1
            frontier[s] = max(ts, frontier[s] or ts)
        idle = read[s] == len(sources[s])
        mark = Mark(frontier[s], idle, read[s] - 1, produced if idle and idle_first == "ends" else None)
        for p in range(PARTITIONS):
            logs[p].append(Watermark(p, len(logs[p]), {names[s]: mark}))
        if rng.random() < 0.5:
            detect()
    detect(everything=True)
    return out, summaries, pipe


@pytest.mark.parametrize("seed", [1, 2])
def test_any_interleaving_of_source_partitions_raises_what_replay_raises(tmp_path: Path, seed: int) -> None:
    logging.getLogger("burnguard").setLevel(logging.ERROR)
    lines, expected, cutoff = fleet(tmp_path)
    assert {a["detector"] for a in expected if "root_task_id" in a["scope"]} >= {"runaway_task", "stale_task"}
    got, summaries, pipe = through_partitions(lines, random.Random(seed))
    assert task_level(got, cutoff) == task_level(expected, cutoff)
    # workflow-level detectors too: each sees its workflow's events in event-time order
    in_workflow = [a for a in expected if "workflow" in a["scope"] and "root_task_id" not in a["scope"]]
    assert Counter(a["anomaly_id"] for a in got if a in in_workflow) == Counter(a["anomaly_id"] for a in in_workflow)
    assert pipe.stats.held == 0 and pipe.stats.out_of_order == 0
    assert len({s["root_task_id"] for s in summaries}) == len(summaries)


def test_a_restart_with_records_still_waiting_loses_none_and_counts_none_twice(tmp_path: Path) -> None:
    logging.getLogger("burnguard").setLevel(logging.ERROR)
    lines, expected, cutoff = fleet(tmp_path)
    got, summaries, pipe = through_partitions(lines, random.Random(3), crash_at=12)
    assert pipe.stats.redelivered > 0 and pipe.stats.held == 0  # folded before the restart: skipped when redelivered
    # at least once: anomalies emitted before the restart may come again, identical; once deduplicated
    # by (id, status, severity) they are replay's
    assert set(task_level(got, cutoff)) == set(task_level(expected, cutoff))
    # every finished root task summarised with its whole cost: nothing lost, nothing counted twice
    costs: dict[str, float] = {}
    finished = set()
    for _, value in lines:
        ev = orjson.loads(value)
        root = ev.get("root_task_id") or ev["task_id"]
        costs[root] = costs.get(root, 0.0) + (ev.get("cost_usd") or 0.0)
        if ev["kind"] == "task_finished" and root == ev["task_id"]:
            finished.add(root)
    by_root = {s["root_task_id"]: s for s in summaries}
    assert set(by_root) == finished
    assert all(s["cost_usd"] == pytest.approx(costs[r], abs=1e-6) for r, s in by_root.items())


def test_an_ingest_that_forwards_again_after_a_restart_makes_nothing_late(tmp_path: Path) -> None:
    """The ingest dies after forwarding chunks it had not committed, many times over; its successor
    forwards them again while the first copies still wait in the merge. The copies replace them,
    and the source's frontier falls back to where the copies start: the other sources do not run
    ahead of records it is about to send again (they used to come late, spend in later minutes)."""
    logging.getLogger("burnguard").setLevel(logging.ERROR)
    lines, expected, cutoff = fleet(tmp_path)
    got, summaries, pipe = through_partitions(lines, random.Random(11), ingest_restarts=0.05)
    assert pipe.stats.redelivered > 0  # copies of what was folded before were skipped
    assert pipe.stats.late == 0 and pipe.stats.held == 0 and pipe.stats.out_of_order == 0
    assert task_level(got, cutoff) == task_level(expected, cutoff)
    assert len({s["root_task_id"] for s in summaries}) == len(summaries) > 0


def test_a_source_forwarded_again_takes_back_its_frontier_and_what_it_vouched_for() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge(["ev:0", "ev:1"])
    merge.add("ev:0", 10.0, "a", 0)
    merge.watermark("ev:0", 10.0, idle=False, offset=0)
    merge.add("ev:0", 40.0, "b", 1)
    merge.watermark("ev:0", 40.0, idle=False, offset=1)
    merge.watermark("ev:1", 5.0, idle=False)
    assert merge.release() == []  # ev:1 may still send something before 10.0
    assert merge.add("ev:0", 40.0, "b again", 1) == ["b"]  # a new ingest forwards offset 1 again
    merge.add("ev:1", 20.0, "c")
    merge.watermark("ev:1", 50.0, idle=False)
    assert merge.release() == ["a", "c"]  # "b again" waits for its ingest's watermark
    assert merge.reached() == 40.0
    merge.watermark("ev:0", 40.0, idle=False, offset=1)
    assert merge.release() == ["b again"]


def test_a_burst_into_sources_found_idle_is_merged_in_order(tmp_path: Path) -> None:
    """Every source was idle (read to its end, an empty topic) when the fleet arrived, and the
    readers get to the sources at unrelated times. An idle source holds the others back only as far
    as they had produced when it was found idle (the idle check's end offsets): none of the burst
    passes it until it is read, so nothing is late and replay's anomalies come out."""
    logging.getLogger("burnguard").setLevel(logging.ERROR)
    lines, expected, cutoff = fleet(tmp_path)
    got, summaries, pipe = through_partitions(lines, random.Random(5), idle_first="ends")
    assert pipe.stats.late == 0 and pipe.stats.held == 0
    assert task_level(got, cutoff) == task_level(expected, cutoff)
    assert len({s["root_task_id"] for s in summaries}) == len(summaries) > 0
    # without the end offsets an idle source holds nobody back: the first source read runs ahead,
    # and the others' first records come late (their spend counts in later minutes)
    _, _, bare = through_partitions(lines, random.Random(5), idle_first="bare")
    assert bare.stats.late > 0


def test_a_source_never_written_to_holds_the_merge_back_only_to_its_last_idle_check() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge(["ev:0", "ev:1"])
    for offset, ts in enumerate((10.0, 20.0, 30.0)):
        merge.add("ev:1", ts, f"r{offset}", offset)
    merge.watermark("ev:1", 30.0, idle=False, offset=2)  # the ingest vouches for what it forwarded
    merge.watermark("ev:0", None, idle=True, ends={"ev:0": 0, "ev:1": 2})  # found idle when ev:1 had 2
    assert merge.release() == ["r0", "r1"] and merge.reached() == 20.0
    merge.watermark("ev:0", None, idle=True, ends={"ev:0": 0, "ev:1": 3})  # the next idle check
    assert merge.release() == ["r2"] and merge.reached() == 30.0
    merge.add("ev:0", 25.0, "late", 0)  # produced after r2 was: late, it leaves once vouched for
    assert merge.release() == []
    merge.watermark("ev:0", 25.0, idle=False, offset=0)
    assert merge.release() == ["late"]
