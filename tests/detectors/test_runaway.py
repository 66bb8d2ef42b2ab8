"""RunawayTaskDetector: warm-up, 10x spikes, severity and kills, budget lines, state hand-over, real fleet."""

from __future__ import annotations

import orjson
import pytest

from detectors.base import StateVersionError
from detectors.runaway import RunawayParams, RunawayTaskDetector
from schemas.anomaly import Severity
from tests.detectors.factory_a import (
    T0,
    drive,
    normal_tasks,
    real_trace_events,
    real_trace_run,
    replay,
    round_trip,
    task_events,
    view,
)

LATER = T0 + 86_400


def warmed(n: int = 30, params: RunawayParams | None = None) -> RunawayTaskDetector:
    det = RunawayTaskDetector(params)
    assert drive(det, normal_tasks(n)) == []
    return det


def spike(task_id: str = "spike", start: float = LATER, **kw: object) -> list[dict[str, object]]:
    """Ten times a normal task's machine spend: 20 steps at $0.20 (normal: ~20 at $0.02)."""
    return task_events(task_id, start, steps=20, step_cost=0.20, **kw)  # type: ignore[arg-type]


def test_silent_during_warm_up() -> None:
    det = RunawayTaskDetector()  # min_samples 20
    assert drive(det, normal_tasks(19)) == []
    assert drive(det, spike()) == []  # only 19 completed tasks learned: nothing, not even a warning
    det = RunawayTaskDetector()
    assert drive(det, normal_tasks(20)) == []
    assert drive(det, spike()) != []  # the 20th completed task ends the warm-up


def test_flags_a_10x_spend_spike_warning_then_critical_and_kill_eligible() -> None:
    det = warmed()
    signals = drive(det, spike())
    assert signals, "a 10x task was not flagged"
    first, last = signals[0], signals[-1]
    assert first.severity is Severity.WARNING and not first.kill_eligible
    assert last.severity is Severity.CRITICAL and last.kill_eligible
    assert all(s.kill_eligible == (s.severity is Severity.CRITICAL) for s in signals)
    assert last.metric == "task_cost_usd" and last.unit == "usd"
    assert last.scope == {"tenant": "acme", "team": "team-a", "workflow": "wf", "root_task_id": "spike"}
    assert last.expected is not None and last.threshold is not None and last.score is not None
    assert 0.3 < last.expected < 0.8  # the learned p99 of ~$0.30-0.50 tasks
    assert last.threshold == pytest.approx(max(5 * last.expected, 1.0), rel=1e-3)
    assert last.score == pytest.approx(last.observed / last.threshold, rel=1e-3)
    assert "$" in last.summary and "p99" in last.summary and "spike" in last.summary
    assert last.evidence["n"] == 30 and last.evidence["top_lines"]["model"] > 3.0
    # caught in flight, on the first step past each bound (a step costs $0.20)
    first_critical = next(s for s in signals if s.severity is Severity.CRITICAL)
    assert first_critical.threshold is not None and first.threshold is not None
    assert first_critical.observed - first_critical.threshold <= 0.2 + 1e-9
    assert first.observed - first.threshold <= 0.2 + 1e-9
    orjson.dumps([s.evidence for s in signals])  # JSON-able


def test_steps_alone_are_a_warning_never_a_kill() -> None:
    det = warmed()
    # $1.20 in 300 steps: under the cost bounds, $1.90 at stake (2 x $1.20 - p99 $0.50)
    signals = drive(det, task_events("loop", LATER, steps=300, step_cost=0.004, ctx_step=0))
    assert signals and {s.metric for s in signals} == {"task_steps"}
    assert all(s.severity is Severity.WARNING and not s.kill_eligible for s in signals)
    assert all(s.evidence["usd_at_stake"] >= 0.5 for s in signals)


def test_a_warning_with_no_money_at_stake_is_not_raised() -> None:
    det = warmed()
    # 300 steps for $0.15 in all: 12x the steps of its peers, but it costs what a normal task does
    assert drive(det, task_events("cheap", LATER, steps=300, step_cost=0.0005, ctx_step=0)) == []
    lax = warmed(params=RunawayParams(min_warn_at_stake_usd=0.0))
    assert {s.metric for s in drive(lax, task_events("cheap", LATER, steps=300, step_cost=0.0005, ctx_step=0))} == {
        "task_steps"
    }


