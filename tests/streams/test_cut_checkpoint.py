"""A detect checkpoint cut short by a crash, without a broker: the roll-up still matches replay.

A batch's checkpoint is many table writes (streams.state): one per workflow it touched, then the
partition's shared entry (event time, next tick, how far spend is released). A worker killed while
they are on their way leaves some of a partition's workflow entries new and its shared entry old;
its successor restores from both and is redelivered the batch. The workflow entries that landed
carry the newer event time (``max_ts``); restoring the engine at that time, with the older shared
entry's next tick and release mark, ran every tick up to it before the redelivered records were
folded: they came late, their spend counted again in a later minute (the roll-up had it already,
from the spend reports sent before the checkpoint), a task looked silent. The scale-out test
failed so about one run in ten (a tenant's budget escalated by the wrong detector, a stale task
that was not).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.feed import encode_event
from streams.ordering import Mark
from streams.pipeline import DetectionPipeline, Record, Watermark, route_with_time
from streams.rollup import RollupPipeline, spend_reports
from streams.state import shared_key
from streams.topics import partition_for_key
from tests.streams.reference import comparable
from tests.streams.rollup_fleet import fleet_replayed, rolled_up

N = 4  # partitions of the internal topic, of the roll-up topic, detect partitions reporting to each


def _cut(writes: dict[bytes, bytes]) -> dict[bytes, bytes] | None:
    """The writes of a checkpoint that reached the table before the crash: those of the partitions
    before the first one that wrote two workflow entries or more, and the first of these (None: no
    partition did). Each partition's entries come in order, its shared entry last (streams.state)."""
    keys = list(writes)
    for i, key in enumerate(keys):
        p = partition_for_key(key, N)
        mine = [k for k in keys[i:] if partition_for_key(k, N) == p and k != shared_key(p, N)]
        if key != shared_key(p, N) and (i == 0 or partition_for_key(keys[i - 1], N) != p) and len(mine) >= 2:
            return {k: writes[k] for k in keys[: i + 1]}
    return None


@pytest.mark.parametrize("crash_every", [7, 11])
def test_a_checkpoint_cut_short_by_a_crash_neither_makes_records_late_nor_counts_spend_twice(
    tmp_path: Path, crash_every: int
) -> None:
    logging.getLogger("burnguard").setLevel(logging.ERROR)
    config, events, expected, cutoff = fleet_replayed(tmp_path)

    # the internal topic: each record of the (one) source, and a watermark to every partition after 200
    logs: list[list[Record | Watermark]] = [[] for _ in range(N)]
    for offset, ev in enumerate(events):
        value = encode_event(ev)[1]
        key, _, ts = route_with_time(value)
        assert key is not None
        p = partition_for_key(key, N)
        logs[p].append(Record(key, value, p, len(logs[p]), ("ev", 0, offset), ts))
        if offset % 200 == 199 or offset == len(events) - 1:
            for q in range(N):
                mark = Mark(ev["ts"], offset == len(events) - 1, offset)
                logs[q].append(Watermark(q, len(logs[q]), {"ev:0": mark}))

    table: dict[bytes, bytes] = {}
    rollup = RollupPipeline(config, partitions=N, sources=N)
    for p in range(N):
        rollup.load(p, {})

    def start() -> DetectionPipeline:
        detect = DetectionPipeline(config, partitions=N, sources=["ev:0"], roll_up=True)
        for p in range(N):
            detect.load(p, table)
        return detect

    detect, late = start(), 0
    consumed, acked = [0] * N, [-1] * N
    got: list[dict[str, Any]] = []
    batches = crashes = 0
    while any(consumed[p] < len(logs[p]) for p in range(N)):
        items: list[Record | Watermark] = []
        for p in range(N):
            items += logs[p][consumed[p] : consumed[p] + 60]
            consumed[p] = min(consumed[p] + 60, len(logs[p]))
        result = detect.process(items)
        got.extend(orjson.loads(v) for _, v in result.anomalies)
        # the spend reports are on the broker before any of the checkpoint (streams.rollup_stage)
        reports: list[tuple[int, int, bytes | None]] = []
        for p, state in sorted(detect.states.items()):
            ticks, state.engine.rolled_up = state.engine.rolled_up, []
            reports += [(r, 0, v) for r, v in spend_reports(p, ticks, N)]
        rolled = rollup.process(reports)
        got.extend(orjson.loads(v) for _, v in rolled.anomalies)
        batches += 1
        landed = _cut(result.state) if batches % crash_every == 0 else None
        if landed is None:
            table.update(result.state)
            for p, done in result.done.items():
                acked[p] = max(acked[p], done)
            continue
        # killed half-way through the checkpoint: nothing of the batch acknowledged
        table.update(landed)
        crashes += 1
        late += detect.stats.late
        detect = start()
        consumed = [a + 1 for a in acked]
    late += detect.stats.late

    assert crashes >= 5
    assert late == 0  # every redelivered record folded before the ticks it belongs to
    assert comparable(got, cutoff, task_level=True) == comparable(expected, cutoff, task_level=True)
    assert comparable(got, cutoff, task_level=False) == comparable(expected, cutoff, task_level=False)
    assert rolled_up(got, cutoff) == rolled_up(expected, cutoff)
    assert len({a[0] for a in rolled_up(expected, cutoff)}) == 5  # two tenants, three teams
