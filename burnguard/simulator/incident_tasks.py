"""The three task-level incidents: a runaway loop, a sub-agent explosion and a zombie task.

Each builder returns the :class:`TaskRecorder` of the whole incident task tree, cut at the end of
the simulated horizon (``horizon_end``, epoch seconds). Costs are USD.
"""

from __future__ import annotations

import random

from burnguard.simulator.agent_run import AgentRun, TaskRecorder
from burnguard.simulator.effects import FleetEffects
from burnguard.simulator.profiles import WorkflowProfile

__all__ = ["build_runaway", "build_subagent_explosion", "build_zombie"]


def _start(
    p: WorkflowProfile, rec: TaskRecorder, rng: random.Random, task_id: str, start_ts: float
) -> AgentRun:
    run = AgentRun(rec, rng, task_id, start_ts)
    run.start(p.budget_usd, {"prompt_version": p.prompt_version, "trigger": p.trigger})
    return run


def _cut(rec: TaskRecorder, horizon_end: float) -> TaskRecorder:
    """Drop what would happen after the simulation ends and recompute the spend."""
    rec.events = [e for e in rec.sorted_events() if e["ts"] <= horizon_end]
    rec.cost_usd = sum(e.get("cost_usd", 0.0) for e in rec.events)
    return rec


def build_runaway(
    profile: WorkflowProfile,
    effects: FleetEffects,
    rng: random.Random,
    task_id: str,
    start_ts: float,
    horizon_end: float,
    cap_usd: float = 150.0,
    max_hours: float = 6.0,
) -> TaskRecorder:
    """A task that starts normally, then loops: a model call every few seconds, each with a longer
    prompt (the same tool output is appended again and again; when the context window is nearly
    full the agent compacts it and it grows again), until ``cap_usd`` is spent or ``max_hours``
    have passed. It never sends ``task_finished``. Marks ``loop_start_ts``."""
    rec = TaskRecorder(profile, effects)
    run = _start(profile, rec, rng, task_id, start_ts)
    run.work(rng.randint(3, 6))
    stop = min(start_ts + max_hours * 3600.0, horizon_end)
    tool = profile.tools[0] if profile.tools else None
    rec.marks["loop_start_ts"] = round(run.t, 3)
    while rec.cost_usd < cap_usd and run.t < stop:
        run.pause(profile.think_ms)
        run.model_call()
        if tool is not None:
            run.tool_call(tool)
        run.context += 400  # the loop re-reads its own growing transcript
    return _cut(rec, horizon_end)


def _plan_tree(rng: random.Random, n_sub: int, max_depth: int) -> dict[int, list[int]]:
    """Children of each node (0 is the root) of a random tree with ``n_sub`` sub-agents."""
    children: dict[int, list[int]] = {0: []}
    depth = {0: 0}
    frontier: list[int] = []
    for _ in range(min(n_sub, rng.randint(4, 8))):
        node = len(depth)
        depth[node] = 1
        children[0].append(node)
        children[node] = []
        frontier.append(node)
    while len(depth) - 1 < n_sub and frontier:
        parent = frontier[rng.randrange(len(frontier))]
        if depth[parent] >= max_depth:
            frontier.remove(parent)
            continue
        node = len(depth)
        depth[node] = depth[parent] + 1
        children[parent].append(node)
        children[node] = []
        frontier.append(node)
    return children


def _run_subtree(run: AgentRun, node: int, children: dict[int, list[int]], rng: random.Random) -> None:
    for index, child_node in enumerate(children[node], start=1):
        run.pause(800.0)  # the parent hands out work one sub-agent at a time
        child = run.spawn(index, model=run.profile.model)  # the runaway planner spawns full agents
        child.work(1)
        _run_subtree(child, child_node, children, rng)
        child.work(rng.randint(1, 4))
        child.t = max(child.t, child.children_end)
        child.finish("success" if rng.random() < 0.9 else "failure")
        run.children_end = max(run.children_end, child.t)


def build_subagent_explosion(
    profile: WorkflowProfile,
    effects: FleetEffects,
    rng: random.Random,
    task_id: str,
    start_ts: float,
    horizon_end: float,
    n_sub: int = 60,
    max_depth: int = 4,
) -> TaskRecorder:
    """A root task that fans out into ``n_sub`` sub-agents nested up to ``max_depth`` levels deep
    (a normal task spawns 0-3), each making a few model calls; the root finishes when all are done."""
    rec = TaskRecorder(profile, effects)
    run = _start(profile, rec, rng, task_id, start_ts)
    if profile.retrieval:
        run.retrieval()
    run.work(2)
    _run_subtree(run, 0, _plan_tree(rng, n_sub, max_depth), rng)
    run.t = max(run.t, run.children_end)
    run.work(2)
    run.overhead()
    run.finish("success" if rng.random() < 0.5 else "failure")
    return _cut(rec, horizon_end)


def build_zombie(
    profile: WorkflowProfile,
    effects: FleetEffects,
    rng: random.Random,
    task_id: str,
    start_ts: float,
    horizon_end: float,
    usd_per_minute: float = 0.012,
    max_hours: float = 24.0,
) -> TaskRecorder:
    """A task that does its normal first steps, then leaves a session open: a ``compute`` step of
    about ``usd_per_minute`` every minute for up to ``max_hours``, and never finishes. Marks
    ``idle_start_ts``, when only the session bills remain."""
    rec = TaskRecorder(profile, effects)
    run = _start(profile, rec, rng, task_id, start_ts)
    run.work(rng.randint(2, 4))
    stop = min(start_ts + max_hours * 3600.0, horizon_end)
    rec.marks["idle_start_ts"] = round(run.t, 3)
    while True:
        run.t += 60.0 + rng.uniform(-1.5, 1.5)
        if run.t > stop:
            break
        run.compute(profile.compute_name, usd_per_minute * rng.uniform(0.95, 1.05), 60_000)
    return _cut(rec, horizon_end)
