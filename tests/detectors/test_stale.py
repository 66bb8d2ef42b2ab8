"""StaleTaskDetector: warm-up, zombies that keep billing, silent tasks, human review, state, real fleet."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detectors.ledger import TaskState
from detectors.stale import StaleTaskDetector, StaleTaskParams
from schemas.anomaly import Severity
from schemas.events import CostEvent
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
MIN = 60.0


def warmed(n: int = 30) -> StaleTaskDetector:
    """Completed tasks of 160-260 s: p99 ~260 s, so the floors decide (30 min, 1 h, 30 min)."""
    det = StaleTaskDetector()
    assert drive(det, normal_tasks(n)) == []
    return det


def feed(det: StaleTaskDetector, events: list[dict[str, Any]]) -> TaskState:
    """Fold a live task's events and show each to ``det``, as the engine does; no ticks."""
    task: TaskState | None = None
    for raw in events:
        ev = CostEvent.model_validate(raw)
        task = task or TaskState.open(ev)
        task.apply(ev, ev.cost_usd)
        assert det.on_event(ev, task) is None
    assert task is not None and not task.finished
    return task


def running(task_id: str, minutes: float, start: float = LATER, **kw: Any) -> list[dict[str, Any]]:
    """A task billing a model call every minute for ``minutes``, not finished."""
    return task_events(task_id, start, steps=int(minutes), step_s=MIN, outcome=None, **kw)


def test_silent_during_warm_up() -> None:
    det = StaleTaskDetector()  # min_samples 20
    drive(det, normal_tasks(19))
    zombie = feed(det, running("zombie", 180))
    assert det.on_tick(LATER + 180 * MIN, [zombie]) == []
    assert det.on_tick(LATER + 600 * MIN, [zombie]) == []  # silent for 7 h: still nothing in warm-up


def test_a_task_billing_for_40_minutes_is_a_warning_for_2_hours_critical() -> None:
    det = warmed()
    t40 = feed(det, running("t40", 40))
    t120 = feed(det, running("t120", 120))
    now = LATER + 120 * MIN
    signals = det.on_tick(LATER + 40.5 * MIN, [t40]) + det.on_tick(now + 30, [t120])
    assert [s.severity for s in signals] == [Severity.WARNING, Severity.CRITICAL]
    warn, crit = signals
    assert not warn.kill_eligible and crit.kill_eligible
    assert warn.metric == crit.metric == "task_age_seconds" and crit.unit == "seconds"
    assert warn.threshold == 1800 and crit.threshold == 3600  # the floors: min_age_s, min_critical_age_s
    assert crit.observed == pytest.approx(120 * MIN + 30)
    assert crit.expected is not None and 200 < crit.expected < 300  # p99 duration of the completed tasks
    assert crit.score == pytest.approx((120 * MIN + 30) / 3600, rel=1e-3)
    assert crit.scope == {"tenant": "acme", "team": "team-a", "workflow": "wf", "root_task_id": "t120"}
    assert crit.ts == now + 30 and "still billing" in crit.summary and "2.0 h" in crit.summary
    assert crit.evidence["n"] == 30 and crit.evidence["top_lines"]["model"] > 0
    orjson.dumps([s.evidence for s in signals])


def test_old_but_not_billing_and_not_yet_silent_is_nothing() -> None:
    det = warmed()
    task = feed(det, running("idle", 100))
    assert det.on_tick(LATER + 120 * MIN, [task]) == []  # last cost 20 min ago, silence under 30 min


def test_a_silent_task_is_a_warning_not_kill_eligible() -> None:
    det = warmed()
    task = feed(det, running("quiet", 5))
    assert det.on_tick(LATER + 30 * MIN, [task]) == []
    [sig] = det.on_tick(LATER + 45 * MIN, [task])
    assert sig.severity is Severity.WARNING and not sig.kill_eligible
    assert sig.metric == "task_silence_seconds" and sig.observed == pytest.approx(40 * MIN)
    assert "went silent" in sig.summary
    task.killed = True  # halted by burnguard: its silence is expected
    assert det.on_tick(LATER + 45 * MIN, [task]) == []


