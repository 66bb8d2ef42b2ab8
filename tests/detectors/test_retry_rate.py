"""Failed-or-retried share per workflow window (learned) and the per-task stop rule."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detectors.base import Signal
from detectors.retry_rate import RetryRateDetector, RetryRateParams
from schemas.anomaly import AnomalyStatus, Severity
from schemas.events import CostEvent
from tests.detectors.factory_b import T0, Drive, firing, fold, real_trace_anomalies, step

WORKFLOW = {"tenant": "acme", "team": "team-a", "workflow": "wf"}


def window(w: int, n: int, failed: int, *, category: str = "model", name: str = "gpt-4o-mini",
           offset: float = 0.0) -> list[dict[str, Any]]:
    """``n`` steps spread over 10-min window ``w``, ``failed`` of them successful retries (attempt 2),
    evenly spread so no task builds a failure streak."""
    out = []
    for i in range(n):
        retry = (i * failed) // n != ((i + 1) * failed) // n
        out.append(step(f"t{w}-{i % 5}", T0 + 600 * w + offset + i * (500 / n), 0.001, category=category,
                        name=name, **({"attempt": 2} if retry else {})))
    return out


def normal(first: int, count: int) -> list[dict[str, Any]]:
    return [e for w in range(first, first + count) for e in window(w, 100, 4)]


def detector(**params: Any) -> RetryRateDetector:
    return RetryRateDetector(RetryRateParams(**params))


def run(events: list[dict[str, Any]], until: float | None = None, **params: Any) -> list[Signal]:
    drive = Drive(detector(**params))
    out = drive.feed(events)
    return out + drive.tick_to(until or (max(e["ts"] for e in events) + 600))


def test_silent_while_the_baseline_has_fewer_than_min_samples_windows() -> None:
    assert run(normal(0, 5) + window(5, 100, 60)) == []


def test_a_10x_share_warns_and_a_majority_failing_is_critical_but_never_kill_eligible() -> None:
    found = firing(run(normal(0, 6) + window(6, 100, 40)))
    assert len(found) == 1
    sig = found[0]
    assert sig.severity is Severity.WARNING and not sig.kill_eligible
    assert sig.scope == WORKFLOW and sig.metric == "retry_rate" and sig.unit == "fraction"
    assert sig.observed == pytest.approx(0.40) and sig.expected == pytest.approx(0.04)
    assert sig.threshold == pytest.approx(0.14) and sig.score == pytest.approx(0.40 / 0.14)
    assert sig.summary == (
        "wf: 40% of steps failed or were retried over the last 10 min (baseline 4%, 100 steps)"
    )
    crit = firing(run(normal(0, 6) + window(6, 100, 60)))
    assert [s.severity for s in crit] == [Severity.CRITICAL] and not crit[0].kill_eligible


def test_one_failing_tool_is_flagged_even_when_the_workflow_total_looks_fine() -> None:
    def mixed(w: int, tool_failed: int) -> list[dict[str, Any]]:
        evs = window(w, 200, 8) + window(w, 60, tool_failed, category="tool", name="web_search", offset=1)
        return sorted(evs, key=lambda e: e["ts"])

    events = [e for w in range(6) for e in mixed(w, 2)] + mixed(6, 24)
    found = firing(run(events))
    assert len(found) == 1
    sig = found[0]
    assert sig.evidence["step"] == "tool:web_search" and sig.evidence["workflow_steps"] == 260
    assert sig.summary == (
        "wf retries 40% of calls to tool web_search over the last 10 min (baseline 3%, 60 calls)"
    )
    assert [f["step"] for f in sig.evidence["flagged"]] == ["tool:web_search"]  # the total stayed normal


def test_does_not_learn_from_its_own_anomalies() -> None:
    events = normal(0, 6)
    for k in range(6):
        events += window(6 + 2 * k, 100, 40) + window(7 + 2 * k, 100, 4)
    found = firing(run(events))
    assert len(found) == 6, "every one of the six spike windows is flagged"
    assert found[-1].expected == pytest.approx(0.04) and found[-1].severity is Severity.WARNING


def test_resolves_when_a_window_is_back_to_normal_or_empty() -> None:
    found = run(normal(0, 6) + window(6, 100, 40) + window(7, 100, 4))
    assert [(s.firing, s.scope) for s in found] == [(True, WORKFLOW), (False, WORKFLOW)]
    assert "back to normal (4 of 100 steps" in found[1].summary
    drained = run(normal(0, 6) + window(6, 100, 40), until=T0 + 600 * 8)
    assert [s.firing for s in drained] == [True, False] and "no steps" in drained[1].summary


def test_a_window_only_halfway_back_keeps_the_episode_open_and_teaches_nothing() -> None:
    # baseline 4 %: fires above 14 % (4 % + min_increase 10 %), resolves at or below 9 %
    found = run(normal(0, 6) + window(6, 100, 40) + window(7, 100, 12) + window(8, 100, 8) + window(9, 100, 40))
    assert [(s.firing, s.evidence.get("window_start")) for s in found] == [
        (True, T0 + 3600), (False, None), (True, T0 + 5400)
    ]
    assert found[1].ts == T0 + 600 * 9  # not at the end of the 12 % window
    assert found[2].expected == pytest.approx(found[0].expected, abs=0.01)  # 12 % was not learned


def test_a_window_below_min_volume_is_not_judged() -> None:
    assert run(normal(0, 6) + window(6, 30, 15)) == []


def test_the_window_closes_on_the_first_event_past_its_end_without_waiting_for_a_tick() -> None:
    det = detector()
    for raw in normal(0, 6) + window(6, 100, 40):
        Drive(det).feed([raw])  # never ticks: a fresh driver for every event
    late = Drive(det).feed(window(7, 1, 0))
    assert len(late) == 1 and late[0].severity is Severity.WARNING


def test_sustained_new_level_is_relearned_after_relearn_after_windows_only_when_enabled() -> None:
    events = normal(0, 6) + [e for w in range(6, 30) for e in window(w, 100, 40)]
    stuck = run(events, relearn_after=0)
    assert len(firing(stuck)) == 24
    adapting = run(events, relearn_after=3)
    assert adapting[-1].firing is False and 3 < len(firing(adapting)) < 24


def test_tracks_at_most_max_names_step_names() -> None:
    det = detector(max_names=3)
    drive = Drive(det)
    drive.feed([e for k in range(10) for e in window(0, 60, 2, category="tool", name=f"tool{k}", offset=k)])
    assert len(det.snapshot()["state"]["series"]) == 4  # the workflow total + three names


def _streak(task: str, errors: int, name: str = "gemini-3-pro", t: float = T0) -> list[dict[str, Any]]:
    return [step(task, t + i, 0.01, name=name, status="error", attempt=i + 1) for i in range(errors)]


def test_stop_rule_warns_at_8_and_halts_at_15_failed_attempts_in_a_row() -> None:
    found = Drive(detector()).feed(_streak("loop", 17))
    # one signal per level: the task's episode remembers it was alerted (TaskState.alerted)
    assert [s.severity for s in found] == [Severity.WARNING, Severity.CRITICAL]
    first, last = found[0], found[-1]
    assert first.observed == 8 and not first.kill_eligible and first.threshold == 8
    assert last.kill_eligible and last.metric == "consecutive_failures" and last.unit == "attempts"
    assert last.scope == {**WORKFLOW, "root_task_id": "loop"}
    assert last.summary.startswith("stop retrying: 15 failed attempts of model gemini-3-pro in a row")


def test_stop_rule_counts_only_an_unbroken_run_of_the_same_step() -> None:
    broken = [*_streak("a", 7), step("a", T0 + 10, name="gemini-3-pro"), *_streak("a", 7, t=T0 + 11)]
    assert Drive(detector()).feed(broken) == []
    one_each = [(T0 + 2 * i, "gemini-3-pro") for i in range(8)] + [(T0 + 2 * i + 1, "x") for i in range(8)]
    mixed = [e for t, name in sorted(one_each) for e in _streak("b", 1, name, t)]
    assert Drive(detector()).feed(mixed) == []


def test_a_window_verdict_on_the_same_event_as_a_stop_signal_is_kept_for_the_next_tick() -> None:
    drive = Drive(detector(warn_after_failures=1))
    drive.feed(normal(0, 6) + window(6, 100, 40))
    det = drive.detector
    # the first event of window 7 both closes window 6 and fails: the stop rule wins the return value
    raw = _streak("x", 1, t=T0 + 600 * 7)
    out = det.on_event(CostEvent.model_validate(raw[0]), fold(raw))
    assert out is not None and out.metric == "consecutive_failures"
    held = det.on_tick(T0 + 600 * 7 + 1, [])
    assert [(s.metric, s.severity) for s in held] == [("retry_rate", Severity.WARNING)]


def test_snapshot_through_json_gives_the_same_next_outputs() -> None:
    events = normal(0, 6) + window(6, 100, 40) + window(7, 100, 60) + window(8, 100, 4)
    events += _streak("z", 16, t=T0 + 5400)
    cut = len(normal(0, 6)) + 130  # inside the first spike window, while it is being counted
    whole = Drive(detector())
    expected = whole.feed(events) + whole.tick_to(T0 + 7200)
    first = Drive(detector())
    got = first.feed(events[:cut])
    restored = detector()
    restored.restore(orjson.loads(orjson.dumps(first.detector.snapshot())))
    second = Drive(restored)
    second.tasks, second.next_tick = first.tasks, first.next_tick
    got += second.feed(events[cut:]) + second.tick_to(T0 + 7200)
    assert [(s.firing, s.severity, s.observed, s.expected, s.summary) for s in got] == [
        (s.firing, s.severity, s.observed, s.expected, s.summary) for s in expected
    ]
    assert len(firing(got)) >= 3


def test_deterministic() -> None:
    events = normal(0, 6) + window(6, 100, 40) + window(7, 100, 4) + _streak("z", 15, t=T0 + 4800)
    views = [[(s.firing, s.severity, s.observed, s.summary, s.evidence) for s in run(events)] for _ in "ab"]
    assert views[0] == views[1] and views[0]


def test_on_the_real_fleet_only_the_two_long_rejection_streaks_warn() -> None:
    anomalies, _ = real_trace_anomalies()
    fired = [a for a in anomalies if a.detector == "retry_rate" and a.status is AnomalyStatus.FIRING]
    assert {a.scope.get("root_task_id") for a in fired} == {"django__django-14349", "django__django-11299"}
    assert all(a.severity is Severity.WARNING for a in fired)
