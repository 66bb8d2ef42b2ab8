"""One ordinary root task of a workflow, with its sub-agents (times epoch seconds, costs USD)."""

from __future__ import annotations

import random

from burnguard.simulator.agent_run import AgentRun, TaskRecorder, lognormal_int
from burnguard.simulator.effects import FleetEffects
from burnguard.simulator.profiles import WorkflowProfile

__all__ = ["build_task"]


def _outcome(rng: random.Random, p: WorkflowProfile, reviewed: bool, tools_ok: bool) -> str:
    if reviewed and rng.random() < 0.6:
        return "escalated"
    if not tools_ok and rng.random() < 0.7:
        return "failure"
    roll = rng.random()
    if roll < p.success_rate:
        return "success"
    return "escalated" if roll > 0.97 else "failure"


def build_task(
    profile: WorkflowProfile, effects: FleetEffects, rng: random.Random, task_id: str, start_ts: float
) -> TaskRecorder:
    """Simulate one ordinary root task of ``profile`` (and its sub-agents) starting at ``start_ts``."""
    p = profile
    rec = TaskRecorder(p, effects)
    run = AgentRun(rec, rng, task_id, start_ts)
    run.start(p.budget_usd, {"prompt_version": p.prompt_version, "trigger": p.trigger})
    if p.guardrail:
        run.guardrail("input")
    if p.retrieval:
        run.retrieval()
    calls = lognormal_int(rng, p.calls_median, p.calls_sigma, 1, p.max_calls)
    spawn_at: list[int] = []
    if p.subagent_share and rng.random() < p.subagent_share:
        spawn_at = sorted(rng.randrange(calls) for _ in range(rng.randint(1, 3)))
    tools_ok = True
    for i in range(calls):
        tools_ok = run.work(1, 0.0) and tools_ok
        for j, at in enumerate(spawn_at):
            if at == i:
                child = run.spawn(j + 1)
                child_ok = child.work(lognormal_int(rng, 4, 0.5, 1, 15))
                child.finish("success" if child_ok and rng.random() < 0.95 else "failure")
                run.children_end = max(run.children_end, child.t)
        if p.tools and i < calls - 1 and rng.random() < p.tool_share:
            tools_ok = run.tool_call(p.tools[rng.randrange(len(p.tools))]) and tools_ok
    reviewed = p.human_review_rate > 0 and rng.random() < p.human_review_rate
    if reviewed:
        run.human_review()
    if p.guardrail:
        run.guardrail("output")
    run.t = max(run.t, run.children_end)
    run.pause(200.0)
    outcome = _outcome(rng, p, reviewed, tools_ok)
    run.overhead()
    value = None if p.value_usd is None else (p.value_usd if outcome == "success" else 0.0)
    run.finish(outcome, value)
    return rec
