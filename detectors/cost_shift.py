"""Cost shift: what a workflow's completed tasks cost has moved up (routing regression, context bloat).

Workflow-level, learned from completed root tasks only (``on_task_finished``). Two numbers of the
last ``window`` completed tasks are compared with a long reference:

- ``task_cost_median_usd`` — median machine cost per task in USD (every budget line except
  ``human_review``) against the reference median (:class:`~detectors.baseline.QuantileBaseline`);
- ``cost_per_success_usd`` — machine USD spent per ``success`` outcome over the window (a window
  with no success counts as one: a lower bound) against the same over the reference tasks.

Why human review is left out: the regressions this watches (a pricier model, a bloated prompt)
move machine spend; a review is a person's time bought per task by policy, and a few $9 reviews
would move cost per success without anything having regressed. Per-line means of the window and
of the reference are in the evidence, so the line that moved (review included) is named.

The reference lags the window: a task teaches it only when it leaves the window, and not if it
was in the window while a shift was open, so a shift in progress never becomes the new normal.
Firing needs ``min_samples`` reference tasks and a full window (warm-up). The larger of the two
ratios (window / reference) fires a warning at ``factor``, critical at ``critical_factor``, never
kill-eligible (no single task to halt); once both fall under ``resolve_share x factor`` the
episode is resolved (``firing=False``).
"""

from __future__ import annotations

import statistics
from typing import Any, ClassVar

from pydantic import Field

from detectors.base import Detector, DetectorParams, Signal
from detectors.baseline import QuantileBaseline
from detectors.ledger import BUDGET_LINES, TaskState
from schemas.anomaly import Severity

__all__ = ["CostShiftDetector", "CostShiftParams"]

_REVIEW = BUDGET_LINES.index("human_review")
_NL = len(BUDGET_LINES)  # a window entry: the task's 7 budget lines, then success (0/1), then tainted (0/1)


class CostShiftParams(DetectorParams):
    """Knobs of :class:`CostShiftDetector`; factors are ratios window / reference.

    - ``window`` — recent completed tasks compared with the reference;
    - ``min_samples`` — reference tasks needed before anything is raised (warm-up);
    - ``factor`` / ``critical_factor`` — warning / critical at this ratio of either number;
    - ``resolve_share`` — resolve when both ratios fall under ``resolve_share x factor`` (hysteresis);
    - ``min_successes`` — reference successes needed before cost per success is compared.
    """

    window: int = Field(default=20, ge=3)
    min_samples: int = Field(default=30, ge=1)
    factor: float = Field(default=2.5, gt=1.0)
    critical_factor: float = Field(default=5.0, gt=1.0)
    resolve_share: float = Field(default=0.8, gt=0.0, le=1.0)
    min_successes: int = Field(default=5, ge=1)


