"""Fan-out: a root task spawning far more sub-agents, or nesting them deeper, than its workflow does.

Two counts of the root task are compared, on every event, with what the workflow's completed tasks
did (:class:`~detectors.baseline.QuantileBaseline` over completed root tasks):

- ``subagents`` — sub-agents spawned anywhere under the root (``TaskState.subagents``), a count;
- ``depth`` — deepest nesting level (root = 0, its sub-agents 1, ...), a count.

Sub-agents above ``max(min_subagents, warn_factor x p99)`` raise a warning, above
``max(critical_subagents, critical_factor x p99)`` a critical, kill-eligible finding (a recursive
spawner multiplies spend with every level; halting the root stops the tree). Depth above
``max(min_depth, p99 depth + depth_margin)`` is a warning. In a workflow that never had
sub-agents p99 is 0 and the floors decide — still only after ``min_samples`` completed tasks.

Money is not measured here, so budget lines play no part: the count of agents is the signal, and
the evidence shows where the tree's money went so far (``top_lines``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import Field

from detectors.base import Detector, DetectorParams, Signal
from detectors.baseline import QuantileBaseline
from detectors.ledger import TaskState
from schemas.anomaly import Severity
from schemas.events import CostEvent

__all__ = ["FanOutDetector", "FanOutParams"]

_Q = 0.99


class FanOutParams(DetectorParams):
    """Knobs of :class:`FanOutDetector`; counts are sub-agents per root task.

    - ``min_samples`` — completed root tasks learned before anything is raised (warm-up);
    - ``warn_factor`` / ``min_subagents`` — warning above max(floor, factor x p99 sub-agents);
    - ``critical_factor`` / ``critical_subagents`` — critical and kill-eligible above
      max(floor, factor x p99 sub-agents);
    - ``min_depth`` / ``depth_margin`` — depth warning above max(floor, p99 depth + margin).
    """

    min_samples: int = Field(default=20, ge=1)
    warn_factor: float = Field(default=3.0, gt=1.0)
    min_subagents: int = Field(default=10, ge=1)
    critical_factor: float = Field(default=5.0, gt=1.0)
    critical_subagents: int = Field(default=25, ge=1)
    min_depth: int = Field(default=3, ge=1)
    depth_margin: int = Field(default=2, ge=0)


class FanOutDetector(Detector):
    """Flags a root task whose sub-agent count or nesting depth is beyond its workflow's norm."""

    name: ClassVar[str] = "fan_out"
    can_kill: ClassVar[bool] = True

    def __init__(self, params: FanOutParams | None = None) -> None:
        self.params = params if params is not None else FanOutParams()
        self._subagents = QuantileBaseline((0.5, _Q))
        self._depth = QuantileBaseline((0.5, _Q))
        self._warn = self._crit = self._warn_depth = math.inf
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the cached bounds; called only when the baselines change."""
        p = self.params
        if self._subagents.n < p.min_samples:
            self._warn = self._crit = self._warn_depth = math.inf
            return
        p99 = self._subagents.get(_Q)
        self._warn = max(float(p.min_subagents), p.warn_factor * p99)
        self._crit = max(float(p.critical_subagents), p.critical_factor * p99)
        self._warn_depth = max(float(p.min_depth), self._depth.get(_Q) + p.depth_margin)

    def on_event(self, event: CostEvent, task: TaskState) -> Signal | None:
        if task.subagents <= self._warn and task.max_depth <= self._warn_depth:
            return None
        return self._signal(event.ts, task)

    def on_task_finished(self, task: TaskState) -> Signal | None:
        if task.killed or task.outcome == "killed":
            return None  # cut short by a kill: not what the workflow's tasks normally do
        if task.subagents > self._warn or task.max_depth > self._warn_depth:
            return None  # flagged: an anomalous tree does not teach that it is normal
        self._subagents.update(float(task.subagents))
        self._depth.update(float(task.max_depth))
        self._refresh()
        return None

    def _signal(self, ts: float, task: TaskState) -> Signal:
        n = task.subagents
        p99, p99_depth = self._subagents.get(_Q), self._depth.get(_Q)
        where = f"Task {task.root_task_id} in {task.workflow}"
        money = f"${task.cost_usd:.2f} spent"
        if n > self._warn:
            crit = n > self._crit
            threshold = self._crit if crit else self._warn
            metric, unit = "subagents_count", "count"
            observed, expected = float(n), p99
            summary = (
                f"{where} has spawned {n} sub-agents (depth {task.max_depth}), above the bound of "
                f"{threshold:.0f}; the workflow's p99 is {p99:.0f} per task ({money})"
            )
        else:
            crit, threshold = False, self._warn_depth
            metric, unit = "subagent_depth_levels", "count"
            observed, expected = float(task.max_depth), p99_depth
            summary = (
                f"{where} nests sub-agents {task.max_depth} levels deep, above the bound of {threshold:.0f}; "
                f"the workflow's p99 is {p99_depth:.0f} ({n} sub-agents, {money})"
            )
        return Signal(
            detector=self.name,
            scope=task.scope,
            ts=ts,
            severity=Severity.CRITICAL if crit else Severity.WARNING,
            metric=metric,
            unit=unit,
            observed=observed,
            expected=round(expected, 4),
            threshold=round(threshold, 4),
            score=round(observed / threshold, 3),
            summary=summary,
            # a task left alone runs as long again as it already has (the runaway's projection)
            evidence={**self._evidence(task), "usd_at_stake": round(task.machine_usd, 2)},
            kill_eligible=crit,
        )

    def _evidence(self, task: TaskState) -> dict[str, Any]:
        return {
            "top_lines": task.top_lines(),
            "subagents": task.subagents,
            "max_depth": task.max_depth,
            "cost_usd": round(task.cost_usd, 4),
            "n": self._subagents.n,
            "quantile": _Q,
            "p50_subagents": round(self._subagents.get(0.5), 4),
            "p99_subagents": round(self._subagents.get(_Q), 4),
            "p99_depth": round(self._depth.get(_Q), 4),
            "bounds": {"warning": self._warn, "critical": self._crit, "depth_warning": self._warn_depth},
            "window": "completed root tasks of the workflow",
        }

    def _get_state(self) -> dict[str, Any]:
        return {"subagents": self._subagents.to_dict(), "depth": self._depth.to_dict()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._subagents = QuantileBaseline.from_dict(state["subagents"])
        self._depth = QuantileBaseline.from_dict(state["depth"])
        self._refresh()
