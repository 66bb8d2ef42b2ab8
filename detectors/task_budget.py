"""Hard per-task budget: warn at a fraction of the task's budget, halt it at 100 %.

The budget of a root task (sub-agents included) is the ``budget_usd`` its ``task_started`` carried,
or the workflow's ``ceiling_usd``; when both exist the smaller one applies, because a ceiling is
the workflow owner's cap and a producer must not be able to lift it by declaring a larger budget.
No learning, no warm-up and no state of its own: this is a rule, it fires from the first event.
Money in USD. ``evidence.usd_at_stake`` is the projected spend beyond the budget if nothing is done,
``max(0, 2 x spent - budget)``: a task left alone runs as long again at its average rate so far (the
projection :mod:`detectors.runaway` uses).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from detectors.base import Detector, DetectorParams, Signal
from detectors.ledger import TaskState
from schemas.anomaly import Severity
from schemas.events import CostEvent

__all__ = ["TaskBudgetDetector", "TaskBudgetParams"]

_WARNING = 1
_CRITICAL = 2


class TaskBudgetParams(DetectorParams):
    """``warn_fraction``: share of the budget (0–1) that raises a warning; at 1.0 of it the task is
    critical and kill-eligible. ``ceiling_usd``: the workflow's cap on any one task (USD), ``None``
    for none."""

    warn_fraction: float = Field(default=0.8, gt=0.0, lt=1.0)
    ceiling_usd: float | None = Field(default=None, gt=0.0)


class TaskBudgetDetector(Detector):
    """Task scope. ``observed`` = the task's spend (USD), ``threshold`` = the bound it crossed (USD),
    ``score`` = spend / that bound."""

    name: ClassVar[str] = "task_budget"
    can_kill: ClassVar[bool] = True

    def __init__(self, params: TaskBudgetParams) -> None:
        self.params = params

    def budget_of(self, task: TaskState) -> float | None:
        """The budget that applies to ``task`` in USD, or ``None``."""
        own, ceiling = task.budget_usd, self.params.ceiling_usd
        if own is None:
            return ceiling
        return own if ceiling is None or own < ceiling else ceiling

    def on_event(self, event: CostEvent, task: TaskState) -> Signal | None:
        budget = self.budget_of(task)
        if budget is None or task.cost_usd < self.params.warn_fraction * budget:
            return None
        return self._check(task, budget, event.ts)

    def _check(self, task: TaskState, budget: float, ts: float) -> Signal | None:
        level = _CRITICAL if task.cost_usd >= budget else _WARNING
        if task.alerted_at_least(self.name, level):
            return None  # the task's episode is already at this level: the signal would change nothing
        threshold = budget if level == _CRITICAL else self.params.warn_fraction * budget
        source = "task" if task.budget_usd is not None and budget == task.budget_usd else "workflow_ceiling"
        top = task.top_lines()
        lines = ", ".join(f"{line} ${usd:,.2f}" for line, usd in top.items()) or "no priced steps"
        return Signal(
            detector=self.name,
            scope=task.scope,
            ts=ts,
            severity=Severity.CRITICAL if level == _CRITICAL else Severity.WARNING,
            metric="task_cost_usd",
            unit="USD",
            observed=task.cost_usd,
            expected=budget,
            threshold=threshold,
            score=task.cost_usd / threshold,
            summary=(
                f"{task.workflow} task {task.root_task_id} spent ${task.cost_usd:,.2f} of its "
                f"${budget:,.2f} budget ({task.cost_usd / budget:.0%}); top lines: {lines}"
            ),
            evidence={
                "budget_usd": budget,
                "budget_source": source,
                "usd_at_stake": round(max(0.0, 2.0 * task.cost_usd - budget), 2),
                "spent_fraction": round(task.cost_usd / budget, 4),
                "top_lines": top,
                "steps": task.steps,
                "subagents": task.subagents,
                "duration_s": round(task.duration_s, 3),
            },
            kill_eligible=level == _CRITICAL,
        )