class CostShiftDetector(Detector):
    """Flags a workflow whose recent cost per task or per success moved well above its reference."""

    name: ClassVar[str] = "cost_shift"

    def __init__(self, params: CostShiftParams | None = None) -> None:
        self.params = params if params is not None else CostShiftParams()
        self._window: list[list[float]] = []
        self._ref = QuantileBaseline((0.5,))
        self._ref_lines = [0.0] * _NL  # USD per budget line summed over the reference tasks
        self._ref_successes = 0
        self._shifted = False

    def on_task_finished(self, task: TaskState) -> Signal | None:
        p = self.params
        window = self._window
        window.append([*task.lines, 1.0 if task.outcome == "success" else 0.0, 0.0])
        if len(window) > p.window:
            old = window.pop(0)
            if not old[_NL + 1]:
                self._learn(old)
        if self._ref.n < p.min_samples or len(window) < p.window:
            return None
        costs = [sum(e[:_NL]) - e[_REVIEW] for e in window]
        median, ref_median = statistics.median(costs), self._ref.get(0.5)
        successes = sum(e[_NL] for e in window)
        cps = sum(costs) / max(successes, 1.0)
        ref_cost = sum(self._ref_lines) - self._ref_lines[_REVIEW]
        ref_cps = ref_cost / self._ref_successes if self._ref_successes >= p.min_successes else 0.0
        r_med = median / ref_median if ref_median > 0 else 0.0
        r_cps = cps / ref_cps if ref_cps > 0 else 0.0
        ratio = max(r_med, r_cps)
        was_shifted = self._shifted
        self._shifted = ratio >= p.factor or (was_shifted and ratio >= p.resolve_share * p.factor)
        if self._shifted:
            for e in window:
                e[_NL + 1] = 1.0  # in the window while a shift is open: never teaches the reference
        if ratio < p.factor and self._shifted == was_shifted:
            return None  # nothing new: still normal, or still inside the hysteresis band
        by_median = r_med >= p.factor or r_med >= r_cps  # the median is the headline unless only cps moved
        metric = "task_cost_median_usd" if by_median else "cost_per_success_usd"
        observed, expected = (median, ref_median) if by_median else (cps, ref_cps)
        firing = self._shifted
        severity = Severity.CRITICAL if ratio >= p.critical_factor else Severity.WARNING
        what = "Median cost per task" if by_median else "Cost per successful outcome"
        own = r_med if by_median else r_cps
        if firing:
            also = f"; cost per success {r_cps:.1f}x" if by_median and r_cps > r_med else ""
            summary = (
                f"{what} in {task.workflow} rose to ${observed:.2f} over the last {p.window} tasks, "
                f"{own:.1f}x the reference of ${expected:.2f} ({self._ref.n} tasks)"
                f"{also}{self._moved(window)}"
            )
        else:
            summary = (
                f"{what} in {task.workflow} is back to ${observed:.2f} over the last {p.window} tasks, "
                f"{own:.1f}x the reference of ${expected:.2f}"
            )
        threshold = p.factor * expected
        return Signal(
            detector=self.name,
            scope={"tenant": task.tenant, "team": task.team, "workflow": task.workflow},
            ts=task.last_ts,
            firing=firing,
            severity=severity,
            metric=metric,
            unit="usd",
            observed=round(observed, 6),
            expected=round(expected, 6),
            threshold=round(threshold, 6),
            score=round(observed / threshold, 3) if threshold > 0 else None,
            summary=summary,
            evidence=self._evidence(window, median, ref_median, cps, ref_cps, successes),
        )

    def _learn(self, entry: list[float]) -> None:
        self._ref.update(sum(entry[:_NL]) - entry[_REVIEW])
        for i in range(_NL):
            self._ref_lines[i] += entry[i]
        self._ref_successes += int(entry[_NL])

    def _line_means(self, window: list[list[float]]) -> tuple[list[float], list[float]]:
        recent = [sum(e[i] for e in window) / len(window) for i in range(_NL)]
        ref = [x / self._ref.n for x in self._ref_lines] if self._ref.n else [0.0] * _NL
        return recent, ref

    def _moved(self, window: list[list[float]]) -> str:
        recent, ref = self._line_means(window)
        i = max(range(_NL), key=lambda k: recent[k] - ref[k])
        return f"; {BUDGET_LINES[i]} +${recent[i] - ref[i]:.2f}/task" if recent[i] > ref[i] else ""

    def _evidence(
        self,
        window: list[list[float]],
        median: float,
        ref_median: float,
        cps: float,
        ref_cps: float,
        successes: float,
    ) -> dict[str, Any]:
        recent, ref = self._line_means(window)
        return {
            "window": self.params.window,
            "n": self._ref.n,
            "quantile": 0.5,
            "median_usd": {"recent": round(median, 6), "reference": round(ref_median, 6)},
            "cost_per_success_usd": {"recent": round(cps, 6), "reference": round(ref_cps, 6)},
            "successes": {"recent": int(successes), "reference": self._ref_successes},
            "lines_usd_per_task": {
                "recent": {k: round(v, 4) for k, v in zip(BUDGET_LINES, recent, strict=True)},
                "reference": {k: round(v, 4) for k, v in zip(BUDGET_LINES, ref, strict=True)},
            },
            "excludes": ["human_review"],
        }

    def _get_state(self) -> dict[str, Any]:
        return {
            "window": [list(e) for e in self._window],
            "ref": self._ref.to_dict(),
            "ref_lines": list(self._ref_lines),
            "ref_successes": self._ref_successes,
            "shifted": self._shifted,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._window = [[float(x) for x in e] for e in state["window"]]
        self._ref = QuantileBaseline.from_dict(state["ref"])
        self._ref_lines = [float(x) for x in state["ref_lines"]]
        self._ref_successes = int(state["ref_successes"])
        self._shifted = bool(state["shifted"])
