"""Share of failed-or-retried steps per workflow window, and the per-task stop rule.

A step is *failed or retried* when ``status == error`` or ``attempt > 1``. Steps are counted in
tumbling event-time windows of ``window_s`` seconds (aligned to the epoch), for the whole workflow
and for each ``category:name`` (at most ``max_names`` names). Each series has an exponentially
weighted baseline of its share (0–1) over past windows, taught only by windows that were not
anomalous. The workflow scope holds one episode: a window fires with its worst series.

The stop rule is not learned: a root task whose last ``stop_after_failures`` attempts of the same
step all failed is critical and kill-eligible ("stop retrying").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, ClassVar

from pydantic import Field

from detectors.base import Detector, DetectorParams, Signal
from detectors.baseline import EWBaseline
from detectors.ledger import FAILURES_RETRIES, TaskState
from schemas.anomaly import Severity
from schemas.events import CostEvent, EventKind, StepStatus

__all__ = ["RetryRateDetector", "RetryRateParams"]

_TOTAL = ""  # series key of the workflow as a whole
_STEP, _ERROR = EventKind.STEP, StepStatus.ERROR  # enum class attributes are slow to look up per event
_NAME_TTL_WINDOWS = 144  # a name unseen this many windows (a day at 10 min) gives up its slot


class RetryRateParams(DetectorParams):
    """Window length in seconds; shares are fractions 0–1; ``*_failures`` count failed attempts."""

    window_s: float = Field(default=600.0, gt=0.0)
    min_volume: int = Field(default=50, ge=1)
    factor: float = Field(default=3.0, gt=1.0)
    min_increase: float = Field(default=0.10, ge=0.0, le=1.0)
    critical_factor: float = Field(default=5.0, gt=1.0)
    critical_share: float = Field(default=0.5, ge=0.0, le=1.0)
    min_samples: int = Field(default=6, ge=1)
    fading_factor: float = Field(default=0.1, gt=0.0, le=1.0)
    #: After this many anomalous windows in a row the new level is taken as normal (0: never).
    relearn_after: int = Field(default=18, ge=0)
    max_names: int = Field(default=64, ge=0)
    warn_after_failures: int = Field(default=8, ge=1)
    stop_after_failures: int = Field(default=15, ge=1)


class _Series:
    """One share series: its baseline, its run of anomalous windows, the last window it had steps."""

    __slots__ = ("base", "last", "streak")

    def __init__(self, base: EWBaseline, streak: int = 0, last: float = 0.0) -> None:
        self.base, self.streak, self.last = base, streak, last


class RetryRateDetector(Detector):
    """Workflow scope: ``observed`` = the window's share, ``expected`` = its baseline share,
    ``threshold`` = the share it had to exceed, ``score`` = observed / threshold."""

    name: ClassVar[str] = "retry_rate"
    can_kill: ClassVar[bool] = True

    def __init__(self, params: RetryRateParams) -> None:
        self.params = params
        self._scope: dict[str, str] = {}
        self._series: dict[str, _Series] = {_TOTAL: _Series(EWBaseline(params.fading_factor))}
        self._start = 0.0  # current window [start, end); end == 0 before the first step
        self._end = 0.0
        self._counts: dict[str, list[int]] = {_TOTAL: [0, 0]}  # series -> [steps, failed_or_retry]
        self._total = self._counts[_TOTAL]
        self._firing = False
        self._pending: list[Signal] = []  # window verdicts held back by a stop-rule signal

    def on_event(self, event: CostEvent, task: TaskState) -> Signal | None:
        if event.kind is not _STEP:
            return None
        verdict = None
        if event.ts >= self._end:
            if not self._scope:
                self._scope = {"tenant": event.tenant, "team": event.team, "workflow": event.workflow}
            verdict = self._close(event.ts)
        error = event.status is _ERROR
        failed = error or event.attempt > 1
        total = self._total
        total[0] += 1
        total[1] += failed
        key = f"{event.category}:{event.name or ''}"
        c = self._counts.get(key) or self._track(key)
        if c is not None:
            c[0] += 1
            c[1] += failed
        if error and task.fail_streak >= self.params.warn_after_failures:
            rank = 2 if task.fail_streak >= self.params.stop_after_failures else 1
            if not task.alerted_at_least(self.name, rank):  # else the signal would change nothing
                if verdict is not None:
                    self._pending.append(verdict)
                return self._stop_rule(event, task)
        return verdict

    def _track(self, key: str) -> list[int] | None:
        """The window's counters of a step name, or ``None`` when ``max_names`` are tracked already."""
        if key not in self._series:
            if len(self._series) > self.params.max_names:
                return None
            self._series[key] = _Series(EWBaseline(self.params.fading_factor))
        counts = self._counts[key] = [0, 0]
        return counts

    def on_tick(self, now: float, tasks: Iterable[TaskState]) -> list[Signal]:
        out, self._pending = self._pending, []
        if self._end and now >= self._end:
            verdict = self._close(now)
            if verdict is not None:
                out.append(verdict)
        return out

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

    def _close(self, ts: float) -> Signal | None:
        """Judge the open window (if any), teach the baselines, open the window holding ``ts``."""
        p = self.params
        verdict: Signal | None = None
        if self._end:
            worst: dict[str, Any] | None = None
            flagged: list[dict[str, Any]] = []
            for key, (n, failed) in self._counts.items():
                series = self._series[key]
                if not n:
                    series.streak = 0  # a window without steps breaks a run of anomalous windows
                    continue
                series.last = self._start
                share, expected = failed / n, series.base.mean
                warn_at = max(p.factor * expected, expected + p.min_increase)
                judged = n >= p.min_volume and series.base.n >= p.min_samples
                anomalous = judged and share > warn_at
                # while an episode is open, a window only halfway back is not yet normal: it teaches nothing
                lingering = judged and self._firing and share > (expected + warn_at) / 2
                series.streak = series.streak + 1 if anomalous or lingering else 0
                if n >= p.min_volume and (
                    not (anomalous or lingering) or (p.relearn_after and series.streak >= p.relearn_after)
                ):
                    series.base.update(share)  # normal, or a level held so long it is the new normal
                if not anomalous:
                    continue
                level = 2 if share > max(p.critical_factor * expected, p.critical_share) else 1
                found = {"step": key or "all", "share": round(share, 4), "expected": round(expected, 4),
                         "n": n}
                flagged.append(found)
                if worst is None or (level, share / warn_at) > (worst["level"], worst["score"]):
                    worst = {**found, "key": key, "level": level, "score": share / warn_at,
                             "observed": share, "mean": expected, "warn_at": warn_at,
                             "baseline_windows": series.base.n}
            n, failed = self._counts.get(_TOTAL, (0, 0))
            if worst is not None:
                self._firing = True
                verdict = self._firing_signal(ts, worst, flagged)
            elif self._firing and failed / max(n, 1) <= self._quiet_at(_TOTAL):
                self._firing = False
                what = f"{failed} of {n} steps" if n else "no steps"
                verdict = Signal(
                    detector=self.name, scope=dict(self._scope), ts=ts, firing=False, metric="retry_rate",
                    unit="fraction", observed=failed / max(n, 1),
                    summary=f"{self._scope.get('workflow', '?')}: failed-or-retried steps back to normal "
                    f"({what} over the last {p.window_s / 60:g} min)",
                )
            stale = self._start - _NAME_TTL_WINDOWS * p.window_s
            for key in [k for k in self._series if k not in self._counts]:
                series = self._series[key]
                series.streak = 0  # a window without steps breaks a run of anomalous windows
                if key != _TOTAL and (series.base.n == 0 or series.last < stale):
                    del self._series[key]  # frees the slot of a rare or long-gone name
        self._counts = {_TOTAL: [0, 0]}
        self._total = self._counts[_TOTAL]
        self._start = ts - ts % p.window_s
        self._end = self._start + p.window_s
        return verdict

    def _quiet_at(self, key: str) -> float:
        """The share under which an open episode resolves: halfway from the baseline to the threshold."""
        mean = self._series[key].base.mean
        return (mean + max(self.params.factor * mean, mean + self.params.min_increase)) / 2

    def _firing_signal(self, ts: float, worst: dict[str, Any], flagged: list[dict[str, Any]]) -> Signal:
        p = self.params
        share, expected, n = worst["observed"], worst["mean"], worst["n"]
        total = self._counts.get(_TOTAL, [0, 0])
        wf, minutes = self._scope.get("workflow", "?"), f"{p.window_s / 60:g} min"
        if worst["key"]:
            what = worst["key"].replace(":", " ", 1).strip()
            summary = (f"{wf} retries {share:.0%} of calls to {what} over the last {minutes} "
                       f"(baseline {expected:.0%}, {n} calls)")
        else:
            summary = (f"{wf}: {share:.0%} of steps failed or were retried over the last {minutes} "
                       f"(baseline {expected:.0%}, {n} steps)")
        flagged.sort(key=lambda f: -f["share"])
        return Signal(
            detector=self.name, scope=dict(self._scope), ts=ts,
            severity=Severity.CRITICAL if worst["level"] == 2 else Severity.WARNING,
            metric="retry_rate", unit="fraction", observed=share, expected=expected,
            threshold=worst["warn_at"], score=worst["score"], summary=summary,
            evidence={"window_start": self._start, "window_s": p.window_s, "step": worst["step"], "n": n,
                      "workflow_steps": total[0], "workflow_failed_or_retry": total[1],
                      "baseline_windows": worst["baseline_windows"], "flagged": flagged[:5]},
        )

    def _get_state(self) -> dict[str, Any]:
        return {
            "scope": self._scope, "start": self._start, "end": self._end, "firing": self._firing,
            "counts": {k: list(c) for k, c in self._counts.items()},
            "series": {k: [s.base.to_dict(), s.streak, s.last] for k, s in self._series.items()},
            "pending": [{**asdict(s), "severity": str(s.severity)} for s in self._pending],
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._scope = dict(state["scope"])
        self._start, self._end = float(state["start"]), float(state["end"])
        self._firing = bool(state["firing"])
        self._counts = {k: [int(c[0]), int(c[1])] for k, c in state["counts"].items()}
        self._total = self._counts.setdefault(_TOTAL, [0, 0])
        self._series = {
            k: _Series(EWBaseline.from_dict(b), int(streak), float(last))
            for k, (b, streak, last) in state["series"].items()
        }
        self._pending = [Signal(**{**s, "severity": Severity(s["severity"])}) for s in state["pending"]]
