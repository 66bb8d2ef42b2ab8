"""What a kill is aimed at, its deterministic command id, and the cool-down per target.

The engine decides *whether* a finding may kill (:func:`detectors.episodes.decide_action`); this
module decides *what* it halts — the target named by the policy's ``kill_scope`` (the root task, its
agent, or its whole workflow) — and *whether it is too soon*: a target killed (or proposed for a
kill) less than ``kill_cooldown_s`` ago in event time is not killed again, so one runaway gives one
command, not one per event, and an agent whose tasks run away one after another is halted once per
cool-down. Cool-downs are remembered per workflow (that is how the Kafka worker checkpoints them).

With ``max_learned_kills`` set (0, the default, is no limit), a learned baseline
(:data:`LEARNED_KILLERS`) kills at most that many tasks of one workflow within ``kill_window_s``.
When more of its tasks outgrow the baseline than that, the whole workflow may have shifted (a model
routing regression makes every task cost 5-8x its old p99): that is one finding about the workflow
— cost_shift and burn_rate alert on it — not a runaway in each task that merely follows the new
normal, so further findings alert, critical, with ``kill: held back …`` and ``kill_breaker`` in
their evidence. Hand-set rules (a task budget, the
retry stop rule) are not limited: they say what no task may do, whatever its peers do.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from detectors.config import PolicySettings
from schemas.anomaly import Action

__all__ = ["LEARNED_KILLERS", "KillCooldowns", "aim_kill", "kill_command_id", "kill_target", "target_key"]

#: the detectors whose kills rest on a learned baseline of the workflow's own tasks
LEARNED_KILLERS = frozenset({"runaway_task", "fan_out", "stale_task"})
_KILLED = "killed:"  # the label prefix of a kill counted against its workflow's max_learned_kills

WorkflowKey = tuple[str, ...]


def kill_target(scope: dict[str, str], kill_scope: str, agent: str | None = None) -> dict[str, str] | None:
    """The ``burnguard.kill/1`` target (``scope`` plus the ids naming it) of a finding on ``scope``,
    or ``None`` when the finding's scope lacks the id the policy's ``kill_scope`` needs.

    ``agent`` is the task's agent name (task-level anomaly scopes do not carry it).

    >>> kill_target({"tenant": "a", "team": "t", "workflow": "w", "root_task_id": "r1"}, "task")
    {'scope': 'task', 'tenant': 'a', 'team': 't', 'workflow': 'w', 'root_task_id': 'r1'}
    >>> kill_target({"tenant": "a", "team": "t", "workflow": "w", "root_task_id": "r1"}, "agent", agent="coder")
    {'scope': 'agent', 'tenant': 'a', 'team': 't', 'agent': 'coder'}
    >>> kill_target({"tenant": "a", "team": "t", "workflow": "w"}, "task") is None
    True
    """
    tenant, team, workflow = scope.get("tenant"), scope.get("team"), scope.get("workflow")
    context = {k: v for k, v in (("tenant", tenant), ("team", team)) if v}
    if kill_scope == "task":
        root = scope.get("root_task_id")
        return {"scope": "task", **context, "workflow": workflow, "root_task_id": root} if root and workflow else None
    if kill_scope == "agent":
        agent = agent or scope.get("agent")
        return {"scope": "agent", **context, "agent": agent} if agent else None
    if kill_scope == "workflow":
        return {"scope": "workflow", **context, "workflow": workflow} if workflow else None
    raise ValueError(f"unknown kill scope {kill_scope!r}")


def target_key(target: dict[str, str]) -> str:
    """The target's own id, the Kafka key of its commands (as :attr:`schemas.killswitch.KillTarget.key`).

    >>> target_key({"scope": "agent", "agent": "coder"})
    'coder'
    """
    field = {"task": "root_task_id", "agent": "agent", "workflow": "workflow"}[target["scope"]]
    return target.get(field) or ""


def kill_command_id(anomaly_id: str, target: dict[str, str]) -> str:
    """Deterministic command id: the same anomaly against the same target always gives the same id,
    so a command sent again after a crash or a replay is recognised as the same order.

    >>> kill_command_id("runaway_task-0123", {"scope": "task", "root_task_id": "r1"})
    'kill-9a28c39974725e53b781c9e3'
    """
    canonical = orjson.dumps([anomaly_id, target["scope"], target_key(target)])
    return "kill-" + hashlib.sha256(canonical).hexdigest()[:24]


class KillCooldowns:
    """Per workflow, per target (``"scope:id"``): the event time (epoch s) until which it is not
    killed again. Plain data, snapshotted per workflow with the rest of the engine's state."""

    def __init__(self) -> None:
        self.until: dict[WorkflowKey, dict[str, float]] = {}

    @staticmethod
    def label(target: dict[str, str]) -> str:
        return f"{target['scope']}:{target_key(target)}"

    def cooling_until(self, workflow: WorkflowKey, target: dict[str, str], ts: float) -> float | None:
        """The end of the cool-down in force for ``target`` at event time ``ts``, else ``None``."""
        until = self.until.get(workflow, {}).get(self.label(target))
        return until if until is not None and ts < until else None

    def start(self, workflow: WorkflowKey, target: dict[str, str], ts: float, cooldown_s: float) -> None:
        """A kill of ``target`` was issued (or proposed) at event time ``ts``."""
        if cooldown_s > 0:
            self.until.setdefault(workflow, {})[self.label(target)] = ts + cooldown_s

    def count_kill(self, workflow: WorkflowKey, command_id: str, ts: float, window_s: float) -> None:
        """A learned baseline's kill (or proposal) ``command_id`` at ``ts``: it counts for ``window_s``."""
        self.until.setdefault(workflow, {})[_KILLED + command_id] = ts + window_s

    def recent_kills(self, workflow: WorkflowKey, ts: float) -> int:
        """How many learned kills of ``workflow`` still count at event time ``ts``."""
        return sum(1 for k, until in self.until.get(workflow, {}).items() if k.startswith(_KILLED) and ts < until)

    def prune(self, now: float) -> None:
        """Forget cool-downs that ended before event time ``now`` (memory stays bounded)."""
        for workflow in list(self.until):
            alive = {k: v for k, v in self.until[workflow].items() if v > now}
            if alive:
                self.until[workflow] = alive
            else:
                del self.until[workflow]

    def snapshot(self, workflow: WorkflowKey | None = None) -> dict[str, dict[str, float]]:
        """``{"tenant\\x1fteam\\x1fworkflow": {label: until}}``, for one workflow or all of them."""
        keys = [workflow] if workflow is not None else list(self.until)
        return {"\x1f".join(k): dict(self.until[k]) for k in keys if self.until.get(k)}

    def restore(self, data: dict[str, Any]) -> None:
        self.until = {
            tuple(k.split("\x1f")): {str(label): float(until) for label, until in v.items()} for k, v in data.items()
        }


