"""Share of tasks with failed-or-retried steps per workflow window, and the per-task stop rule.

A step is *failed or retried* when ``status == error`` or ``attempt > 1``; a task *fails* in a
window when it has at least one such step there. Every ``step_s`` seconds of event time the last
``window_s`` seconds are judged, for the whole workflow and for each ``category:name`` (at most
``max_names`` names): ``k`` of the window's ``n`` tasks failed, against the share of failing tasks
in past normal windows (:mod:`detectors.retry_window`). A window is anomalous when ``k`` is at
least ``min_failed_tasks``, the share is over max(``factor`` × baseline, baseline +
``min_increase``), and the beta-binomial predictive test puts the chance of so many failing tasks
under "nothing changed" at or below ``alpha``. The baseline learns each tumbling window (every
``window_s``, aligned to the epoch) that was not anomalous. The workflow scope holds one episode:
a window fires with its worst series and resolves once no series has been anomalous or halfway
there for a whole ``window_s``.

Counting tasks, not steps: steps of one task are not independent (one task retrying a call eight
times is one unlucky task), so a step share made quiet workflows alert on one or two tasks.

Money at stake (``evidence.usd_at_stake``, per day): the window's failed-or-retried spend beyond
the baseline's share, at this rate for a day.

The stop rule is not learned: a root task whose last ``stop_after_failures`` attempts of the same
step all failed is critical and kill-eligible ("stop retrying").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, ClassVar

from pydantic import Field, model_validator

from detectors.base import Detector, DetectorParams, Signal
from detectors.ledger import FAILURES_RETRIES, TaskState
from detectors.retry_window import RetrySeries, Verdict
from schemas.anomaly import Severity
from schemas.events import CostEvent, EventKind, StepStatus

__all__ = ["RetryRateDetector", "RetryRateParams"]

_TOTAL = ""  # series key of the workflow as a whole
_STEP, _ERROR = EventKind.STEP, StepStatus.ERROR  # enum class attributes are slow to look up per event
_NAME_TTL_WINDOWS = 144  # a name unseen this many windows (a day at 10 min) gives up its slot
_DAY_S = 86400.0


def _pct(share: float) -> str:
    """``12%``, or ``0.4%`` for a share under 10 % (a baseline of 0.4 % is not "0%")."""
    return f"{share:.0%}" if share >= 0.095 else f"{share:.1%}"


class RetryRateParams(DetectorParams):
    """Times in seconds; shares are fractions 0–1 of the window's tasks; ``*_failures`` count
    failed attempts of one task."""

    window_s: float = Field(default=600.0, gt=0.0)
    step_s: float = Field(default=60.0, gt=0.0)
    min_failed_tasks: int = Field(default=3, ge=1)
    factor: float = Field(default=3.0, gt=1.0)
    min_increase: float = Field(default=0.10, ge=0.0, le=1.0)
    alpha: float = Field(default=1e-4, gt=0.0, lt=1.0)
    critical_factor: float = Field(default=5.0, gt=1.0)
    critical_share: float = Field(default=0.5, ge=0.0, le=1.0)
    min_samples: int = Field(default=6, ge=1)
    fading_factor: float = Field(default=0.02, gt=0.0, le=1.0)
    #: After this many anomalous windows in a row the new level is taken as normal (0: never).
    relearn_after: int = Field(default=18, ge=0)
    max_names: int = Field(default=64, ge=0)
    warn_after_failures: int = Field(default=8, ge=1)
    stop_after_failures: int = Field(default=15, ge=1)

    @model_validator(mode="after")
    def _whole_steps(self) -> RetryRateParams:
        steps = self.window_s / self.step_s
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError(f"window_s ({self.window_s:g} s) must be a whole number of step_s ({self.step_s:g} s)")
        return self


class RetryRateDetector(Detector):
    """Workflow scope: ``observed`` = the window's share of failing tasks, ``expected`` = its
    baseline share, ``threshold`` = the share it had to exceed, ``score`` = observed / threshold."""

    name: ClassVar[str] = "retry_rate"
    can_kill: ClassVar[bool] = True
    state_version: ClassVar[int] = 2

    def __init__(self, params: RetryRateParams) -> None:
        self.params = params
        self._scope: dict[str, str] = {}
        self._series: dict[str, RetrySeries] = {_TOTAL: RetrySeries()}
        self._total = self._series[_TOTAL]
        self._next = 0.0  # the next time a window is judged; 0 before the first step
        self._firing = False
        self._quiet_since = 0.0  # while firing: since when no window was anomalous or halfway (0: not)
        self._pending: list[Signal] = []  # verdicts held back so signals leave in event-time order

    def on_event(self, event: CostEvent, task: TaskState) -> Signal | None:
        if event.kind is not _STEP:
            return None
        ts = event.ts
        verdicts: list[Signal] = []
        if ts >= self._next:
            if not self._next:
                self._scope = {"tenant": event.tenant, "team": event.team, "workflow": event.workflow}
                self._next = self._boundary_after(ts)
            else:
                verdicts = self._advance(ts)
        failed = event.status is _ERROR or event.attempt > 1
        root, cost, bucket = task.root_task_id, task.failed_cost, int(ts // self.params.step_s)
        self._total.add(root, bucket, ts, failed, cost)
        key = f"{event.category}:{event.name or ''}"
        series = self._series.get(key) or self._track(key)
        if series is not None:
            series.add(root, bucket, ts, failed, cost)
        stop = None
        if event.status is _ERROR and task.fail_streak >= self.params.warn_after_failures:
            rank = 2 if task.fail_streak >= self.params.stop_after_failures else 1
            if not task.alerted_at_least(self.name, rank):  # else the signal would change nothing
                stop = self._stop_rule(event, task)
        if stop is None and not self._pending and len(verdicts) == 1:
            return verdicts[0]
        self._pending.extend(verdicts)
        return stop

    def _track(self, key: str) -> RetrySeries | None:
        """The series of a step name, or ``None`` when ``max_names`` are tracked already."""
        if len(self._series) > self.params.max_names:
            return None
        series = self._series[key] = RetrySeries()
        return series

    def on_tick(self, now: float, tasks: Iterable[TaskState]) -> list[Signal]:
        out, self._pending = self._pending, []
        if self._next and now >= self._next:
            out.extend(self._advance(now))
        return out

    def _bucket_of(self, ts: float) -> int:
        return round(ts / self.params.step_s)

    def _boundary_after(self, ts: float) -> float:
        step = self.params.step_s
        return (math.floor(ts / step) + 1) * step

    def _stop_rule(self, event: CostEvent, task: TaskState) -> Signal:
        p = self.params
        streak = task.fail_streak
        critical = streak >= p.stop_after_failures
        threshold = p.stop_after_failures if critical else p.warn_after_failures
        what = task.fail_streak_key.replace(":", " ", 1).strip()
        verb = "stop retrying" if critical else "retry loop"
        return Signal(
            detector=self.name,
            scope=task.scope,
            ts=event.ts,
            severity=Severity.CRITICAL if critical else Severity.WARNING,
            metric="consecutive_failures",
            unit="attempts",
            observed=float(streak),
            threshold=float(threshold),
            score=streak / threshold,
            summary=f"{verb}: {streak} failed attempts of {what} in a row in task {task.root_task_id} "
            f"(${task.cost_usd:,.2f} spent, {task.errors} errors in {task.steps} steps)",
            evidence={"step": task.fail_streak_key, "max_attempt": task.max_attempt, "errors": task.errors,
                      "retries": task.retries, "steps": task.steps, "top_lines": task.top_lines(),
                      # as many failed attempts again: what they have cost so far
                      "usd_at_stake": round(task.lines[FAILURES_RETRIES], 2)},
            kill_eligible=critical,
        )

    def _advance(self, now: float) -> list[Signal]:
        """Judge every window ending at a step boundary up to ``now``, before any step at or after
        it is counted (so the verdicts do not depend on whether a step or a tick came first)."""
        p = self.params
        out: list[Signal] = []
        while self._next <= now:
            end = self._next
            lo = end - p.window_s
            if not self._total.occupied(self._bucket_of(lo)):
                out.extend(self._idle(now, end, lo))
                break
            signal = self._judge(end, lo)
            if signal is not None:
                out.append(signal)
            self._next = end + p.step_s
        return out

    def _idle(self, now: float, end: float, lo: float) -> list[Signal]:
        """Nothing left in the window: streaks break, an open episode resolves, and judging
        resumes at the boundary after ``now``."""
        for series in self._series.values():
            series.streak = 0
            series.prune(self._bucket_of(lo))
        self._evict(lo)
        self._next = self._boundary_after(now)
        return [self._resolved(end, 0, 0)] if self._firing else []

    def _judge(self, end: float, lo: float) -> Signal | None:
        p = self.params
        first = self._bucket_of(lo)
        closes = (end % p.window_s) < 1e-9 or p.window_s - (end % p.window_s) < 1e-9
        firing = self._firing
        if closes:
            verdicts = [series.judge(key, first, p, firing) for key, series in self._series.items()]
            for verdict in verdicts:
                series = self._series[verdict.key]
                series.learn(verdict, p)
                series.prune(first)
            self._evict(lo)
        else:  # a series without a failed step in the window is normal: no need to count it
            verdicts = [series.judge(key, first, p, firing) for key, series in self._series.items()
                        if series.last_failed >= first]
        flagged = [v for v in verdicts if v.level]
        if flagged:
            self._firing, self._quiet_since = True, 0.0
            return self._firing_signal(end, lo, flagged, self._total.judge(_TOTAL, first, p, firing))
        if not firing:
            return None
        if any(v.lingering for v in verdicts):
            self._quiet_since = 0.0
            return None
        # back to normal for a whole window: a quiet minute in a quiet workflow is not the end of a storm
        self._quiet_since = self._quiet_since or end
        if end - self._quiet_since >= p.window_s:
            total = self._total.judge(_TOTAL, first, p, firing)
            return self._resolved(end, total.k, total.n)
        return None

    def _resolved(self, end: float, k: int, n: int) -> Signal:
        self._firing, self._quiet_since = False, 0.0
        return Signal(
            detector=self.name, scope=dict(self._scope), ts=end, firing=False, metric="retry_rate",
            unit="fraction", observed=k / n if n else 0.0,
            summary=f"{self._scope.get('workflow', '?')}: tasks with failed or retried steps back to "
            f"normal ({f'{k} of {n} tasks' if n else 'no tasks'} over the last {self.params.window_s / 60:g} min)",
        )

    def _evict(self, lo: float) -> None:
        """Free the slot of a name with no tasks in the window that is rare or long gone."""
        stale = lo - _NAME_TTL_WINDOWS * self.params.window_s
        for key in [k for k, s in self._series.items() if k != _TOTAL and not s.occupied(s.floor)]:
            series = self._series[key]
            if series.windows == 0 or series.last < stale:
                del self._series[key]

    def _firing_signal(self, end: float, lo: float, flagged: list[Verdict], total: Verdict) -> Signal:
        p = self.params
        worst = max(flagged, key=lambda v: (v.level, v.share / v.warn_at, v.key == _TOTAL))
        share, expected = worst.share, worst.expected
        wf, minutes = self._scope.get("workflow", "?"), f"{p.window_s / 60:g} min"
        what = worst.key.replace(":", " ", 1).strip() if worst.key else ""
        calls = f"calls to {what}" if what else "steps"
        summary = (f"{wf}: {worst.k} of {worst.n} tasks had failed or retried {calls} over the last {minutes} "
                   f"({share:.0%}, baseline {_pct(expected)}; {worst.failed_steps} of {worst.steps} {calls} "
                   f"failed or retried)")
        excess = max(0.0, 1.0 - expected / share) if share else 0.0
        at_stake = worst.failed_usd * excess * _DAY_S / p.window_s
        flagged.sort(key=lambda v: -v.share)
        return Signal(
            detector=self.name, scope=dict(self._scope), ts=end,
            severity=Severity.CRITICAL if worst.level == 2 else Severity.WARNING,
            metric="retry_rate", unit="fraction", observed=share, expected=expected,
            threshold=worst.warn_at, score=share / worst.warn_at, summary=summary,
            evidence={"usd_at_stake": round(at_stake, 2), "usd_at_stake_per": "day",
                      "window_start": lo, "window_s": p.window_s, "step": worst.key or "all",
                      "tasks": worst.n, "failing_tasks": worst.k, "p_value": float(f"{worst.p_value:.3g}"),
                      "steps": worst.steps, "failed_or_retried_steps": worst.failed_steps,
                      "failed_or_retried_usd": round(worst.failed_usd, 4),
                      "workflow_tasks": total.n, "workflow_failing_tasks": total.k,
                      "baseline_windows": self._series[worst.key].windows,
                      "flagged": [{"step": v.key or "all", "share": round(v.share, 4),
                                   "expected": round(v.expected, 4), "tasks": v.n} for v in flagged[:5]]},
        )

    def _get_state(self) -> dict[str, Any]:
        return {
            "scope": self._scope, "next": self._next, "firing": self._firing, "quiet_since": self._quiet_since,
            "series": {k: s.to_list() for k, s in self._series.items()},
            "pending": [{**asdict(s), "severity": str(s.severity)} for s in self._pending],
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._scope = dict(state["scope"])
        self._next = float(state["next"])
        self._firing = bool(state["firing"])
        self._quiet_since = float(state["quiet_since"])
        self._series = {k: RetrySeries.from_list(v) for k, v in state["series"].items()}
        self._total = self._series.setdefault(_TOTAL, RetrySeries())
        self._pending = [Signal(**{**s, "severity": Severity(s["severity"])}) for s in state["pending"]]
