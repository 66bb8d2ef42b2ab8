"""Runaway task: an in-flight root task already far beyond what its workflow's completed tasks do.

Four measures of the root task (sub-agents included) are compared, on every event, with the p99 of
the same measure over the workflow's completed tasks (:class:`~detectors.baseline.QuantileBaseline`):

- ``task_cost_usd`` — machine spend in USD: every budget line **except** ``human_review``;
- ``task_steps`` — steps (model calls, tool calls, ...), a count;
- ``context_growth_tokens`` — largest prompt minus the first prompt, in tokens (context bloat);
- ``task_duration_seconds`` — last event time minus start, in seconds.

Why human review is left out: a person's review is a deliberate, bounded purchase made once per
task (one $9 review on a $0.40 task), not a loop burning money at machine speed, and halting the
task would not get it back. A runaway is machine spend, so that is what is measured and learned;
the review money is still shown in the evidence. For the same reason a task with a human review
is not judged on its duration: from then on it moves at a person's pace.

A measure above ``warn_factor`` x its p99 raises a warning (the cost one only above
``min_warn_usd``). Only money justifies a kill: spend above ``critical_factor`` x p99 *and* above
``min_critical_usd`` is critical and kill-eligible; steps, context or duration alone stay warnings.
A measure whose p99 is 0 (a workflow reporting no tokens) is not compared.

Money at stake (``evidence.usd_at_stake``, USD, warning and critical alike): the machine spend the
task is projected to reach beyond what the workflow's normal tasks cost at most, ``max(0, 2 x spent
− p99)``. The projection is that a task left alone runs as long again as it already has, at its
average rate so far (for heavy-tailed run lengths the median remaining life of a run is its age:
the Lindy / Copernican argument); a kill saves about the second half. A warning whose money at
stake is under ``min_warn_at_stake_usd`` is not raised: a chatty or bloated task that costs what
its peers cost is nobody's incident. A duration warning is the exception: a zombie bills slowly but
without end, so its money shows late, and its age is the first sign (:mod:`detectors.stale` says the
rest). Baselines learn in
``on_task_finished``, from completed tasks that stayed within every warning bound and were not
killed; the thresholds are cached then, so ``on_event`` is four float comparisons.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import Field

from detectors.base import Detector, DetectorParams, Signal
from detectors.baseline import QuantileBaseline
from detectors.ledger import BUDGET_LINES, TaskState
from schemas.anomaly import Severity
from schemas.events import CostEvent

__all__ = ["RunawayParams", "RunawayTaskDetector"]

_REVIEW = BUDGET_LINES.index("human_review")
_Q = 0.99
_METRICS = (
    ("task_cost_usd", "usd"),
    ("task_steps", "steps"),
    ("context_growth_tokens", "tokens"),
    ("task_duration_seconds", "seconds"),
)


class RunawayParams(DetectorParams):
    """Knobs of :class:`RunawayTaskDetector`; factors multiply the workflow's learned p99.

    - ``min_samples`` — completed tasks learned before anything is raised (warm-up);
    - ``warn_factor`` — warning above this x p99 of any of the four measures ...
    - ``max_margin`` — ... and above this x the largest normal task seen (a heavy tail's p99 from a
      few dozen samples is biased low; the largest task the workflow completed normally is not);
    - ``critical_factor`` — critical and kill-eligible above this x p99 of machine spend ...
    - ``min_critical_usd`` — ... and above this spend in USD;
    - ``min_warn_usd`` — no cost warning below this spend in USD (cents are nobody's incident);
    - ``min_warn_at_stake_usd`` — no warning on spend, steps or context below this money at stake (USD).
    """

    min_samples: int = Field(default=20, ge=1)
    warn_factor: float = Field(default=3.0, gt=1.0)
    max_margin: float = Field(default=1.25, ge=1.0)
    critical_factor: float = Field(default=5.0, gt=1.0)
    min_critical_usd: float = Field(default=1.0, ge=0.0)
    min_warn_usd: float = Field(default=0.10, ge=0.0)
    min_warn_at_stake_usd: float = Field(default=0.50, ge=0.0)


def _measures(task: TaskState) -> tuple[float, float, float, float]:
    return (
        task.cost_usd - task.lines[_REVIEW],
        float(task.steps),
        float(task.max_context_tokens - task.first_context_tokens),
        task.duration_s,
    )


class RunawayTaskDetector(Detector):
    """Flags a root task whose spend, steps, context growth or duration outgrows its workflow."""

    name: ClassVar[str] = "runaway_task"
    can_kill: ClassVar[bool] = True

    def __init__(self, params: RunawayParams | None = None) -> None:
        self.params = params if params is not None else RunawayParams()
        self._base = [QuantileBaseline((0.5, _Q)) for _ in _METRICS]
        self._warn = [math.inf] * len(_METRICS)
        self._crit_usd = math.inf
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the cached thresholds; called only when the baselines change."""
        p = self.params
        if self._base[0].n < p.min_samples:
            self._warn = [math.inf] * len(_METRICS)
            self._crit_usd = math.inf
            return
        p99 = [b.get(_Q) for b in self._base]
        self._warn = [
            max(p.warn_factor * x, p.max_margin * b.max_seen) if x > 0 else math.inf
            for x, b in zip(p99, self._base, strict=True)
        ]
        self._warn[0] = max(self._warn[0] if p99[0] > 0 else 0.0, p.min_warn_usd) or math.inf
        self._crit_usd = max(p.critical_factor * p99[0], p.min_critical_usd) or math.inf

    @property
    def young(self) -> bool:
        """Fewer than ``min_samples`` completed tasks learned: :mod:`detectors.young_runaway` watches."""
        return self._base[0].n < self.params.min_samples

    def on_event(self, event: CostEvent, task: TaskState) -> Signal | None:
        w = self._warn
        cost = task.cost_usd - task.lines[_REVIEW]
        if (
            cost <= w[0]
            and task.steps <= w[1]
            and task.max_context_tokens - task.first_context_tokens <= w[2]
            and (task.duration_s <= w[3] or task.lines[_REVIEW] > 0)  # a task waiting on a person
        ):
            return None
        if task.alerted_at_least(self.name, 2 if cost > self._crit_usd else 1):
            return None  # its episode is already open at this severity: nothing new to say
        return self._signal(event.ts, task)

    def on_task_finished(self, task: TaskState) -> Signal | None:
        if task.killed or task.outcome == "killed":
            return None  # cut short by a kill: not what the workflow's tasks normally do
        values = _measures(task)
        if any(v > t for v, t in zip(values, self._warn, strict=True)):
            return None  # a task beyond the bounds (flagged) does not teach that it is normal
        for base, v in zip(self._base, values, strict=True):
            base.update(v)
        self._refresh()
        return None

    def usd_at_stake(self, task: TaskState) -> float:
        """Projected machine spend beyond the workflow's p99 if nothing is done (USD, cents)."""
        spent = task.cost_usd - task.lines[_REVIEW]
        return round(max(0.0, 2.0 * spent - self._base[0].get(_Q)), 2)

    def _signal(self, ts: float, task: TaskState) -> Signal | None:
        values = _measures(task)
        stake = self.usd_at_stake(task)
        if values[0] > self._crit_usd:
            i, threshold, severity = 0, self._crit_usd, Severity.CRITICAL
        else:
            ratios = [v / t for v, t in zip(values, self._warn, strict=True)]
            if task.lines[_REVIEW] > 0:
                ratios[3] = 0.0  # duration is a person's pace once a review is involved
            i = max(range(len(values)), key=lambda k: ratios[k])
            threshold, severity = self._warn[i], Severity.WARNING
            if i != 3 and stake < self.params.min_warn_at_stake_usd:
                return None  # outgrown its peers, but not by money worth a person's attention
        p99 = self._base[i].get(_Q)
        metric, unit = _METRICS[i]
        observed = values[i]
        return Signal(
            detector=self.name,
            scope=task.scope,
            ts=ts,
            severity=severity,
            metric=metric,
            unit=unit,
            observed=round(observed, 6),
            expected=round(p99, 6),
            threshold=round(threshold, 6),
            score=round(observed / threshold, 3),
            summary=_summary(task, i, values, p99),
            evidence={**self._evidence(task, values), "usd_at_stake": stake},
            kill_eligible=severity is Severity.CRITICAL,
        )

    def _evidence(self, task: TaskState, values: tuple[float, ...]) -> dict[str, Any]:
        return {
            "top_lines": task.top_lines(),
            "human_review_usd_excluded": round(task.lines[_REVIEW], 4),
            "n": self._base[0].n,
            "quantile": _Q,
            "p50": {m: round(b.get(0.5), 4) for (m, _), b in zip(_METRICS, self._base, strict=True)},
            "p99": {m: round(b.get(_Q), 4) for (m, _), b in zip(_METRICS, self._base, strict=True)},
            "observed": {m: round(v, 4) for (m, _), v in zip(_METRICS, values, strict=True)},
            "window": "completed root tasks of the workflow",
        }

    def _get_state(self) -> dict[str, Any]:
        return {"base": [b.to_dict() for b in self._base]}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._base = [QuantileBaseline.from_dict(d) for d in state["base"]]
        self._refresh()


def _summary(task: TaskState, i: int, values: tuple[float, ...], p99: float) -> str:
    minutes = task.duration_s / 60.0
    x = values[i] / p99 if p99 > 0 else math.inf
    where = f"Task {task.root_task_id} in {task.workflow}"
    if i == 0:
        top = max((k for k in range(len(BUDGET_LINES)) if k != _REVIEW), key=lambda k: task.lines[k])
        share = f" ({BUDGET_LINES[top]} {100 * task.lines[top] / values[0]:.0f}%)" if values[0] > 0 else ""
        return (
            f"{where} has spent ${values[0]:.2f} in {minutes:.0f} min, {x:.1f}x the workflow's p99 "
            f"of ${p99:.2f}{share}"
        )
    spent = f"${values[0]:.2f} spent"
    if i == 1:
        return (
            f"{where} has run {values[1]:.0f} steps in {minutes:.0f} min, {x:.1f}x the workflow's p99 "
            f"of {p99:.0f} steps ({spent})"
        )
    if i == 2:
        return (
            f"{where} has grown its context by {values[2]:,.0f} tokens, {x:.1f}x the workflow's p99 of "
            f"{p99:,.0f} tokens ({spent})"
        )
    return (
        f"{where} has run for {minutes:.0f} min, {x:.1f}x the workflow's p99 of {p99 / 60:.0f} min ({spent})"
    )
