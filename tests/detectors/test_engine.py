"""The engine's own duties: roll-up, dedup, bounded state, policy, episodes, pricing."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.config import Autonomy, BurnguardConfig
from detectors.engine import Engine
from schemas.anomaly import Action, Anomaly, AnomalyStatus
from tests.factory import T0, event, task_events


def _feed(engine: Engine, events: list[dict[str, Any]]) -> list[Anomaly]:
    out: list[Anomaly] = []
    for ev in events:
        found, reason = engine.process_obj(ev)
        assert reason is None, reason
        out += found
    return out


def test_sub_agents_roll_up_to_the_root_budget_lines() -> None:
    engine = Engine()
    _feed(
        engine,
        [
            event("task_started", "root", T0),
            event("step", "root", T0 + 1, category="model", cost_usd=0.5),
            event("task_started", "child", T0 + 2, root_task_id="root", parent_task_id="root"),
            event("step", "child", T0 + 3, root_task_id="root", category="tool", cost_usd=0.25),
            event("step", "child", T0 + 4, root_task_id="root", category="model", cost_usd=0.1, attempt=2),
            event("step", "root", T0 + 5, category="human_review", cost_usd=9.0),
        ],
    )
    task = engine.task("root")
    assert task is not None
    assert task.cost_usd == pytest.approx(9.85)
    assert task.subagents == 1 and task.max_depth == 1
    assert task.top_lines(4) == {"human_review": 9.0, "model": 0.5, "tool": 0.25, "failures_retries": 0.1}


def test_redelivered_event_is_not_counted_twice() -> None:
    engine = Engine()
    ev = event("step", "t", T0, category="model", cost_usd=1.0)
    _feed(engine, [ev, dict(ev), dict(ev)])
    task = engine.task("t")
    assert task is not None and task.cost_usd == 1.0
    assert engine.stats.duplicates == 2


def test_finished_tasks_leave_memory_and_late_events_do_not_resurrect_them() -> None:
    engine = Engine()
    _feed(engine, task_events("t1", T0))
    assert engine.live_tasks == 0 and engine.stats.tasks_finished == 1
    _feed(engine, [event("step", "t1", T0 + 100, category="tool", cost_usd=0.01)])
    assert engine.live_tasks == 0 and engine.stats.late_after_finish == 1


def test_silent_tasks_expire_after_the_ttl() -> None:
    engine = Engine(BurnguardConfig(task_ttl_s=3600))
    _feed(engine, task_events("ghost", T0, finish=False))
    assert engine.live_tasks == 1
    engine.advance_to(T0 + 2 * 3600 + 600)
    assert engine.live_tasks == 0 and engine.stats.tasks_expired == 1


def _over_budget() -> list[dict[str, Any]]:
    return task_events("b1", T0, steps=12, cost_per_step=0.1, budget_usd=1.0)


@pytest.mark.parametrize(
    ("autonomy", "action", "proposed"),
    [
        ("observe", Action.NONE, False),
        ("advise", Action.ALERT, False),
        ("approve", Action.ALERT, True),
        ("act", Action.KILL, False),
    ],
)
def test_autonomy_policy_decides_the_action(autonomy: str, action: Action, proposed: bool) -> None:
    found = _feed(Engine(autonomy=Autonomy(autonomy)), _over_budget())
    critical = [
        a
        for a in found
        if a.detector == "task_budget" and a.severity == "critical" and a.status is AnomalyStatus.FIRING
    ]
    assert len(critical) == 1
    assert critical[0].action is action
    assert bool(critical[0].evidence.get("kill_proposed")) is proposed


def test_default_autonomy_is_advise_and_a_kill_happens_once() -> None:
    assert Engine().config.defaults.autonomy is Autonomy.ADVISE
    engine = Engine(autonomy=Autonomy.ACT)
    found = _feed(engine, _over_budget())
    assert sum(a.action is Action.KILL for a in found) == 1 and engine.stats.kills == 1


def test_episode_fires_escalates_and_resolves_under_one_id() -> None:
    found = _feed(Engine(), _over_budget())
    budget = [a for a in found if a.detector == "task_budget"]
    assert [(a.status.value, a.severity.value) for a in budget] == [
        ("firing", "warning"),
        ("firing", "critical"),
        ("resolved", "critical"),
    ]
    assert len({a.anomaly_id for a in budget}) == 1
    assert "task finished" in budget[-1].evidence["resolution"]


def test_same_events_give_the_same_anomaly_ids_in_another_engine() -> None:
    events = _over_budget()
    first = [a.anomaly_id for a in _feed(Engine(), events)]
    assert first and first == [a.anomaly_id for a in _feed(Engine(), events)]


def test_unknown_model_is_announced_once_and_never_counted_as_zero() -> None:
    engine = Engine()
    steps = [
        event(
            "step",
            "u",
            T0 + i,
            category="model",
            name="mystery-model-9",
            provider="acme",
            input_tokens=1000,
            output_tokens=10,
        )
        for i in range(5)
    ]
    found = _feed(engine, steps)
    notices = [a for a in found if a.detector == "unpriced_model"]
    assert len(notices) == 1 and "mystery-model-9" in notices[0].summary
    assert engine.stats.unpriced_steps == 5
    task = engine.task("u")
    assert task is not None and task.unpriced_steps == 5 and task.steps == 5


def test_model_step_without_cost_is_priced_from_tokens() -> None:
    engine = Engine()
    _feed(
        engine,
        [
            event(
                "step",
                "p",
                T0,
                category="model",
                name="gpt-4o-mini",
                provider="openai",
                input_tokens=100_000,
                output_tokens=10_000,
            )
        ],
    )
    engine.finish()  # a stream's first events wait until confirm_events agree: this one is the whole stream
    task = engine.task("p")
    assert task is not None and 0.005 < task.cost_usd < 0.1 and task.unpriced_steps == 0


def test_workflow_override_beats_team_and_defaults() -> None:
    cfg = BurnguardConfig.model_validate(
        {
            "defaults": {"autonomy": "observe"},
            "overrides": [
                {"match": {"workflow": "wf"}, "autonomy": "act"},
                {
                    "match": {"team": "team-a"},
                    "autonomy": "approve",
                    "detectors": {"task_budget": {"ceiling_usd": 0.5}},
                },
            ],
        }
    )
    settings = cfg.resolve("acme", "team-a", "wf")
    assert settings.policy.autonomy is Autonomy.ACT
    assert settings.params["task_budget"].ceiling_usd == 0.5  # type: ignore[attr-defined]
    assert cfg.resolve("acme", "team-b", "other").policy.autonomy is Autonomy.OBSERVE


def test_invalid_json_is_rejected_with_a_reason_not_an_exception() -> None:
    engine = Engine()
    found, reason = engine.process_bytes(b'{"event_id": "x", "kind": "step"')
    assert found == [] and reason and "json" in reason.lower()
    found, reason = engine.process_bytes(b'{"event_id": "x", "ts": 5, "kind": "step"}')
    assert reason is not None and "team" in reason and "ts" in reason
    assert engine.stats.rejected == 2


def test_every_engine_ticks_on_whole_minutes_whatever_the_time_of_its_first_event() -> None:
    """Replay and each partition of the Kafka worker see different first events; a tick's time is
    part of the id of what it raises, so the ticks fall on whole multiples of the tick interval."""
    for first in (T0 + 17.25, T0 + 59.9, T0 + 300.0):
        engine = Engine(BurnguardConfig())
        for ev in task_events("t", first, steps=120, every_s=7.0):
            engine.process_obj(ev)
        assert engine.next_tick % 60 == 0, first


def test_a_detector_snapshot_of_another_version_is_relearned_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine()
    _feed(engine, [e for i in range(25) for e in task_events(f"t{i}", T0 + 60 * i)])
    snap = engine.snapshot()
    (key,) = [k for k in snap["detectors"] if not k.startswith("scope:")]
    assert snap["detectors"][key]["runaway_task"]["state"]["base"][0]["n"] == 25  # what it had learned
    snap["detectors"][key]["runaway_task"]["v"] = 999  # written by another version
    restored = Engine()
    with caplog.at_level("WARNING", logger="burnguard.engine"):
        restored.restore(snap)
        _feed(restored, task_events("after", T0 + 3600))
    assert restored.stats.tasks_finished >= 1
    assert any("runaway_task" in r.getMessage() and "starts learning afresh" in r.getMessage() for r in caplog.records)
    fresh = restored.snapshot()["detectors"][key]
    assert fresh["runaway_task"]["v"] == 1 and fresh["runaway_task"]["state"]["base"][0]["n"] == 1  # afresh
    assert fresh["fan_out"]["state"]["subagents"]["n"] == 26  # the others kept what they had learned
