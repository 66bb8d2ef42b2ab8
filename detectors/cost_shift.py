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
Firing needs ``min_samples`` reference tasks and a full window (warm-up). A number fires only when
all three hold — large, material and statistically real:

- **large**: its ratio (window / reference) is at least ``factor`` (critical at ``critical_factor``);
- **material**: ``usd_at_stake``, the projected extra spend per day at the workflow's own volume, is
  at least ``min_usd_per_day``. For the median: (window mean machine cost per task − reference mean)
  x tasks per day; for cost per success: (window − reference cost per success) x the successes the
  workflow normally delivers per day (tasks per day x the reference success share). Tasks per day
  come from the event times of the workflow's last ``reference_size`` completions: those of the last
  24 h when they reach back a day, else their rate over their span (at least an hour) x 24 h;
- **real**: a one-sided test rejects "no change" at ``alpha``. For the median, Mann–Whitney U of the
  window's task costs against the last ``reference_size`` reference costs (rank-based: a heavy tail's
  one big task is one rank, not a shift); for cost per success, the smaller p-value of that test and
  of Fisher's exact test of fewer successes, doubled (Bonferroni), since either may move it
  (:mod:`detectors.significance`). The test's statistic and p-value are in ``evidence.test``.

Never kill-eligible (no single task to halt); once both ratios fall under ``resolve_share x factor``
the episode is resolved (``firing=False``).
"""

from __future__ import annotations

import math
import statistics
from typing import Any, ClassVar

from pydantic import Field

from detectors.base import Detector, DetectorParams, Signal
from detectors.baseline import QuantileBaseline
from detectors.ledger import BUDGET_LINES, TaskState
from detectors.significance import fisher_fewer_successes, mann_whitney_greater
from schemas.anomaly import Severity

__all__ = ["CostShiftDetector", "CostShiftParams"]

_REVIEW = BUDGET_LINES.index("human_review")
_DAY = 86_400.0
_MIN_SPAN_S = 3_600.0  # tasks per day are never extrapolated from less than an hour of completions
_NL = len(BUDGET_LINES)  # a window entry: the task's 7 budget lines, then success (0/1), then tainted (0/1)


class CostShiftParams(DetectorParams):
    """Knobs of :class:`CostShiftDetector`; factors are ratios window / reference.

    - ``window`` — recent completed tasks compared with the reference;
    - ``min_samples`` — reference tasks needed before anything is raised (warm-up);
    - ``factor`` / ``critical_factor`` — warning / critical at this ratio of either number;
    - ``resolve_share`` — resolve when both ratios fall under ``resolve_share x factor`` (hysteresis);
    - ``min_successes`` — reference successes needed before cost per success is compared;
    - ``min_usd_per_day`` — materiality: no shift fires under this projected extra spend (USD/day);
    - ``alpha`` — the test's false-alarm rate per comparison of a workflow with no change;
    - ``reference_size`` — reference costs (the most recent ones) the test ranks the window against,
      and completions whose event times give tasks per day.
    """

    window: int = Field(default=20, ge=3)
    min_samples: int = Field(default=30, ge=1)
    factor: float = Field(default=2.5, gt=1.0)
    critical_factor: float = Field(default=5.0, gt=1.0)
    resolve_share: float = Field(default=0.8, gt=0.0, le=1.0)
    min_successes: int = Field(default=5, ge=1)
    min_usd_per_day: float = Field(default=5.0, ge=0.0)
    alpha: float = Field(default=0.001, gt=0.0, lt=1.0)
    reference_size: int = Field(default=200, ge=10, le=10_000)


class CostShiftDetector(Detector):
    """Flags a workflow whose recent cost per task or per success moved well above its reference."""

    name: ClassVar[str] = "cost_shift"
    state_version: ClassVar[int] = 2

    def __init__(self, params: CostShiftParams | None = None) -> None:
        self.params = params if params is not None else CostShiftParams()
        self._window: list[list[float]] = []
        self._ref = QuantileBaseline((0.5,))
        self._ref_lines = [0.0] * _NL  # USD per budget line summed over the reference tasks
        self._ref_successes = 0
        self._sample: list[float] = []  # machine cost of the last reference_size reference tasks, oldest first
        self._ends: list[float] = []  # event time of the last reference_size completions, oldest first
        self._shifted = False

    def tasks_per_day(self) -> float:
        """The workflow's completions per day of event time (see the module docstring); 0 before two."""
        ends = self._ends
        if len(ends) < 2:
            return 0.0
        now = ends[-1]
        if ends[0] <= now - _DAY:
            return float(sum(1 for t in ends if t > now - _DAY))
        return (len(ends) - 1) * _DAY / max(now - ends[0], _MIN_SPAN_S)

    def on_task_finished(self, task: TaskState) -> Signal | None:
        p = self.params
        window = self._window
        window.append([*task.lines, 1.0 if task.outcome == "success" else 0.0, 0.0])
        self._ends.append(task.last_ts)
        if len(self._ends) > p.reference_size:
            del self._ends[0]
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
        if max(r_med, r_cps) < p.factor and not self._shifted:
            return None  # not large: neither material nor real matters (the tests are the costly part)
        per_day = self.tasks_per_day()
        stake_med = (sum(costs) / len(costs) - ref_cost / self._ref.n) * per_day
        stake_cps = (cps - ref_cps) * per_day * self._ref_successes / self._ref.n if ref_cps > 0 else 0.0
        u, p_cost = mann_whitney_greater(costs, self._sample)
        k, p_success = fisher_fewer_successes(int(successes), len(window), self._ref_successes, self._ref.n)
        test_med: dict[str, Any] = {"name": "mann_whitney_u", "statistic": u, "p_value": p_cost}
        if p_success < p_cost:
            test_cps: dict[str, Any] = {"name": "fisher_exact_fewer_successes", "statistic": float(k),
                                        "p_value": p_success}
        else:
            test_cps = dict(test_med)
        test_cps["p_value"] = min(1.0, 2.0 * min(p_cost, p_success))
        test_cps["adjusted"] = "bonferroni x2 (mann_whitney_u, fisher_exact_fewer_successes)"
        med_holds = r_med >= p.factor and stake_med >= p.min_usd_per_day and p_cost < p.alpha
        cps_holds = r_cps >= p.factor and stake_cps >= p.min_usd_per_day and test_cps["p_value"] < p.alpha
        ratio = max(r_med, r_cps)
        was_shifted = self._shifted
        self._shifted = med_holds or cps_holds or (was_shifted and ratio >= p.resolve_share * p.factor)
        if self._shifted:
            for e in window:
                e[_NL + 1] = 1.0  # in the window while a shift is open: never teaches the reference
        if self._shifted == was_shifted and not (self._shifted and (med_holds or cps_holds)):
            return None  # nothing new: still normal, or still inside the hysteresis band
        firing = self._shifted
        # the median is the headline when it holds (or, resolving, when it moved most), cost per success otherwise
        by_median = med_holds or (not cps_holds and r_med >= r_cps)
        metric = "task_cost_median_usd" if by_median else "cost_per_success_usd"
        observed, expected = (median, ref_median) if by_median else (cps, ref_cps)
        own = r_med if by_median else r_cps
        stake, test = (stake_med, test_med) if by_median else (stake_cps, test_cps)
        severity = Severity.CRITICAL if firing and own >= p.critical_factor else Severity.WARNING
        what = "Median cost per task" if by_median else "Cost per successful outcome"
        if firing:
            also = f"; cost per success {r_cps:.1f}x" if by_median and r_cps > r_med else ""
            summary = (
                f"{what} in {task.workflow} rose to ${observed:.2f} over the last {p.window} tasks, "
                f"{own:.1f}x the reference of ${expected:.2f} ({self._ref.n} tasks; {per_day:,.0f} tasks/day, "
                f"p={test['p_value']:.1g}){also}{self._moved(window)}"
            )
        else:
            summary = (
                f"{what} in {task.workflow} is back to ${observed:.2f} over the last {p.window} tasks, "
                f"{own:.1f}x the reference of ${expected:.2f}"
            )
        threshold = p.factor * expected
        evidence = self._evidence(window, median, ref_median, cps, ref_cps, successes)
        evidence["usd_at_stake"] = round(max(stake, 0.0), 2) if firing else 0.0
        evidence["usd_at_stake_per"] = "day"
        evidence["tasks_per_day"] = round(per_day, 2)
        evidence["min_usd_per_day"] = p.min_usd_per_day
        evidence["test"] = {
            **{k: (round(v, 6) if k == "statistic" and isinstance(v, float) else v) for k, v in test.items()},
            "p_value": float(f"{test['p_value']:.4g}"),
            "alpha": p.alpha,
            "reference_sample": len(self._sample),
        }
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
            evidence=evidence,
        )

    def _learn(self, entry: list[float]) -> None:
        cost = sum(entry[:_NL]) - entry[_REVIEW]
        self._ref.update(cost)
        if math.isfinite(cost):
            self._sample.append(cost)
            if len(self._sample) > self.params.reference_size:
                del self._sample[0]
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
            "sample": list(self._sample),
            "ends": list(self._ends),
            "shifted": self._shifted,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._window = [[float(x) for x in e] for e in state["window"]]
        self._ref = QuantileBaseline.from_dict(state["ref"])
        self._ref_lines = [float(x) for x in state["ref_lines"]]
        self._ref_successes = int(state["ref_successes"])
        self._sample = [float(x) for x in state["sample"]]
        self._ends = [float(x) for x in state["ends"]]
        self._shifted = bool(state["shifted"])
