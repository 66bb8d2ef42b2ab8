"""The detectors, in one explicit list (not discovered), and how the engine builds them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from detectors.base import Detector, DetectorParams
from detectors.budgets import MoneyBudget
from detectors.burn_rate import BurnRateDetector, BurnRateParams
from detectors.cost_shift import CostShiftDetector, CostShiftParams
from detectors.fan_out import FanOutDetector, FanOutParams
from detectors.retry_rate import RetryRateDetector, RetryRateParams
from detectors.runaway import RunawayParams, RunawayTaskDetector
from detectors.stale import StaleTaskDetector, StaleTaskParams
from detectors.task_budget import TaskBudgetDetector, TaskBudgetParams
from detectors.young_runaway import NAME as YOUNG_RUNAWAY
from detectors.young_runaway import YoungRunawayParams

__all__ = [
    "KILL_CAPABLE",
    "PARAMS",
    "SCOPE_DETECTOR",
    "WORKFLOW_DETECTORS",
    "build_scope_detector",
    "build_workflow_detectors",
]

#: One instance of each per workflow (tenant, team, workflow), in this order.
WORKFLOW_DETECTORS: tuple[type[Detector], ...] = (
    TaskBudgetDetector,
    RunawayTaskDetector,
    RetryRateDetector,
    FanOutDetector,
    StaleTaskDetector,
    CostShiftDetector,
)
#: One instance per tenant, per team and per workflow: spend over time.
SCOPE_DETECTOR = BurnRateDetector

#: Every detector's knobs, by detector name: the ``detectors:`` section of the config file.
PARAMS: dict[str, type[DetectorParams]] = {
    "task_budget": TaskBudgetParams,
    "runaway_task": RunawayParams,
    "retry_rate": RetryRateParams,
    "fan_out": FanOutParams,
    "stale_task": StaleTaskParams,
    "cost_shift": CostShiftParams,
    "burn_rate": BurnRateParams,
    # not one per workflow: a tenant's, judged at ticks over every workflow's finished tasks (the engine's)
    YOUNG_RUNAWAY: YoungRunawayParams,
}
#: The detectors whose critical findings can halt a task (the rest only ever alert).
_ALL: tuple[type[Detector], ...] = (*WORKFLOW_DETECTORS, SCOPE_DETECTOR)
KILL_CAPABLE: frozenset[str] = frozenset({*(cls.name for cls in _ALL if cls.can_kill), YOUNG_RUNAWAY})
_LEVELS: dict[int, Literal["tenant", "team", "workflow"]] = {1: "tenant", 2: "team", 3: "workflow"}


def build_workflow_detectors(params: Mapping[str, DetectorParams]) -> list[Detector]:
    """The enabled per-workflow detectors, built with one workflow's resolved parameters."""
    return [cls(params[cls.name]) for cls in WORKFLOW_DETECTORS if params[cls.name].enabled]  # type: ignore[call-arg]


def build_scope_detector(
    params: Mapping[str, DetectorParams], depth: int, budgets: tuple[MoneyBudget, ...]
) -> Detector:
    """The burn-rate detector of a tenant (depth 1), team (2) or workflow (3); a no-op if disabled."""
    burn = params["burn_rate"]
    if not burn.enabled and not budgets:
        return Detector()
    return BurnRateDetector(burn, _LEVELS[depth], budgets)  # type: ignore[arg-type]