def test_usd_at_stake_is_twice_the_spend_beyond_the_p99() -> None:
    det = warmed()
    signals = drive(det, spike("hand"))
    p99 = det._base[0].get(0.99)
    for s in signals:
        spent = s.evidence["observed"]["task_cost_usd"]
        assert s.evidence["usd_at_stake"] == pytest.approx(round(max(0.0, 2 * spent - p99), 2), abs=0.011)
    crit = next(s for s in signals if s.severity is Severity.CRITICAL)
    assert crit.evidence["usd_at_stake"] > crit.observed  # the kill saves the projected remainder


def test_context_bloat_is_a_warning() -> None:
    det = warmed()
    # $0.60 in 20 calls (under the cost bounds), $0.70 at stake: 2 x $0.60 - the p99 of $0.50
    signals = drive(det, task_events("bloat", LATER, steps=20, step_cost=0.03, ctx_step=20_000))
    assert signals and signals[-1].metric == "context_growth_tokens" and signals[-1].unit == "tokens"
    assert signals[-1].severity is Severity.WARNING


def test_a_9_dollar_human_review_is_not_a_runaway() -> None:
    det = warmed()
    assert drive(det, task_events("reviewed", LATER, review_usd=9.0)) == []
    # the same $9 burnt by the model is one
    burnt = drive(det, task_events("burnt", LATER + 3600, steps=20, step_cost=0.47))
    assert burnt and burnt[-1].severity is Severity.CRITICAL


def test_review_money_of_completed_tasks_does_not_teach_the_baseline() -> None:
    det = RunawayTaskDetector()
    reviewed = []  # two tasks in three got a $9 human review
    for i in range(30):
        reviewed += task_events(f"r{i}", T0 + i * 300, review_usd=9.0 if i % 3 else 0.0)
    assert drive(det, reviewed) == []
    signals = drive(det, spike())  # the p99 learned is of machine spend (~$0.40), not of $9 reviews
    assert signals and signals[-1].severity is Severity.CRITICAL
    assert signals[-1].expected is not None and signals[-1].expected < 1.0


def test_does_not_learn_from_its_own_anomalies() -> None:
    det = warmed()
    for i in range(5):
        assert drive(det, spike(f"spike-{i}", LATER + i * 3600))
    sixth = drive(det, spike("spike-6", LATER + 6 * 3600))
    assert sixth and sixth[-1].severity is Severity.CRITICAL
    assert sixth[-1].evidence["n"] == 30  # none of the five spikes was learned


def test_deterministic() -> None:
    stream = normal_tasks(25) + spike() + normal_tasks(5, LATER + 3600, prefix="m")
    stream += spike("s2", LATER + 7200)
    assert view(drive(RunawayTaskDetector(), stream)) == view(drive(RunawayTaskDetector(), stream))


def test_snapshot_round_trip_gives_identical_next_outputs() -> None:
    det = warmed(25)
    copy = round_trip(det, RunawayTaskDetector(det.params))
    rest = spike() + normal_tasks(3, LATER + 3600, prefix="m") + task_events("loop", LATER + 7200, steps=300)
    out = drive(det, rest)
    assert out and view(drive(copy, rest)) == view(out)
    assert copy.snapshot() == det.snapshot()


def test_snapshot_of_another_version_is_refused() -> None:
    state = warmed().snapshot()
    with pytest.raises(StateVersionError):
        RunawayTaskDetector().restore({**state, "v": 99})


def test_params_are_stored_unchanged() -> None:
    params = RunawayParams(warn_factor=3.0, critical_factor=8.0, min_samples=5)
    assert RunawayTaskDetector(params).params is params
    assert RunawayTaskDetector().params == RunawayParams()


def test_quiet_on_the_real_fleet() -> None:
    _, anomalies = real_trace_run()
    fired = [a for a in anomalies if a.detector == "runaway_task" and a.status == "firing"]
    assert not [a for a in fired if a.severity is not Severity.WARNING or a.action == "kill"]
    assert len(fired) <= 3
    # only tasks a person calls anomalous (data README): the 65,536-token answer, the 31 rejections
    person_agrees = {"scikit-learn__scikit-learn-25102", "django__django-14349"}
    assert {a.scope["root_task_id"] for a in fired} <= person_agrees


def test_quiet_on_the_real_fleet_driven_directly() -> None:
    res = replay(real_trace_events(), RunawayTaskDetector)  # the detector alone, no engine in between
    assert not any(s.severity is Severity.CRITICAL or s.kill_eligible for s in res.signals)
    assert len(res.firing()) <= 3
