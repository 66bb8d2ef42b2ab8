"""The hard per-task budget rule: warn at 80 %, critical and kill-eligible at 100 %."""

from __future__ import annotations

import orjson
import pytest

from detectors.base import Signal
from detectors.task_budget import TaskBudgetDetector, TaskBudgetParams
from schemas.anomaly import AnomalyStatus, Severity
from schemas.events import CostEvent
from tests.detectors.factory_b import T0, Drive, ev, fold, real_trace_anomalies, step


def _task(task: str, costs: list[float], budget: float | None = None, start: float = T0) -> list[dict]:
    started = ev("task_started", task, start, **({"budget_usd": budget} if budget else {}))
    steps = [step(task, start + i + 1, c) for i, c in enumerate(costs)]
    return [started, *steps, ev("task_finished", task, start + len(costs) + 2, outcome="success")]


def _run(events: list[dict], ceiling_usd: float | None = None) -> list[Signal]:
    return Drive(TaskBudgetDetector(TaskBudgetParams(ceiling_usd=ceiling_usd))).feed(events)


def test_no_budget_and_no_ceiling_means_no_finding_whatever_the_spend() -> None:
    assert _run(_task("t", [500.0] * 4)) == []


def test_warns_at_80_percent_then_halts_at_100_percent_once_each() -> None:
    found = _run(_task("t", [0.3, 0.3, 0.25, 0.1, 0.2, 0.5, 0.5], budget=1.0))
    assert [(s.severity, s.kill_eligible) for s in found] == [
        (Severity.WARNING, False), (Severity.CRITICAL, True)
    ]
    warn, crit = found
    assert warn.observed == pytest.approx(0.85) and warn.threshold == pytest.approx(0.8)
    assert crit.observed == pytest.approx(1.15) and crit.threshold == 1.0
    assert crit.score == pytest.approx(1.15)
    assert crit.metric == "task_cost_usd" and crit.unit == "USD"
    assert crit.scope == {"tenant": "acme", "team": "team-a", "workflow": "wf", "root_task_id": "t"}
    assert "$1.15 of its $1.00 budget (115%)" in crit.summary and "model $1.15" in crit.summary
    assert crit.evidence["budget_source"] == "task" and crit.evidence["top_lines"] == {"model": 1.15}
    # at stake if nothing is done: as long again at the same rate, beyond the budget (2 x spent - budget)
    assert warn.evidence["usd_at_stake"] == pytest.approx(0.70) and crit.evidence["usd_at_stake"] == pytest.approx(1.30)


def test_a_10x_spend_is_critical_and_kill_eligible_on_the_first_step_over() -> None:
    found = _run(_task("big", [10.0], budget=1.0))
    assert len(found) == 1 and found[0].severity is Severity.CRITICAL and found[0].kill_eligible
    assert found[0].score == pytest.approx(10.0)


def test_workflow_ceiling_applies_without_a_task_budget_and_caps_a_larger_one() -> None:
    found = _run(_task("a", [0.5, 0.5, 0.5]), ceiling_usd=1.2)
    assert [s.severity for s in found] == [Severity.WARNING, Severity.CRITICAL]
    assert found[0].evidence["budget_source"] == "workflow_ceiling"
    capped = _run(_task("b", [0.5, 0.5, 0.5], budget=100.0), ceiling_usd=1.2)
    assert [s.severity for s in capped] == [Severity.WARNING, Severity.CRITICAL]
    tighter = _run(_task("c", [0.5, 0.5], budget=0.6), ceiling_usd=1.2)
    assert tighter[-1].severity is Severity.CRITICAL and tighter[-1].expected == 0.6
    assert tighter[-1].evidence["budget_source"] == "task"


def test_sub_agents_spend_counts_against_the_root_budget() -> None:
    events = [
        ev("task_started", "root", T0, budget_usd=2.0),
        step("root", T0 + 1, 0.5),
        ev("task_started", "child", T0 + 2, root_task_id="root", parent_task_id="root"),
        step("child", T0 + 3, 1.0, root_task_id="root", category="tool", name="web_search"),
        step("child", T0 + 4, 0.6, root_task_id="root", status="error"),
    ]
    found = _run(events)
    assert [s.severity for s in found] == [Severity.CRITICAL]  # 2.1 of 2.0: straight to critical
    assert found[0].scope["root_task_id"] == "root"
    assert found[0].evidence["top_lines"] == {"tool": 1.0, "failures_retries": 0.6, "model": 0.5}


def test_a_budget_that_arrives_late_still_catches_the_overspend() -> None:
    events = [step("late", T0, 3.0), ev("task_started", "late", T0 - 1, budget_usd=2.0)]
    found = _run(events)
    assert len(found) == 1 and found[0].severity is Severity.CRITICAL


def test_keeps_no_state_and_rebuilds_no_signal_the_task_episode_already_has() -> None:
    det = TaskBudgetDetector(TaskBudgetParams())
    events = _task("t", [0.9, 0.05, 0.05, 0.5, 0.5], budget=1.0)
    task = fold(events[:2])
    assert det.on_event(CostEvent.model_validate(events[1]), task) is not None  # 90 %: warning
    task.alerted = {"task_budget": 1}  # the engine opened the episode
    task.apply(CostEvent.model_validate(events[2]), 0.05)
    assert det.on_event(CostEvent.model_validate(events[2]), task) is None  # 95 %: nothing new
    task.apply(CostEvent.model_validate(events[3]), 0.5)
    crit = det.on_event(CostEvent.model_validate(events[3]), task)
    assert crit is not None and crit.severity is Severity.CRITICAL
    assert det.snapshot() == {"v": 1, "state": {}}


def test_snapshot_through_json_gives_the_same_next_outputs() -> None:
    events = _task("t", [0.5, 0.35, 0.1, 0.3], budget=1.0)
    whole = Drive(TaskBudgetDetector(TaskBudgetParams()))
    expected = whole.feed(events)
    first = Drive(TaskBudgetDetector(TaskBudgetParams()))
    got = first.feed(events[:3])  # warned at 0.85
    restored = TaskBudgetDetector(TaskBudgetParams())
    restored.restore(orjson.loads(orjson.dumps(first.detector.snapshot())))
    second = Drive(restored)
    second.tasks = first.tasks
    got += second.feed(events[3:])
    assert [(s.severity, s.observed, s.summary) for s in got] == [
        (s.severity, s.observed, s.summary) for s in expected
    ]
    assert [s.severity for s in got] == [Severity.WARNING, Severity.CRITICAL]


def test_deterministic() -> None:
    events = _task("t", [0.3] * 5, budget=1.0) + _task("u", [0.7] * 3, budget=1.0, start=T0 + 50)
    assert [vars_of(s) for s in _run(events)] == [vars_of(s) for s in _run(events)]


def vars_of(sig: Signal) -> tuple:
    return sig.scope["root_task_id"], sig.severity, sig.observed, sig.summary, sig.evidence


def test_quiet_on_the_real_fleet() -> None:
    anomalies, _ = real_trace_anomalies()
    assert not [a for a in anomalies if a.detector == "task_budget" and a.status is AnomalyStatus.FIRING]
