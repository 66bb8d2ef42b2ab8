"""The alerting stage end to end: ``burnguard alerter`` on the real broker, delivering through the real
slack-sdk and pagerduty clients to the local Slack and PagerDuty (TLS) servers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from alerting.testing.anomalies import T0, resolved
from alerting.testing.http import Answer
from tests.streams.alerter_fixtures import (
    Channels,
    alerter_env,
    channels,
    dead_letters,
    outbox_empty,
    paged_anomaly_ids,
    produce_anomalies,
    start_alerter,
    state_of,
    storm,
    triggers_by_key,
)
from tests.streams.conftest import (
    BURNGUARD,
    Names,
    group_assignment,
    produce,
    produce_events,
    read_until,
    wait_drained,
    wait_until,
)
from tests.streams.test_pipeline_kafka import CONFIG, workload

pytestmark = pytest.mark.kafka
__all__ = ["channels", "start_alerter"]  # fixtures


async def test_anomalies_become_one_message_and_one_page_per_group_and_resolve(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    config = channels.config(tmp_path / "alerting.yaml", group_wait="3s", group_interval="2s")
    alerter = start_alerter(alerter_env(names, config))
    a, b = storm("support", 4), storm("billing", 3)
    await produce_anomalies(names, a + b)

    async def paged() -> bool:
        return len(channels.pd.events) >= 2 and len(channels.slack.messages) >= 2

    await wait_until(paged, "a page and a Slack message for each group", 90, [alerter])
    triggers = triggers_by_key(channels.pd)
    assert sorted(triggers.values()) == [1, 1]
    assert [m["channel"] for m in channels.slack.top_level] == ["#oncall", "#oncall"]
    # the storm of each group is in its one message: every anomaly named once
    assert paged_anomaly_ids(channels.pd) == {x.anomaly_id: 1 for x in a + b}

    await produce_anomalies(names, [resolved(x) for x in a + b])

    async def closed() -> bool:
        return len(triggers_by_key(channels.pd, "resolve")) == 2 and len(channels.slack.updates) == 2

    await wait_until(closed, "both incidents resolved and both Slack messages updated", 90, [alerter])
    assert triggers_by_key(channels.pd, "resolve") == triggers  # the same dedup keys, once each
    assert all("RESOLVED" in u["blocks"][0]["text"]["text"] for u in channels.slack.updates)
    channels.assert_well_formed()
    await wait_drained(names.bootstrap, f"{names.app_id}-alerter", [names.anomalies], 60, [alerter])
    state = await state_of(names)
    assert state is not None and len(state.outbox) == 0 and state.pipeline["groups"] == []


async def test_an_outage_of_both_channels_loses_nothing_and_pages_once_per_episode(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    alerter = start_alerter(alerter_env(names, channels.config(tmp_path / "alerting.yaml")))
    channels.slack.outage(Answer(hang=True))
    channels.pd.outage(Answer(500))
    first = storm("support", 3) + storm("billing", 2)
    await produce_anomalies(names, first)

    async def failing() -> bool:
        return len(channels.slack.requests) >= 2 and len(channels.pd.requests) >= 2

    await wait_until(failing, "both channels tried and failing", 60, [alerter])
    # anomalies keep coming during the outage
    second = storm("search", 3, t0=T0 + 100) + storm("triage", 2, t0=T0 + 100)
    await produce_anomalies(names, second)

    async def all_in_the_outbox() -> bool:
        state = await state_of(names)
        return state is not None and len(state.outbox) == 4

    await wait_until(all_in_the_outbox, "four notifications in the durable outbox", 60, [alerter])
    # their offsets are committed: they are durable in the outbox, not in flight
    await wait_drained(names.bootstrap, f"{names.app_id}-alerter", [names.anomalies], 60, [alerter])
    assert channels.slack.messages == [] and channels.pd.events == []
    failed_requests = len(channels.slack.requests) + len(channels.pd.requests)

    channels.slack.outage(None)
    channels.pd.outage(None)

    async def delivered() -> bool:
        return len(triggers_by_key(channels.pd)) == 4 and len(channels.slack.top_level) == 4

    await wait_until(delivered, "every group delivered after the outage", 120, [alerter])
    await wait_until(lambda: outbox_empty(names), "the outbox emptied", 60, [alerter])
    assert sorted(triggers_by_key(channels.pd).values()) == [1, 1, 1, 1]
    assert len(channels.slack.messages) == 4  # no thread reply, no duplicate
    assert paged_anomaly_ids(channels.pd) == {x.anomaly_id: 1 for x in first + second}
    assert failed_requests > 4  # they were retried through the outage
    assert await dead_letters(names) == []
    channels.assert_well_formed()


async def test_no_second_page_for_an_episode_across_a_sigkill_and_restarts(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    env = alerter_env(names, channels.config(tmp_path / "alerting.yaml", group_wait="1s"))
    first = start_alerter(env)
    channels.slack.outage(Answer(hang=True))  # the Slack half of the first notification stays in flight
    support = storm("support", 2)
    await produce_anomalies(names, support)

    async def paged_not_posted() -> bool:
        state = await state_of(names)
        entries = list(state.outbox.entries.values()) if state is not None else []
        return len(entries) == 1 and entries[0].done == {"pagerduty": "delivered"}

    await wait_until(paged_not_posted, "the page delivered and recorded, Slack still hanging", 60, [first])
    first.kill()  # SIGKILL mid-delivery
    channels.slack.outage(None)
    billing = storm("billing", 2)
    # the detect stage re-emits after a crash of its own: the same anomalies again, plus new ones
    await produce_anomalies(names, support + billing)

    second = start_alerter(env)

    async def delivered() -> bool:
        return len(triggers_by_key(channels.pd)) == 2 and len(channels.slack.top_level) == 2

    await wait_until(delivered, "both groups on both channels", 120, [second])
    await wait_until(lambda: outbox_empty(names), "the outbox emptied", 60, [second])
    assert sorted(triggers_by_key(channels.pd).values()) == [1, 1]  # the support page was not sent again
    assert len(channels.slack.messages) == 2
    second.stop()

    # a graceful restart, and every anomaly delivered once more: nothing is sent again
    third = start_alerter(env)
    await produce_anomalies(names, support + billing)
    await wait_drained(names.bootstrap, f"{names.app_id}-alerter", [names.anomalies], 90, [third])
    assert sorted(triggers_by_key(channels.pd).values()) == [1, 1]
    assert len(channels.slack.messages) == 2
    assert "took" in third.tail(200)
    channels.assert_well_formed()


async def test_a_permanent_failure_lands_on_the_alerts_dlq_and_is_counted(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    unknown_key = "UNKNOWNroutingKEY0123456789abcde"
    config = channels.config(tmp_path / "alerting.yaml", group_wait="1s", pd_key_env="BURNGUARD_TEST_BAD_KEY")
    alerter = start_alerter(alerter_env(names, config, BURNGUARD_TEST_BAD_KEY=unknown_key))
    support = storm("support", 2)
    await produce(names.bootstrap, names.anomalies, [(b"junk", b"{not an anomaly")])
    await produce_anomalies(names, support)

    async def two_dead() -> list[dict[str, Any]] | None:
        found = await dead_letters(names)
        return found if len(found) >= 2 else None

    found = await wait_until(two_dead, "two alert dead letters", 60, [alerter])
    by_reason = {d["reason"]: d for d in found}
    assert sorted(by_reason) == ["intake", "permanent"]
    page = by_reason["permanent"]
    assert (page["channel"], page["receiver"], page["status"], page["attempts"]) == ("pagerduty", "oncall", 400, 1)
    assert page["error"] == "pagerduty trigger: HTTP 400"
    assert {a["anomaly_id"] for a in page["notification"]["firing"]} == {a.anomaly_id for a in support}
    assert by_reason["intake"]["error"].startswith("not a burnguard.anomaly/1") and by_reason["intake"]["offset"] == 0

    # the Slack half went out, and the stage goes on with the next anomalies
    billing = storm("billing", 1)
    await produce_anomalies(names, billing)

    async def slack_twice() -> bool:
        return len(channels.slack.top_level) == 2

    await wait_until(slack_twice, "both groups posted to Slack", 60, [alerter])
    await wait_until(lambda: outbox_empty(names), "the outbox emptied", 60, [alerter])
    alerter.stop()
    log = alerter.log.read_text()
    assert len(await dead_letters(names)) == 3  # the billing page is refused too
    assert "alert dead letter #3" in log and ", 3 alert dead letters," in log  # logged and counted
    assert unknown_key not in log and "SLACKSECRET" not in log


async def test_detection_does_not_wait_on_a_hanging_slack(
    names: Names, channels: Channels, start_alerter: Any, start_worker: Any, tmp_path: Path
) -> None:
    config = tmp_path / "burnguard.yaml"
    config.write_text(CONFIG)
    # the over-budget task never finishes: its anomaly stays firing (one resolved within group_wait
    # would rightly never be notified)
    events = [e for e in workload() if not (e["task_id"] == "over" and e["kind"] == "task_finished")]
    await names.create_topics()
    channels.slack.outage(Answer(hang=True))
    alerter = start_alerter(alerter_env(names, channels.config(tmp_path / "alerting.yaml", group_wait="1s")))
    worker = start_worker(names.env(), ["--config", str(config)])
    await produce_events(names.bootstrap, names.events, events)

    def killed(records: list[Any]) -> bool:
        return any(b'"action":"kill"' in r.value for r in records)

    await read_until(names.bootstrap, names.anomalies, killed, timeout_s=120, worker=worker)
    await wait_drained(names.bootstrap, names.app_id, [names.events, names.internal], 120, [worker])

    async def slack_hanging() -> bool:
        return len(channels.slack.requests) >= 1

    await wait_until(slack_hanging, "the alerter trying Slack", 60, [alerter])

    async def paged() -> bool:  # the two channels are tried side by side: PagerDuty's request may come second
        return len(channels.pd.events) >= 1

    # the other channel did not wait for Slack either: paged while Slack, hanging, has answered nothing
    await wait_until(paged, "the PagerDuty page while Slack hangs", 30, [alerter])
    assert channels.slack.messages == []

    channels.slack.outage(None)

    async def posted() -> bool:
        return len(channels.slack.top_level) == 1

    await wait_until(posted, "the Slack message once Slack answers", 90, [alerter])
    channels.assert_well_formed()


async def test_a_standby_takes_nothing_until_the_active_one_dies_then_pages_nothing_twice(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    env = alerter_env(names, channels.config(tmp_path / "alerting.yaml", group_wait="1s"))
    group = f"{names.app_id}-alerter"
    active = start_alerter(env)
    support = storm("support", 2)
    await produce_anomalies(names, support)

    async def paged() -> bool:
        return len(channels.pd.events) == 1 and len(channels.slack.messages) == 1 and await outbox_empty(names)

    await wait_until(paged, "the support group paged and posted", 60, [active])
    standby = start_alerter(env)

    async def two_members() -> list[dict[str, set[int]]] | None:
        members = await group_assignment(names.bootstrap, group, [names.anomalies])
        return members if members is not None and len(members) == 2 else None

    members = await wait_until(two_members, "both alerters in the group", 60, [active, standby])
    assert sorted(len(m[names.anomalies]) for m in members) == [0, 3]  # one active member holds everything
    assert "alerter took" not in standby.tail(200)

    active.kill()
    billing = storm("billing", 2)
    await produce_anomalies(names, support + billing)

    async def delivered() -> bool:
        return len(triggers_by_key(channels.pd)) == 2 and len(channels.slack.top_level) == 2

    await wait_until(delivered, "the standby took over and delivered the new group", 120, [standby])
    assert "alerter took" in standby.tail(200)
    assert sorted(triggers_by_key(channels.pd).values()) == [1, 1]
    assert len(channels.slack.messages) == 2
    channels.assert_well_formed()


async def test_an_unreadable_state_record_stops_the_alerter_rather_than_paging_everything_again(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    key = f"{names.app_id}-alerter".encode()
    await produce(names.bootstrap, names.alerts_state, [(key, b'{"schema": "burnguard.alerter_state/9"}')])
    alerter = start_alerter(alerter_env(names, channels.config(tmp_path / "alerting.yaml")))
    await produce_anomalies(names, storm("support", 1))

    async def exited() -> bool:
        return not alerter.alive()

    await wait_until(exited, "the alerter to stop", 60)
    assert alerter.proc.returncode != 0
    assert "could not take over" in alerter.tail(60) and "burnguard.alerter_state/9" in alerter.tail(60)
    assert channels.pd.requests == [] and channels.slack.requests == []


async def test_a_silence_added_with_the_cli_mutes_its_group_and_nothing_else(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    silences = tmp_path / "silences.json"
    subprocess.run(
        [str(BURNGUARD), "silence", "add", "--match", "workflow=support", "--duration", "1h", "--file", str(silences)],
        check=True,
        capture_output=True,
    )
    config = channels.config(tmp_path / "alerting.yaml")
    alerter = start_alerter(alerter_env(names, config, BURNGUARD_SILENCES=str(silences)))
    await produce_anomalies(names, storm("support", 2) + storm("billing", 1))

    async def both_evaluated() -> bool:  # a group's first tick moves its timer from group_wait to group_interval
        state = await state_of(names)
        groups = state.pipeline["groups"] if state is not None and state.pipeline else []
        return len(groups) == 2 and all(g["next_flush"] > time.time() + 600 for g in groups) and not state.outbox

    await wait_until(both_evaluated, "both groups evaluated", 60, [alerter])
    await wait_until(lambda: outbox_empty(names), "the outbox emptied", 60, [alerter])
    (event,) = channels.pd.events
    assert "workflow=billing" in event["payload"]["custom_details"]["scope"]
    (message,) = channels.slack.messages
    assert "billing" in message["text"] and "support" not in message["text"]
