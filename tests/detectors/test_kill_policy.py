"""The kill policy: what a kill aims at, its command id, and one kill per target per cool-down."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.config import Autonomy, BurnguardConfig, PolicySettings
from detectors.engine import Engine
from detectors.kill_policy import KillCooldowns, aim_kill, kill_command_id, kill_target
from schemas.anomaly import Action, Anomaly, AnomalyStatus
from tests.factory import T0, task_events

SCOPE = {"tenant": "acme", "team": "team-a", "workflow": "support", "root_task_id": "r1"}


def _config(kill_scope: str, cooldown_s: float, autonomy: str = "act") -> BurnguardConfig:
    return BurnguardConfig.model_validate(
        {"defaults": {"autonomy": autonomy, "kill_scope": kill_scope, "kill_cooldown_s": cooldown_s}}
    )


def _runaway(task: str, start: float, agent: str = "coder") -> list[dict[str, Any]]:
    """A task that runs through its $0.50 budget (critical at the 7th step) and keeps going."""
    return task_events(task, start, steps=10, cost_per_step=0.08, budget_usd=0.5, finish=False, agent=agent)


def _kills(engine: Engine, events: list[dict[str, Any]]) -> list[Anomaly]:
    out: list[Anomaly] = []
    for ev in sorted(events, key=lambda e: e["ts"]):
        found, reason = engine.process_obj(ev)
        assert reason is None
        out += found
    return [a for a in out if a.status is AnomalyStatus.FIRING and a.severity == "critical"]


def test_targets_per_scope_and_a_scope_without_the_id() -> None:
    assert kill_target(SCOPE, "task") == {"scope": "task", **SCOPE}
    assert kill_target(SCOPE, "agent") is None  # a task's anomaly scope does not name its agent
    assert kill_target(SCOPE, "agent", agent="coder") == {
        "scope": "agent",
        "tenant": "acme",
        "team": "team-a",
        "agent": "coder",
    }
    assert kill_target(SCOPE, "workflow") == {
        "scope": "workflow",
        "tenant": "acme",
        "team": "team-a",
        "workflow": "support",
    }
    with pytest.raises(ValueError, match="unknown kill scope"):
        kill_target(SCOPE, "tenant")


def test_command_id_is_deterministic_per_anomaly_and_target() -> None:
    task = kill_target(SCOPE, "task")
    workflow = kill_target(SCOPE, "workflow")
    assert task is not None and workflow is not None
    assert kill_command_id("a-1", task) == kill_command_id("a-1", dict(task))
    assert len({kill_command_id("a-1", task), kill_command_id("a-2", task), kill_command_id("a-1", workflow)}) == 3


def test_cooldown_holds_a_target_back_until_it_ends_and_prunes() -> None:
    cooldowns = KillCooldowns()
    wf = ("acme", "team-a", "support")
    target = {"scope": "agent", "agent": "coder"}
    assert cooldowns.cooling_until(wf, target, T0) is None
    cooldowns.start(wf, target, T0, 300.0)
    assert cooldowns.cooling_until(wf, target, T0 + 299) == T0 + 300
    assert cooldowns.cooling_until(wf, {"scope": "agent", "agent": "other"}, T0 + 1) is None
    assert cooldowns.cooling_until(wf, target, T0 + 300) is None
    restored = KillCooldowns()
    restored.restore(cooldowns.snapshot())
    assert restored.cooling_until(wf, target, T0 + 10) == T0 + 300
    cooldowns.prune(T0 + 301)
    assert cooldowns.snapshot() == {}


def test_aim_kill_turns_a_cooling_kill_into_an_alert_that_says_why() -> None:
    cooldowns = KillCooldowns()
    policy = PolicySettings(autonomy=Autonomy.ACT, kill_scope="workflow", kill_cooldown_s=60)
    action, note = aim_kill(SCOPE, T0, policy, Action.KILL, {}, "a-1", cooldowns)
    assert action is Action.KILL and note["kill_target"]["workflow"] == "support"
    cooldowns.start(("acme", "team-a", "support"), note["kill_target"], T0, 60)
    action, note = aim_kill(SCOPE, T0 + 30, policy, Action.KILL, {}, "a-2", cooldowns)
    assert action is Action.ALERT and note["kill_cooldown_until"] == T0 + 60 and "held back" in note["kill"]
    # a proposal (approve) is held back the same way, and an alert is left alone
    action, note = aim_kill(SCOPE, T0 + 30, policy, Action.ALERT, {"kill_proposed": True}, "a-3", cooldowns)
    assert action is Action.ALERT and "kill_proposed" not in note
    assert aim_kill(SCOPE, T0, policy, Action.ALERT, {"autonomy": "advise"}, "a-4", cooldowns)[1] == {
        "autonomy": "advise"
    }


def test_agent_scope_kills_an_agent_once_per_cooldown_not_once_per_runaway_task() -> None:
    engine = Engine(_config("agent", cooldown_s=600))
    events = _runaway("t1", T0) + _runaway("t2", T0 + 100) + _runaway("t3", T0 + 900)
    critical = _kills(engine, events)
    assert [a.scope["root_task_id"] for a in critical] == ["t1", "t2", "t3"]
    assert [a.action for a in critical] == [Action.KILL, Action.ALERT, Action.KILL]
    assert critical[0].evidence["kill_target"] == {
        "scope": "agent",
        "tenant": "acme",
        "team": "team-a",
        "agent": "coder",
    }
    assert critical[1].evidence["kill_cooldown_until"] == pytest.approx(critical[0].ts + 600)
    ids = {a.evidence["kill_command_id"] for a in critical if a.action is Action.KILL}
    assert len(ids) == 2


def test_another_agent_is_not_held_back_by_ones_cooldown() -> None:
    engine = Engine(_config("agent", cooldown_s=600))
    critical = _kills(engine, _runaway("t1", T0, agent="coder") + _runaway("t2", T0 + 100, agent="writer"))
    assert [a.action for a in critical] == [Action.KILL, Action.KILL]


def test_cooldown_survives_a_checkpoint_and_restore() -> None:
    config = _config("workflow", cooldown_s=600)
    engine = Engine(config)
    assert [a.action for a in _kills(engine, _runaway("t1", T0))] == [Action.KILL]
    whole = Engine(config)
    whole.restore(engine.snapshot())
    assert [a.action for a in _kills(whole, _runaway("t2", T0 + 100))] == [Action.ALERT]
    # per workflow, as the Kafka worker checkpoints it
    part = engine.snapshot_workflow(("acme", "team-a", "wf"))
    assert part["kills"] == {"acme\x1fteam-a\x1fwf": {"workflow:wf": pytest.approx(T0 + 35 + 600)}}


def test_approve_mode_proposes_with_the_command_id_the_operator_approves() -> None:
    critical = _kills(Engine(_config("task", cooldown_s=300, autonomy="approve")), _runaway("t1", T0))
    (proposal,) = critical
    assert proposal.action is Action.ALERT and proposal.evidence["kill_proposed"] is True
    target = proposal.evidence["kill_target"]
    assert proposal.evidence["kill_command_id"] == kill_command_id(proposal.anomaly_id, target)


def test_approve_mode_proposes_one_kill_per_runaway_task_and_later_findings_name_it() -> None:
    """A task through its budget (task_budget, critical) that keeps burning until it is far beyond
    its workflow's tasks (runaway_task, critical) minutes later, past the cool-down: one proposal;
    the later finding alerts and names the proposal to decide."""
    engine = Engine(_config("task", cooldown_s=300, autonomy="approve"))
    warm = [ev for i in range(25) for ev in task_events(f"ok-{i}", T0 + 60 * i, steps=4, cost_per_step=0.02)]
    start = T0 + 60 * 30
    runaway = task_events("r1", start, steps=40, cost_per_step=0.08, every_s=60, budget_usd=0.5, finish=False)
    critical = [a for a in _kills(engine, warm + runaway) if a.scope.get("root_task_id") == "r1"]
    assert sorted(a.detector for a in critical) == ["runaway_task", "task_budget"]
    assert critical[1].ts - critical[0].ts > 300  # the cool-down alone would let a second one through
    (proposal,) = [a for a in critical if a.evidence.get("kill_proposed")]
    (later,) = [a for a in critical if a is not proposal]
    command_id = proposal.evidence["kill_command_id"]
    assert later.action is Action.ALERT and "kill_command_id" not in later.evidence
    assert later.evidence["kill_proposal"] == command_id
    assert later.evidence["kill"] == f"already proposed for this task: burnguard kill show {command_id}"


def test_in_approve_mode_another_runaway_task_gets_its_own_proposal() -> None:
    engine = Engine(_config("task", cooldown_s=300, autonomy="approve"))
    critical = _kills(engine, _runaway("t1", T0) + _runaway("t2", T0 + 1))
    assert sorted(a.scope["root_task_id"] for a in critical if a.evidence.get("kill_proposed")) == ["t1", "t2"]


def test_a_workflow_whose_every_task_outgrows_the_baseline_loses_tasks_to_a_few_kills_not_to_each() -> None:
    """A routing regression: after 30 ordinary $0.10 tasks, every task costs 8x. runaway_task finds
    each (critical: 8x the p99), but only the first ``max_learned_kills`` are killed within the hour;
    the rest alert, critical, saying the workflow has shifted. A task budget still kills: it is a rule."""
    config = BurnguardConfig.model_validate(
        {"defaults": {"autonomy": "act", "kill_cooldown_s": 300, "max_learned_kills": 3}}
    )
    assert BurnguardConfig().defaults.max_learned_kills == 0  # off unless configured (see the README)
    engine = Engine(config)
    ordinary = [ev for n in range(30) for ev in task_events(f"n{n}", T0 + 60 * n, cost_per_step=0.01)]
    shifted = [
        ev for n in range(8) for ev in task_events(f"s{n}", T0 + 1800 + 300 * n, steps=20, cost_per_step=0.06)
    ]
    runaway = [a for a in _kills(engine, ordinary + shifted) if a.detector == "runaway_task"]
    assert [a.scope["root_task_id"] for a in runaway] == [f"s{n}" for n in range(8)]
    assert [a.action for a in runaway] == [Action.KILL] * 3 + [Action.ALERT] * 5
    assert runaway[3].evidence["kill_breaker"] == {"killed": 3, "window_s": 3600.0}
    assert "the workflow has shifted" in runaway[3].evidence["kill"]
    # an hour after the first kill, it counts no more: a runaway then is killed again
    late = _kills(engine, task_events("s-late", T0 + 1800 + 3 * 3600, steps=20, cost_per_step=0.06))
    assert [(a.detector, a.action) for a in late] == [("runaway_task", Action.KILL)]
    # a hand-set budget is not limited by what learned baselines did
    budget = _kills(engine, _runaway("b1", T0 + 1800 + 3 * 3600 + 60) + _runaway("b2", T0 + 1800 + 3 * 3600 + 120))
    assert [a.action for a in budget if a.detector == "task_budget"] == [Action.KILL, Action.KILL]


def test_max_learned_kills_is_a_policy_per_scope_and_0_means_no_limit() -> None:
    config = BurnguardConfig.model_validate(
        {
            "defaults": {"autonomy": "act", "max_learned_kills": 3},
            "overrides": [{"match": {"workflow": "wf"}, "max_learned_kills": 0, "kill_window_s": 600}],
        }
    )
    policy = config.resolve("acme", "team-a", "wf").policy
    assert (policy.max_learned_kills, policy.kill_window_s) == (0, 600)
    assert config.resolve("acme", "team-a", "other").policy.max_learned_kills == 3
    cooldowns = KillCooldowns()
    for n in range(5):
        cooldowns.count_kill(("acme", "team-a", "wf"), f"kill-{n}", T0, 600)
    action, note = aim_kill(
        {**SCOPE, "workflow": "wf"}, T0 + 1, policy, Action.KILL, {}, "runaway_task-1", cooldowns,
        detector="runaway_task",
    )
    assert action is Action.KILL and "kill_breaker" not in note
