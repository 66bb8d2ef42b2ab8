"""Injected incidents: their ground truth (:class:`Incident`) and where they are placed.

Times are epoch seconds, costs USD. An incident is placed after a warm-up of
:data:`WARMUP_HOURS`, during business hours of its tenant when the horizon allows it, in a
workflow that has run since the start, and never overlapping another incident of that workflow.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from burnguard.simulator.agent_run import Event
from burnguard.simulator.effects import FleetEffects, RetryStormEffect, TrafficFloodEffect
from burnguard.simulator.incident_tasks import build_runaway, build_subagent_explosion, build_zombie
from burnguard.simulator.profiles import MODEL_PRICES, WorkflowProfile

__all__ = [
    "DEFAULT_INCIDENTS",
    "INCIDENT_KINDS",
    "TASK_INCIDENTS",
    "UNFINISHED_INCIDENTS",
    "WARMUP_HOURS",
    "Incident",
    "IncidentKind",
    "IncidentPlan",
    "fleet_effects",
    "min_hours",
    "plan_incidents",
    "realise_incident",
]

IncidentKind = Literal[
    "runaway_loop", "retry_storm", "routing_regression", "traffic_flood", "subagent_explosion", "zombie_task"
]
INCIDENT_KINDS: tuple[str, ...] = get_args(IncidentKind)
DEFAULT_INCIDENTS: tuple[str, ...] = INCIDENT_KINDS
TASK_INCIDENTS = frozenset({"runaway_loop", "subagent_explosion", "zombie_task"})
UNFINISHED_INCIDENTS = frozenset({"runaway_loop", "zombie_task"})  # their task never sends task_finished
WARMUP_HOURS = 12.0


@dataclass(frozen=True)
class Incident:
    """Ground truth of one injected incident.

    ``scope`` holds ``tenant``, ``team``, ``workflow`` (plus ``root_task_id`` for a task-level
    incident). ``cost_without_kill_usd`` is the whole spend, in USD, of a task-level incident's
    task tree within the simulated horizon, i.e. what it costs if nobody stops it.
    """

    kind: str
    start_ts: float
    end_ts: float
    scope: dict[str, str]
    description: str
    root_task_id: str | None = None
    cost_without_kill_usd: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def workflow(self) -> str:
        return self.scope["workflow"]


@dataclass(frozen=True, slots=True)
class IncidentPlan:
    """Where and when an incident happens, decided before any event is simulated."""

    kind: str
    profile: WorkflowProfile
    start_ts: float
    end_ts: float  # planned end; task-level incidents end when their task does
    seed: int
    params: dict[str, Any]


# kind -> (preferred workflows, position within the usable slots 0..1, hours needed after the start)
_PLACEMENT: dict[str, tuple[tuple[str, ...], float, float]] = {
    "subagent_explosion": (("research-assistant", "code-fix"), 0.3, 2.0),
    "runaway_loop": (("code-fix", "research-assistant"), 0.3, 6.0),
    "zombie_task": (("sql-analyst", "kyc-review"), 0.4, 4.0),
    "retry_storm": (("lead-enrichment", "refund-agent"), 0.55, 3.0),
    "routing_regression": (("support-triage", "doc-qa"), 0.6, 10.0),
    "traffic_flood": (("pr-review", "lead-enrichment"), 0.75, 2.0),
}
_SLOT_S = 900.0
_JITTER_S = 600.0  # starts are moved up to ten minutes past a quarter hour
_BUSY_LOCAL_HOURS = (10.0, 15.0)


def _slots(p: WorkflowProfile, earliest: float, latest: float) -> list[float]:
    """Quarter-hour starts in [earliest, latest], preferring the tenant's weekday business hours."""
    grid = [k * _SLOT_S for k in range(math.ceil(earliest / _SLOT_S), math.floor(latest / _SLOT_S) + 1)]
    busy = []
    for t in grid:
        local = t / 3600.0 + p.utc_offset_hours
        weekday = (math.floor(local / 24.0) + 3) % 7 < 5
        if weekday and _BUSY_LOCAL_HOURS[0] <= local % 24.0 < _BUSY_LOCAL_HOURS[1]:
            busy.append(t)
    return busy or grid


