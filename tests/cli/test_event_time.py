"""Event time that one event cannot move, through ``burnguard replay`` (issue 9, item 3).

A fleet of ~20k simulated events; one extra event stamped far in the future (or the past) in the
middle must leave the anomalies exactly as the clean run's and end in the dead-letter file with
its reason. A legitimate gap (a quiet weekend, a file of two days) must lose nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from burnguard.replay import ReplayResult, replay_file
from burnguard.simulator.fleet import FleetSimulator
from detectors.engine import Engine
from schemas.timefmt import parse_ts

FAR_FUTURE = "2099-12-31T00:00:00Z"
FAR_PAST = "2001-01-01T00:00:00Z"


def _fleet(seed: int = 3, hours: float = 24.0, start_ts: float | None = None, **more: Any) -> list[dict[str, Any]]:
    """A simulated fleet (by default ~20k events over 24 h, with the simulator's incidents)."""
    kwargs: dict[str, Any] = {"seed": seed, "hours": hours, "scale": 0.17, **more}
    if start_ts is not None:
        kwargs["start_ts"] = start_ts
    return list(FleetSimulator(**kwargs).events())


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def _replay(tmp_path: Path, name: str, events: list[dict[str, Any]]) -> tuple[ReplayResult, list[dict[str, Any]]]:
    dlq = tmp_path / f"{name}.dlq.jsonl"
    with dlq.open("wb") as sink:
        result = replay_file(_write(tmp_path / f"{name}.jsonl", events), None, dlq=sink)
    return result, [orjson.loads(line) for line in dlq.read_bytes().splitlines()]


def _keys(result: ReplayResult) -> list[tuple[str, str, str, str]]:
    return [(a.anomaly_id, a.status.value, a.severity.value, a.summary) for a in result.anomalies]


@pytest.fixture(scope="module")
def fleet() -> list[dict[str, Any]]:
    events = _fleet()
    assert len(events) > 19_000
    return events


@pytest.fixture(scope="module")
def clean(fleet: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> ReplayResult:
    result, dead = _replay(tmp_path_factory.mktemp("clean"), "clean", fleet)
    assert dead == [] and result.rejected == []
    return result


@pytest.mark.parametrize(("stamp", "words"), [(FAR_FUTURE, "ahead of the stream"), (FAR_PAST, "behind the stream")])
def test_one_far_off_event_moves_nothing_and_is_dead_lettered(
    fleet: list[dict[str, Any]], clean: ReplayResult, tmp_path: Path, stamp: str, words: str
) -> None:
    middle = len(fleet) // 2
    outlier = {**fleet[middle], "event_id": "outlier-1", "ts": stamp}
    events = [*fleet[:middle], outlier, *fleet[middle:]]
    result, dead = _replay(tmp_path, "outlier", events)
    print(
        f"{stamp}: {len(events)} events, {len(result.anomalies)} anomalies (clean {len(clean.anomalies)}), "
        f"dead-lettered {len(dead)}"
    )
    assert _keys(result) == _keys(clean)
    assert result.engine.stats.kills == clean.engine.stats.kills
    [letter] = dead
    assert letter["line"] == middle + 1 and orjson.loads(letter["raw"])["event_id"] == "outlier-1"
    assert words in letter["reason"] and ("max_ahead_s" in letter["reason"] or "max_behind_s" in letter["reason"])
    assert result.engine.stats.events == clean.engine.stats.events


def test_an_outlier_first_event_does_not_set_the_time(
    fleet: list[dict[str, Any]], clean: ReplayResult, tmp_path: Path
) -> None:
    events = [{**fleet[0], "event_id": "outlier-0", "ts": FAR_FUTURE}, *fleet]
    result, dead = _replay(tmp_path, "first", events)
    assert _keys(result) == _keys(clean)
    assert [d["line"] for d in dead] == [1] and "ahead of the stream" in dead[0]["reason"]


def _renamed(events: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    out = []
    for e in events:
        e = {**e, "event_id": prefix + e["event_id"], "task_id": prefix + e["task_id"]}
        for k in ("root_task_id", "parent_task_id"):
            if e.get(k):
                e[k] = prefix + e[k]
        out.append(e)
    return out


@pytest.mark.parametrize("gap_h", [62.0, 24.0], ids=["weekend", "two-days-in-one-file"])
def test_a_legitimate_gap_loses_nothing(tmp_path: Path, gap_h: float) -> None:
    """A fleet quiet from Friday evening to Monday morning, or one file that holds two days: every
    event counts, none is rejected, and the second part raises what it raises alone after the first."""
    first = _fleet(seed=4, hours=3.0, incidents=())
    start = max(parse_ts(e["ts"]) for e in first) + gap_h * 3600
    second = _renamed(_fleet(seed=5, hours=3.0, start_ts=start, incidents=()), "mon-")
    result, dead = _replay(tmp_path, "gap", first + second)
    print(
        f"gap {gap_h} h: {len(first) + len(second)} events, {result.engine.stats.events} processed, "
        f"{len(dead)} dead-lettered, {len(result.anomalies)} anomalies"
    )
    assert dead == [] and result.rejected == []
    assert result.engine.stats.events == len(first) + len(second)
    assert result.engine.max_ts == max(parse_ts(e["ts"]) for e in second) + result.engine.config.lateness_s


def test_held_events_survive_a_checkpoint(fleet: list[dict[str, Any]]) -> None:
    """Snapshot an engine while it holds a far-future event and the first events of a jump; the
    restored engine goes on exactly as the uninterrupted one (same anomalies, same rejections)."""
    part = fleet[:3000]
    last = max(parse_ts(e["ts"]) for e in part)
    jump = [
        {
            **e,
            "event_id": "j" + e["event_id"],
            "task_id": "j" + e["task_id"],
            "root_task_id": "j" + e["task_id"],
            "ts": last + 7200 + i,
        }
        for i, e in enumerate(fleet[3000:3010])
    ]
    events = [*part[:2950], {**part[0], "event_id": "outlier", "ts": FAR_FUTURE}, *part[2950:], *jump]
    cut = len(part) + 2  # the outlier and the jump's first event are held here
    whole, resumed = Engine(), Engine()
    got_whole = [a for e in events for a in whole.process_obj(e, tag=e["event_id"])[0]]
    got_before = [a for e in events[:cut] for a in resumed.process_obj(e, tag=e["event_id"])[0]]
    assert resumed.held_events == 2
    again = Engine()
    again.restore(orjson.loads(orjson.dumps(resumed.snapshot())))
    assert again.held_events == 2
    got_after = [a for e in events[cut:] for a in again.process_obj(e, tag=e["event_id"])[0]]
    assert [a.anomaly_id for a in got_before + got_after] == [a.anomaly_id for a in got_whole]
    assert resumed.stats.events + again.stats.events == whole.stats.events == len(events) - 1
    for engine in (whole, again):
        engine.finish()
    assert [(t, r) for _, t, r in again.take_rejected()] == [(t, r) for _, t, r in whole.take_rejected()]
    assert again.max_ts == whole.max_ts == jump[-1]["ts"]