def aim_kill(
    scope: dict[str, str],
    ts: float,
    policy: PolicySettings,
    action: Action,
    note: dict[str, Any],
    anomaly_id: str,
    cooldowns: KillCooldowns,
    agent: str | None = None,
    detector: str = "",
) -> tuple[Action, dict[str, Any]]:
    """Give a kill (``action`` kill, or a proposed kill in ``note``) its target and command id, or
    turn it into an alert when the scope lacks the target's id or the target is cooling down.

    The evidence then says why: ``kill_target`` and ``kill_command_id`` for a kill that goes ahead
    (the approve command an operator runs names that id), ``kill`` and ``kill_cooldown_until`` for
    one held back (``kill_breaker`` too when the workflow's learned kills are used up: see the module
    docstring). The caller starts the cool-down once the anomaly is really emitted.
    """
    if action is not Action.KILL and not note.get("kill_proposed"):
        return action, note
    target = kill_target(scope, policy.kill_scope, agent)
    note = {k: v for k, v in note.items() if k != "kill_proposed"}
    if target is None:
        note["kill"] = f"not possible: the finding's scope names no {policy.kill_scope}"
        return Action.ALERT, note
    workflow = (scope.get("tenant", "default"), scope.get("team", ""), scope.get("workflow", ""))
    until = cooldowns.cooling_until(workflow, target, ts)
    if until is not None:
        note["kill"] = (
            f"held back: {target['scope']} {target_key(target)} was killed less than {policy.kill_cooldown_s:g}s ago"
        )
        note["kill_cooldown_until"] = until
        return Action.ALERT, note
    if detector in LEARNED_KILLERS and policy.max_learned_kills:
        killed = cooldowns.recent_kills(workflow, ts)
        if killed >= policy.max_learned_kills:
            note["kill"] = (
                f"held back: {killed} tasks of {workflow[2]} were killed in the last {policy.kill_window_s / 60:g} "
                "min; when this many outgrow the baseline, the workflow has shifted: review it"
            )
            note["kill_breaker"] = {"killed": killed, "window_s": policy.kill_window_s}
            return Action.ALERT, note
    if action is not Action.KILL:
        note["kill_proposed"] = True
    note["kill_target"] = target
    note["kill_command_id"] = kill_command_id(anomaly_id, target)
    return action, note
