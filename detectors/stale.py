"""Stale task: a live task that keeps billing far beyond its workflow's durations, or went silent.

Checked on every tick (event time ``now``, epoch s) against the p99 duration in seconds of the
workflow's completed root tasks (:class:`~detectors.baseline.QuantileBaseline`):

- **zombie** — age (``now - started_ts``) above ``max(factor x p99, min_age_s)`` while the task
  still spent machine money in the last ``billing_window_s``: warning; above
  ``max(critical_factor x p99, min_critical_age_s)`` critical and kill-eligible (burning compute
  for hours on a task its peers finish in minutes);
- **silent** — no event for more than ``max(silent_factor x p99, min_silence_s)``: a warning that
  the task went silent, never kill-eligible (there is nothing running to halt; a person should
  look: a crashed agent, a lost ``task_finished``). A task already killed is expected to be silent.

Budget lines: "still billing" means *machine* spend. A task that waited hours for a person and
then received its ``human_review`` charge is not a zombie, so when the latest money of a task is
a human review it does not count as billing until a machine cost follows it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import Field

from detectors.base import Detector, DetectorParams, Signal
from detectors.baseline import QuantileBaseline
from detectors.ledger import TaskState
from schemas.anomaly import Severity
from schemas.events import Category, CostEvent

__all__ = ["StaleTaskDetector", "StaleTaskParams"]

_Q = 0.99


class StaleTaskParams(DetectorParams):
    """Knobs of :class:`StaleTaskDetector`; factors multiply the p99 task duration, times in seconds.

    - ``min_samples`` — completed root tasks learned before anything is raised (warm-up);
    - ``factor`` / ``min_age_s`` — zombie warning above max(factor x p99, floor) of age;
    - ``critical_factor`` / ``min_critical_age_s`` — critical, kill-eligible above max(..., floor);
    - ``billing_window_s`` — "still billing" means machine money spent within this many seconds;
    - ``silent_factor`` / ``min_silence_s`` — silence warning above max(factor x p99, floor).
    """

    min_samples: int = Field(default=20, ge=1)
    factor: float = Field(default=3.0, gt=1.0)
    min_age_s: float = Field(default=1800.0, ge=0.0)
    critical_factor: float = Field(default=6.0, gt=1.0)
    min_critical_age_s: float = Field(default=3600.0, ge=0.0)
    billing_window_s: float = Field(default=600.0, gt=0.0)
    silent_factor: float = Field(default=2.0, gt=0.0)
    min_silence_s: float = Field(default=1800.0, ge=0.0)


class StaleTaskDetector(Detector):
    """Flags live tasks that outlive their workflow's durations while billing, or that go silent."""

    name: ClassVar[str] = "stale_task"
    can_kill: ClassVar[bool] = True

    def __init__(self, params: StaleTaskParams | None = None) -> None:
        self.params = params if params is not None else StaleTaskParams()
        self._durations = QuantileBaseline((0.5, _Q))
        self._review_ts: dict[str, float] = {}  # root task -> event time of its latest human review charge
        self._stale_s = self._crit_s = self._silent_s = math.inf
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the cached bounds (seconds); called only when the baseline changes."""
        p = self.params
        if self._durations.n < p.min_samples:
            self._stale_s = self._crit_s = self._silent_s = math.inf
            return
        p99 = self._durations.get(_Q)
        self._stale_s = max(p.factor * p99, p.min_age_s)
        self._crit_s = max(p.critical_factor * p99, p.min_critical_age_s, self._stale_s)
        self._silent_s = max(p.silent_factor * p99, p.min_silence_s)

    def on_event(self, event: CostEvent, task: TaskState) -> Signal | None:
        if event.category is Category.HUMAN_REVIEW and event.cost_usd:
            self._review_ts[task.root_task_id] = max(event.ts, self._review_ts.get(task.root_task_id, 0.0))
        return None

    def on_task_finished(self, task: TaskState) -> Signal | None:
        self._review_ts.pop(task.root_task_id, None)
        if task.killed or task.outcome == "killed" or task.duration_s > self._stale_s:
            return None  # cut short by a kill, or flagged: neither teaches what a normal duration is
        self._durations.update(task.duration_s)
        self._refresh()
        return None

    def on_tick(self, now: float, tasks: Iterable[TaskState]) -> list[Signal]:
        if self._stale_s == math.inf:
            return []
        out: list[Signal] = []
        stale_s, silent_s, window = self._stale_s, self._silent_s, self.params.billing_window_s
        reviews = self._review_ts
        live: set[str] | None = set() if reviews else None
        for t in tasks:
            if live is not None:
                live.add(t.root_task_id)
            if now - t.started_ts > stale_s and now - t.last_cost_ts <= window:
                if t.last_cost_ts > reviews.get(t.root_task_id, -math.inf):
                    out.append(self._zombie(now, t))
            elif now - t.last_ts > silent_s and not t.killed:
                out.append(self._silent(now, t))
        if live is not None and len(live) < len(reviews):
            for root in [r for r in reviews if r not in live]:
                del reviews[root]  # expired by the engine without finishing
        return out

    def _zombie(self, now: float, t: TaskState) -> Signal:
        age = now - t.started_ts
        crit = age > self._crit_s
        threshold = self._crit_s if crit else self._stale_s
        p99 = self._durations.get(_Q)
        return Signal(
            detector=self.name,
            scope=t.scope,
            ts=now,
            severity=Severity.CRITICAL if crit else Severity.WARNING,
            metric="task_age_seconds",
            unit="seconds",
            observed=round(age, 3),
            expected=round(p99, 3),
            threshold=round(threshold, 3),
            score=round(age / threshold, 3),
            summary=(
                f"Task {t.root_task_id} in {t.workflow} has been running {_human(age)}, "
                f"{age / max(p99, 1.0):.1f}x the workflow's p99 duration of {_human(p99)}, "
                f"and is still billing (${t.cost_usd:.2f} spent, "
                f"last cost {_human(max(0.0, now - t.last_cost_ts))} ago)"
            ),
            # still billing: it runs as long again at its average rate so far (the runaway's projection)
            evidence={**self._evidence(now, t), "usd_at_stake": round(t.machine_usd, 2)},
            kill_eligible=crit,
        )

    def _silent(self, now: float, t: TaskState) -> Signal:
        silence = now - t.last_ts
        p99 = self._durations.get(_Q)
        return Signal(
            detector=self.name,
            scope=t.scope,
            ts=now,
            severity=Severity.WARNING,
            metric="task_silence_seconds",
            unit="seconds",
            observed=round(silence, 3),
            expected=round(p99, 3),
            threshold=round(self._silent_s, 3),
            score=round(silence / self._silent_s, 3),
            summary=(
                f"Task {t.root_task_id} in {t.workflow} went silent: no event for {_human(silence)} "
                f"(the workflow's p99 duration is {_human(p99)}; ${t.cost_usd:.2f} spent, {t.steps} steps, "
                "never finished)"
            ),
            evidence={**self._evidence(now, t), "usd_at_stake": 0.0},  # silent: it bills nothing
        )

    def _evidence(self, now: float, t: TaskState) -> dict[str, Any]:
        return {
            "top_lines": t.top_lines(),
            "cost_usd": round(t.cost_usd, 4),
            "age_s": round(now - t.started_ts, 3),
            "since_last_event_s": round(now - t.last_ts, 3),
            "since_last_cost_s": round(now - t.last_cost_ts, 3),
            "billing_window_s": self.params.billing_window_s,
            "n": self._durations.n,
            "quantile": _Q,
            "p50_duration_s": round(self._durations.get(0.5), 3),
            "p99_duration_s": round(self._durations.get(_Q), 3),
            "bounds_s": {"warning": self._stale_s, "critical": self._crit_s, "silent": self._silent_s},
        }

    def _get_state(self) -> dict[str, Any]:
        return {"durations": self._durations.to_dict(), "review_ts": dict(self._review_ts)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._durations = QuantileBaseline.from_dict(state["durations"])
        self._review_ts = {str(k): float(v) for k, v in state["review_ts"].items()}
        self._refresh()


def _human(seconds: float) -> str:
    """``seconds`` as a short duration: ``45 s``, ``12 min``, ``3.2 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