def _pick_workflow(
    kind: str, workflows: Sequence[WorkflowProfile], used: dict[tuple[str, str], int]
) -> WorkflowProfile:
    """The preferred workflow that has hosted the fewest incidents of this kind, then of any kind."""
    preferred = _PLACEMENT[kind][0]

    def rank(wf: WorkflowProfile) -> tuple[int, int, int]:
        same = used.get((kind, wf.name), 0)
        other = sum(n for (_, name), n in used.items() if name == wf.name)
        return same, preferred.index(wf.name) if wf.name in preferred else 99, other

    ranked = sorted(workflows, key=rank)
    if kind == "retry_storm":
        ranked = [wf for wf in ranked if wf.tools]
    if not ranked:
        raise ValueError(f"no workflow can host a {kind}")
    return ranked[0]


def _params(kind: str, p: WorkflowProfile, rng: random.Random) -> tuple[float, dict[str, Any]]:
    """Planned duration in hours and the kind's parameters."""
    if kind == "runaway_loop":
        return 6.0, {"cap_usd": 150.0, "max_hours": 6.0}
    if kind == "retry_storm":
        hours = rng.uniform(1.0, 2.0)
        return hours, {"target": p.tools[0].name, "error_rate": round(rng.uniform(0.5, 0.7), 3)}
    if kind == "routing_regression":
        return math.inf, {"from_model": p.model, "to_model": p.regression_model}
    if kind == "traffic_flood":
        return 1.0, {"multiplier": round(rng.uniform(12.0, 20.0), 2)}
    if kind == "subagent_explosion":
        return 1.0, {"n_subagents": rng.randint(40, 80)}
    if kind == "zombie_task":
        return 24.0, {"usd_per_minute": round(rng.uniform(0.008, 0.015), 4), "max_hours": 24.0}
    raise ValueError(f"unknown incident kind {kind!r}; known: {', '.join(INCIDENT_KINDS)}")


def min_hours(kinds: Sequence[str]) -> float:
    """The shortest horizon (simulated hours) in which every incident in ``kinds`` can be placed:
    the warm-up plus the longest tail an incident needs after its start (0 without incidents).

    >>> min_hours(DEFAULT_INCIDENTS), min_hours(())
    (22.0, 0.0)
    """
    tails = [_PLACEMENT[k][2] for k in kinds if k in _PLACEMENT]
    return WARMUP_HOURS + max(tails) if tails else 0.0


def plan_incidents(
    kinds: Sequence[str],
    workflows: Sequence[WorkflowProfile],
    start_ts: float,
    end_ts: float,
    rng: random.Random,
) -> list[IncidentPlan]:
    """Decide workflow, start and parameters of each incident in ``kinds`` (a kind may repeat)."""
    plans: list[IncidentPlan] = []
    used: dict[tuple[str, str], int] = {}
    busy: dict[str, list[tuple[float, float]]] = {}
    for kind in kinds:
        if kind not in _PLACEMENT:
            raise ValueError(f"unknown incident kind {kind!r}; known: {', '.join(INCIDENT_KINDS)}")
        p = _pick_workflow(kind, workflows, used)
        duration_h, params = _params(kind, p, rng)
        _, position, tail_h = _PLACEMENT[kind]
        earliest = start_ts + WARMUP_HOURS * 3600.0
        latest = end_ts - tail_h * 3600.0
        if latest < earliest:
            raise ValueError(
                f"a {kind} needs {WARMUP_HOURS + tail_h:g} simulated hours; the horizon is "
                f"{(end_ts - start_ts) / 3600.0:g} h"
            )
        slots = [
            s
            for s in _slots(p, earliest, latest)
            if all(s >= e or s + duration_h * 3600.0 + _JITTER_S <= b for b, e in busy.get(p.name, []))
        ]
        if not slots:
            raise ValueError(f"no room for another {kind} in workflow {p.name}")
        start = slots[min(len(slots) - 1, int(position * len(slots)))] + rng.uniform(0.0, _JITTER_S)
        end = min(end_ts, start + duration_h * 3600.0)
        used[kind, p.name] = used.get((kind, p.name), 0) + 1
        busy.setdefault(p.name, []).append((start, end))
        plans.append(IncidentPlan(kind, p, round(start, 3), round(end, 3), rng.getrandbits(64), params))
    return plans


