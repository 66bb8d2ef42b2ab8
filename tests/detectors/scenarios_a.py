"""Contract scenarios of ``runaway_task``, ``cost_shift``, ``fan_out``, ``stale_task``, ``young_runaway``.

Each function returns ``(warmup, spike)``: contract-format events (dicts, ``ts`` in epoch seconds)
of one workflow. The warm-up is ordinary completed tasks, enough for the detector's default
``min_samples``; the spike is one 10x anomaly the detector flags with its default parameters.
Ordinary tasks here: 15-25 model calls 10 s apart at $0.02 each ($0.30-0.50, 2.5-4.5 min), 0-3
sub-agents where sub-agents are the point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.detectors.factory_a import T0, normal_tasks, task_events

__all__ = [
    "SCENARIOS",
    "cost_shift_scenario",
    "fan_out_scenario",
    "runaway_scenario",
    "stale_scenario",
    "young_runaway_scenario",
]

Events = list[dict[str, Any]]
_GAP = 300.0  # one ordinary task starts every 5 minutes


def runaway_scenario() -> tuple[Events, Events]:
    """30 ordinary tasks, then one spending ten times as much ($4 in 20 model calls at $0.20)."""
    warmup = normal_tasks(30, T0, prefix="rt-", workflow="code-fix")
    spike = task_events("rt-runaway", T0 + 31 * _GAP, workflow="code-fix", steps=20, step_cost=0.20)
    return warmup, spike


def cost_shift_scenario() -> tuple[Events, Events]:
    """50 ordinary tasks (30 reference + a window of 20), then 20 tasks costing ten times as much
    (a routing regression), then 25 ordinary ones again, so the episode resolves and a repeat of
    the scenario opens a new one."""
    warmup = normal_tasks(50, T0, prefix="cs-", workflow="support-triage")
    start = T0 + 50 * _GAP
    spike = normal_tasks(20, start, prefix="cs-x", workflow="support-triage", step_cost=0.20)
    spike += normal_tasks(25, start + 20 * _GAP, prefix="cs-m", workflow="support-triage")
    return warmup, spike


def fan_out_scenario() -> tuple[Events, Events]:
    """30 tasks spawning 0-3 sub-agents each, then one spawning 60."""
    warmup: Events = []
    for i in range(30):
        warmup += task_events(f"fo-{i}", T0 + i * _GAP, workflow="research", subagents=i % 4)
    spike = task_events("fo-storm", T0 + 31 * _GAP, workflow="research", subagents=60)
    return warmup, spike


def stale_scenario() -> tuple[Events, Events]:
    """30 ordinary tasks of at most ~4.5 min, then a zombie billing a cheap call every minute for 2 h."""
    warmup = normal_tasks(30, T0, prefix="st-", workflow="sql-analyst")
    spike = task_events("st-zombie", T0 + 31 * _GAP, workflow="sql-analyst", steps=120, step_s=60.0,
                        step_cost=0.002, ctx_step=0)
    return warmup, spike


def young_runaway_scenario() -> tuple[Events, Events]:
    """200 ordinary tasks of one workflow, then the first task of a workflow never seen before
    (same team), spending ten times as much: more than 3x the costliest task the tenant ever
    completed, so critical from the new workflow's first task (the fleet guard)."""
    warmup = normal_tasks(200, T0, prefix="yr-", workflow="code-fix")
    spike = task_events("yr-runaway", T0 + 201 * _GAP, workflow="code-fix-v2", steps=20, step_cost=0.20)
    return warmup, spike


SCENARIOS: tuple[tuple[str, Callable[[], tuple[Events, Events]]], ...] = (
    ("runaway_task", runaway_scenario),
    ("cost_shift", cost_shift_scenario),
    ("fan_out", fan_out_scenario),
    ("stale_task", stale_scenario),
    ("young_runaway", young_runaway_scenario),
)
