"""FanOutDetector: warm-up, a 40-80 sub-agent spawner, depth, floors, state hand-over, real fleet."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detectors.fan_out import FanOutDetector, FanOutParams
from schemas.anomaly import Severity
from tests.detectors.factory_a import (
    T0,
    drive,
    real_trace_events,
    real_trace_run,
    replay,
    round_trip,
    task_events,
    view,
)

LATER = T0 + 86_400
Events = list[dict[str, Any]]


def usual(n: int, prefix: str = "n", start: float = T0) -> Events:
    """``n`` completed tasks spawning 0-3 sub-agents each, the workflow's norm."""
    return [e for i in range(n) for e in task_events(f"{prefix}{i}", start + i * 300, subagents=i % 4)]


def spawner(task_id: str = "storm", subagents: int = 60, start: float = LATER, **kw: Any) -> Events:
    return task_events(task_id, start, subagents=subagents, **kw)


def warmed(n: int = 30) -> FanOutDetector:
    det = FanOutDetector()
    assert drive(det, usual(n)) == []
    return det


def test_silent_during_warm_up() -> None:
    det = FanOutDetector()  # min_samples 20
    assert drive(det, usual(19)) == []
    assert drive(det, spawner()) == []
    det = FanOutDetector()
    drive(det, usual(20))
    assert drive(det, spawner()) != []


def test_flags_a_60_subagent_spawner_warning_then_critical_kill_eligible() -> None:
    det = warmed()
    signals = drive(det, spawner())
    assert signals
    first, last = signals[0], signals[-1]
    assert first.severity is Severity.WARNING and first.observed == 11  # above max(10, 3 x p99 3)
    assert last.severity is Severity.CRITICAL and last.kill_eligible and last.observed == 60
    crit = [s for s in signals if s.severity is Severity.CRITICAL]
    assert crit[0].observed == 26  # above max(25, 5 x p99 3)
    assert all(s.kill_eligible == (s.severity is Severity.CRITICAL) for s in signals)
    assert last.metric == "subagents_count" and last.unit == "count"
    assert last.scope == {"tenant": "acme", "team": "team-a", "workflow": "wf", "root_task_id": "storm"}
    assert last.expected == pytest.approx(3.0, abs=0.5) and last.threshold == 25
    assert last.score == pytest.approx(60 / 25, rel=1e-3)
    assert "60 sub-agents" in last.summary and "storm" in last.summary
    assert last.evidence["n"] == 30
    orjson.dumps([s.evidence for s in signals])


def test_deep_nesting_is_a_depth_warning() -> None:
    det = warmed()
    signals = drive(det, spawner("deep", subagents=6, nested=True))
    assert signals and all(s.metric == "subagent_depth_levels" for s in signals)
    assert signals[0].observed == 4  # above max(3, p99 depth 1 + 2)
    assert all(s.severity is Severity.WARNING and not s.kill_eligible for s in signals)


def test_floors_decide_in_a_workflow_that_never_had_subagents() -> None:
    det = FanOutDetector()
    drive(det, [e for i in range(20) for e in task_events(f"z{i}", T0 + i * 300)])
    assert drive(det, spawner("ten", subagents=10)) == []
    signals = drive(det, spawner("thirty", subagents=30, start=LATER + 3600))
    assert next(s.observed for s in signals if s.severity is Severity.WARNING) == 11
    assert next(s.observed for s in signals if s.severity is Severity.CRITICAL) == 26


def test_money_plays_no_part_a_reviewed_task_with_two_subagents_is_normal() -> None:
    det = warmed()
    assert drive(det, spawner("reviewed", subagents=2, review_usd=9.0)) == []


def test_does_not_learn_from_its_own_anomalies() -> None:
    det = warmed()
    for i in range(5):
        assert drive(det, spawner(f"storm-{i}", start=LATER + i * 3600))
    sixth = drive(det, spawner("storm-6", start=LATER + 6 * 3600))
    assert sixth and sixth[-1].severity is Severity.CRITICAL and sixth[-1].evidence["n"] == 30


def test_deterministic() -> None:
    stream = usual(25) + spawner() + usual(5, "m", LATER + 1800)
    stream += spawner("deep", subagents=6, nested=True, start=LATER + 7200)
    out = drive(FanOutDetector(), stream)
    assert out and view(out) == view(drive(FanOutDetector(), stream))


def test_snapshot_round_trip_gives_identical_next_outputs() -> None:
    det = warmed(22)
    copy = round_trip(det, FanOutDetector(det.params))
    assert copy.snapshot() == det.snapshot()
    rest = spawner() + usual(5, "m", LATER + 1800)
    rest += spawner("deep", subagents=6, nested=True, start=LATER + 7200)
    out = drive(det, rest)
    assert out and view(drive(copy, rest)) == view(out)


def test_params_validate() -> None:
    with pytest.raises(ValueError):
        FanOutParams(warn_factor=0.5)
    with pytest.raises(ValueError):
        FanOutParams(unknown=1)  # type: ignore[call-arg]


def test_quiet_on_the_real_fleet() -> None:
    engine, anomalies = real_trace_run()
    assert [a for a in anomalies if a.detector == "fan_out"] == []
    django = engine.snapshot()["detectors"]["research\x1fswebench-verified\x1fdjango"]["fan_out"]["state"]
    assert django["subagents"]["n"] == 231  # every completed task learned: the floors kept it quiet


def test_quiet_on_the_real_fleet_driven_directly() -> None:
    assert replay(real_trace_events(), FanOutDetector).signals == []