def fleet_effects(plans: Sequence[IncidentPlan]) -> FleetEffects:
    """What the fleet-level incidents change in ordinary tasks."""
    effects = FleetEffects()
    for plan in plans:
        name = plan.profile.name
        if plan.kind == "routing_regression":
            effects.regressions[name] = (plan.start_ts, plan.params["to_model"])
        elif plan.kind == "retry_storm":
            effects.storms.setdefault(name, []).append(
                RetryStormEffect(plan.start_ts, plan.end_ts, plan.params["target"], plan.params["error_rate"])
            )
        elif plan.kind == "traffic_flood":
            effects.floods.setdefault(name, []).append(
                TrafficFloodEffect(plan.start_ts, plan.end_ts, plan.params["multiplier"])
            )
    return effects


def _describe(plan: IncidentPlan) -> str:
    p, params = plan.profile, plan.params
    if plan.kind == "runaway_loop":
        return (
            f"{p.name}: one task loops with a growing prompt, a model call every few seconds, "
            f"until ${params['cap_usd']:g} or {params['max_hours']:g} h"
        )
    if plan.kind == "retry_storm":
        return (
            f"{p.name}: tool {params['target']} fails {params['error_rate']:.0%} of calls; "
            "agents retry up to 5 times"
        )
    if plan.kind == "routing_regression":
        src, dst = MODEL_PRICES[params["from_model"]], MODEL_PRICES[params["to_model"]]
        ratio = dst.input_per_mtok / src.input_per_mtok
        return f"{p.name}: calls routed from {src.name} to {dst.name} ({ratio:.1f}x the input price)"
    if plan.kind == "traffic_flood":
        return f"{p.name}: a misfiring trigger starts {params['multiplier']:g}x the usual tasks"
    if plan.kind == "subagent_explosion":
        return f"{p.name}: one task spawns {params['n_subagents']} sub-agents, nested up to 4 deep"
    return (
        f"{p.name}: a task leaves its {p.compute_name} open, billing "
        f"${params['usd_per_minute']:g}/min and never finishing"
    )


def realise_incident(
    plan: IncidentPlan, effects: FleetEffects, horizon_end: float, task_id: str
) -> tuple[Incident, list[Event]]:
    """The ground truth of ``plan`` and, for a task-level incident, its task's events (sorted)."""
    p = plan.profile
    scope = {"tenant": p.tenant, "team": p.team, "workflow": p.name}
    if plan.kind not in TASK_INCIDENTS:
        incident = Incident(
            plan.kind, plan.start_ts, plan.end_ts, scope, _describe(plan), details=dict(plan.params)
        )
        return incident, []
    rng = random.Random(plan.seed)
    args = (p, effects, rng, task_id, plan.start_ts, horizon_end)
    if plan.kind == "runaway_loop":
        rec = build_runaway(*args, cap_usd=plan.params["cap_usd"], max_hours=plan.params["max_hours"])
    elif plan.kind == "subagent_explosion":
        rec = build_subagent_explosion(*args, n_sub=plan.params["n_subagents"])
    else:
        rec = build_zombie(
            *args, usd_per_minute=plan.params["usd_per_minute"], max_hours=plan.params["max_hours"]
        )
    events = rec.events
    details = dict(plan.params)
    details["events"] = len(events)
    details.update(rec.marks)
    incident = Incident(
        plan.kind,
        events[0]["ts"],
        events[-1]["ts"],
        {**scope, "root_task_id": task_id},
        _describe(plan),
        root_task_id=task_id,
        cost_without_kill_usd=round(rec.cost_usd, 6),
        details=details,
    )
    return incident, events