def test_a_human_review_charge_after_hours_is_not_billing() -> None:
    det = warmed()
    events = running("reviewed", 5)
    review = task_events("reviewed", LATER + 119 * MIN, steps=0, review_usd=9.0, outcome=None)[1:]
    task = feed(det, events + review)
    assert det.on_tick(LATER + 120 * MIN, [task]) == []  # a person's charge, not a zombie
    machine = task_events("reviewed", LATER + 120 * MIN, steps=1, step_s=30, outcome=None)[1:]
    for e in machine:
        e["event_id"] += "-after"
    task = feed_more(det, task, machine)
    [sig] = det.on_tick(LATER + 121 * MIN, [task])
    assert sig.severity is Severity.CRITICAL  # machine money after the review: a zombie again


def feed_more(det: StaleTaskDetector, task: TaskState, events: list[dict[str, Any]]) -> TaskState:
    for raw in events:
        ev = CostEvent.model_validate(raw)
        task.apply(ev, ev.cost_usd)
        det.on_event(ev, task)
    return task


def test_does_not_learn_from_its_own_anomalies() -> None:
    det = warmed()
    for i in range(5):
        zombie = feed(det, running(f"z{i}", 120, start=LATER + i * 86_400))
        assert det.on_tick(LATER + i * 86_400 + 120 * MIN, [zombie])
        zombie.finished, zombie.outcome = True, "success"
        det.on_task_finished(zombie)
    sixth = feed(det, running("z6", 40, start=LATER + 6 * 86_400))
    [sig] = det.on_tick(LATER + 6 * 86_400 + 40 * MIN, [sixth])
    assert sig.severity is Severity.WARNING and sig.evidence["n"] == 30


def test_deterministic() -> None:
    def run() -> list[dict[str, Any]]:
        det = warmed()
        tasks = [feed(det, running(f"t{i}", 20 * i)) for i in range(1, 8)]
        return view(s for minute in range(0, 200, 7) for s in det.on_tick(LATER + minute * MIN, tasks))

    first = run()
    assert first and first == run()


def test_snapshot_round_trip_gives_identical_next_outputs() -> None:
    det = warmed(25)
    reviewed = feed(det, running("r", 5) + task_events("r", LATER + 119 * MIN, steps=0, review_usd=9.0,
                                                       outcome=None)[1:])
    copy = round_trip(det, StaleTaskDetector(det.params))
    assert copy.snapshot() == det.snapshot()
    assert copy.snapshot()["state"]["review_ts"] == {"r": LATER + 119 * MIN + 10}
    zombie = feed(det, running("z", 90))
    ticks = [LATER + m * MIN for m in range(0, 180, 5)]
    out = [view(det.on_tick(now, [reviewed, zombie])) for now in ticks]
    assert any(out) and out == [view(copy.on_tick(now, [reviewed, zombie])) for now in ticks]
    drive(det, normal_tasks(5, LATER + 86_400, prefix="m"))
    drive(copy, normal_tasks(5, LATER + 86_400, prefix="m"))
    assert copy.snapshot() == det.snapshot()


def test_forgets_reviews_of_tasks_the_engine_dropped() -> None:
    det = warmed()
    feed(det, running("gone", 5) + task_events("gone", LATER + 6 * MIN, steps=0, review_usd=2.0,
                                               outcome=None)[1:])
    assert det.snapshot()["state"]["review_ts"]
    det.on_tick(LATER + 10 * MIN, [])
    assert det.snapshot()["state"]["review_ts"] == {}


def test_params_are_stored_unchanged() -> None:
    params = StaleTaskParams(factor=4.0, min_age_s=600)
    assert StaleTaskDetector(params).params is params


def test_quiet_on_the_real_fleet() -> None:
    engine, anomalies = real_trace_run()
    assert [a for a in anomalies if a.detector == "stale_task"] == []
    django = engine.snapshot()["detectors"]["research\x1fswebench-verified\x1fdjango"]["stale_task"]["state"]
    assert django["durations"]["n"] == 231


def test_quiet_on_the_real_fleet_driven_directly() -> None:
    assert replay(real_trace_events(), StaleTaskDetector).signals == []
