"""The alerting stage stopped in the middle of an outage (SIGKILL or SIGTERM) and restarted, on the real
broker with the real Slack and PagerDuty clients against local servers: every episode paged once, under
the key it had before the stop (issue 9, item 2)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerting.testing.anomalies import T0, make_anomaly, resolved
from alerting.testing.http import Answer
from schemas.anomaly import Action
from tests.streams.alerter_fixtures import (
    V1_RECORD,
    V1_THREAD_TS,
    Channels,
    alerter_env,
    channels,
    dead_letters,
    outbox_empty,
    produce_anomalies,
    start_alerter,
    state_of,
    storm,
    triggers_by_key,
)
from tests.streams.conftest import (
    Names,
    produce,
    wait_until,
)

pytestmark = pytest.mark.kafka
__all__ = ["channels", "start_alerter"]  # fixtures


def _kills(workflow: str, n: int, t0: float = T0) -> list[Any]:
    """``n`` critical runaway_task kills, one task each: one group."""
    return [
        make_anomaly(workflow=workflow, task=f"{workflow}-{i}", severity="critical", action="kill", ts=t0 + i)
        for i in range(n)
    ]


def _resolved(anomalies: list[Any]) -> list[Any]:
    return [resolved(a).model_copy(update={"action": Action.NONE}) for a in anomalies]  # as the engine resolves


async def _keys_held(names: Names) -> dict[str, set[str]]:
    """dedup_key -> the anomaly ids the latest state holds for it (open groups and the outbox)."""
    state = await state_of(names)
    found: dict[str, set[str]] = {}
    if state is None:
        return found
    for g in (state.pipeline or {}).get("groups", []):
        found.setdefault(g["dedup_key"], set()).update(a["anomaly_id"] for a in g["alerts"])
    for e in state.outbox.entries.values():
        n = e.notification
        found.setdefault(n.dedup_key, set()).update(a.anomaly_id for a in (*n.firing, *n.resolved))
    return found


def _paged(channels: Channels) -> dict[str, set[str]]:
    """dedup_key -> the anomaly ids its accepted triggers named."""
    found: dict[str, set[str]] = {}
    for e in channels.pd.events:
        if e["event_action"] == "trigger":
            details = e["payload"]["custom_details"]
            ids = {details["anomaly_id"], *(o["anomaly_id"] for o in details.get("others", []))}
            found.setdefault(e["dedup_key"], set()).update(ids)
    return found


@pytest.mark.parametrize("signal", ["SIGKILL", "SIGTERM"])
async def test_an_alerter_stopped_in_an_outage_pages_every_anomaly_once_under_the_episode_key(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path, signal: str
) -> None:
    """Issue 9 #2: Slack and PagerDuty answer 500, then hang; the alerter is SIGKILLed (or SIGTERMed)
    mid-outage with five kills and a critical finding in their group_wait; the episodes resolve while
    no alerter runs; restart; the channels recover. Each episode: one Slack message, its resolve in the
    thread and the edit; one PagerDuty trigger naming every anomaly and one resolve, under the key the
    state held before the restart. Before the fix the restarted alerter took the firing and resolved
    states in one step on its own clock, released nothing for them, and paged a later anomaly of the
    group under a new key."""
    await names.create_topics()
    env = alerter_env(names, channels.config(tmp_path / "alerting.yaml", group_wait="2s", group_interval="3s"))
    first = start_alerter(env)
    for server in (channels.slack, channels.pd):
        server.outage(Answer(500), then=Answer(hang=True), after=3)
    billing = storm("billing", 1)  # an episode retrying through the outage when the alerter stops
    await produce_anomalies(names, billing)

    async def hanging() -> bool:
        return channels.slack.outage_answers > 3 and channels.pd.outage_answers > 3

    await wait_until(hanging, "the billing page past the 500s, hanging", 60, [first])
    kills = _kills("support", 5)
    budget = [make_anomaly(workflow="support", task="support-x", detector="task_budget", severity="critical")]
    await produce_anomalies(names, kills + budget)

    async def held() -> dict[str, set[str]] | None:
        keys = await _keys_held(names)
        wanted = [{a.anomaly_id for a in kills}, {a.anomaly_id for a in budget}]
        return keys if all(any(ids == w for ids in keys.values()) for w in wanted) else None

    before = await wait_until(held, "the kills in the state", 30, [first])
    if signal == "SIGKILL":
        first.kill()
    else:
        first.stop()
        assert first.proc.returncode == 0  # it stopped on its own (not SIGKILLed), channels hanging or not
    await asyncio.sleep(3)  # past the group_wait: live, both groups would have been paged by now
    await produce_anomalies(names, _resolved(kills + budget))

    second = start_alerter(env)
    await wait_until(lambda: _released(names, 4), "pages and resolves in the outbox", 60, [second])
    assert channels.slack.messages == [] and channels.pd.events == []
    for server in (channels.slack, channels.pd):
        server.outage(None)

    async def delivered() -> bool:
        return len(triggers_by_key(channels.pd, "resolve")) == 2 and await outbox_empty(names)

    await wait_until(delivered, "every notification delivered", 120, [second])
    await asyncio.sleep(2)  # a duplicate would have time to arrive
    paged = _paged(channels)
    assert paged == before  # every anomaly paged, under the key the state held before the restart
    assert sorted(triggers_by_key(channels.pd).values()) == [1, 1, 1]  # one trigger per dedup_key
    assert triggers_by_key(channels.pd, "resolve") == Counter({k: 1 for k, ids in paged.items() if ids != {
        a.anomaly_id for a in billing}})
    assert len(channels.slack.top_level) == 3 and len(channels.slack.replies) == 2 and len(channels.slack.updates) == 2
    assert await dead_letters(names) == []
    channels.assert_well_formed()


async def _released(names: Names, n: int) -> bool:
    state = await state_of(names)
    return state is not None and len(state.outbox) >= n


async def test_a_sigkill_between_a_thread_reply_and_its_parent_edit_replies_once(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    """A resolve is a thread reply, then an edit of the parent: the reply is recorded before the edit,
    so an alerter killed while the edit hangs edits after the restart without replying again."""
    await names.create_topics()
    env = alerter_env(names, channels.config(tmp_path / "alerting.yaml", group_wait="1s", group_interval="2s"))
    first = start_alerter(env)
    kills = _kills("support", 2)
    await produce_anomalies(names, kills)

    async def paged() -> bool:
        return len(channels.slack.messages) == 1 and len(channels.pd.events) == 1 and await outbox_empty(names)

    await wait_until(paged, "the episode paged and posted", 60, [first])
    channels.slack.outage(Answer(hang=True), only="chat.update")
    await produce_anomalies(names, _resolved(kills))

    async def replied() -> bool:  # the edit is sent once the reply is recorded
        return len(channels.slack.replies) == 1 and channels.slack.outage_answers >= 1

    await wait_until(replied, "the resolve replied in the thread, the edit hanging", 60, [first])
    first.kill()
    second = start_alerter(env)
    await asyncio.sleep(3)
    channels.slack.outage(None)

    async def edited() -> bool:
        return len(channels.slack.updates) == 1 and await outbox_empty(names)

    await wait_until(edited, "the parent edited", 60, [second])
    assert len(channels.slack.replies) == 1  # not twice
    assert [e["event_action"] for e in channels.pd.events] == ["trigger", "resolve"]
    state = await state_of(names)
    assert state.log.get("slack", {}) == {}  # no thread left open, no reply waiting for its parent's edit
    channels.assert_well_formed()


async def test_a_state_record_written_before_the_notification_log_restores_its_slack_thread(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    """An alerter upgraded over a state record in the format before the notification log (Slack's
    threads under a top-level ``slack`` key), killed between the thread reply of a resolve and the
    parent's edit: the new alerter edits that thread's parent, replies nothing again, pages nothing."""
    await names.create_topics()
    record = orjson.loads(V1_RECORD.read_bytes())
    record["offsets"] = {"0": 0}  # the record's anomalies were read from another topic
    await produce(names.bootstrap, names.alerts_state, [(f"{names.app_id}-alerter".encode(), orjson.dumps(record))])
    alerter = start_alerter(alerter_env(names, channels.config(tmp_path / "alerting.yaml")))

    async def edited() -> bool:
        return len(channels.slack.updates) == 1 and await outbox_empty(names)

    await wait_until(edited, "the old thread's parent edited", 60, [alerter])
    (update,) = channels.slack.updates
    assert (update["channel"], update["ts"]) == ("C0ONCALL", V1_THREAD_TS)
    assert channels.slack.messages == [] and channels.pd.requests == []  # no second reply, no second resolve
    state = await state_of(names)
    assert state.log == {}
    channels.assert_well_formed()
