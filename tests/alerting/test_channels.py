"""Slack and PagerDuty through their real client libraries, against the local servers."""

from __future__ import annotations

import pytest

from alerting.pipeline import AlertPipeline
from alerting.testing.anomalies import T0, make_anomaly, resolved
from alerting.testing.http import Answer
from tests.alerting.conftest import Harness, alerting_config

# (scripted first answer, expected result, expected attempts): the HTTP status -> retry decision table
TABLE = [
    (None, "delivered", 1),
    (Answer(500), "delivered", 2),
    (Answer(502), "delivered", 2),
    (Answer(503), "delivered", 2),
    (Answer(504), "delivered", 2),
    (Answer(429, retry_after=7), "delivered", 2),
    (Answer(hang=True), "delivered", 2),
    (Answer(400), "permanent", 1),
    (Answer(401), "permanent", 1),
    (Answer(403), "permanent", 1),
    (Answer(404), "permanent", 1),
    (Answer(413), "permanent", 1),
]


@pytest.mark.parametrize("channel", ["slack", "pagerduty"])
@pytest.mark.parametrize(("answer", "result", "attempts"), TABLE, ids=[repr(row[0]) for row in TABLE])
async def test_status_to_retry_decision(
    harness: Harness, channel: str, answer: Answer | None, result: str, attempts: int
) -> None:
    server = harness.slack if channel == "slack" else harness.pd
    if answer is not None:
        server.script(answer)
    (n,) = harness.pipeline().process(make_anomaly(severity="critical"), now=T0)
    (report,) = await harness.dispatcher.deliver([n])
    outcome = report.outcomes[channel]
    assert (outcome.result, outcome.attempts) == (result, attempts), outcome
    assert len(server.requests) == attempts
    other = report.outcomes["pagerduty" if channel == "slack" else "slack"]
    assert other.delivered and other.attempts == 1
    if answer is not None and answer.retry_after:
        assert harness.waits == [answer.retry_after]  # Retry-After honoured, not the backoff
    assert harness.slack.violations == [] and harness.pd.violations == []


async def test_a_storm_is_one_page_and_one_slack_message(harness: Harness) -> None:
    pipeline = AlertPipeline(alerting_config(harness.slack.base_url, harness.pd.base_url, group_wait=30))
    due = []
    for i in range(500):
        due += pipeline.process(make_anomaly(task=f"t{i}", severity="critical", ts=T0 + i * 0.01), now=T0 + i * 0.01)
    due += pipeline.flush(T0 + 30)
    reports = await harness.dispatcher.deliver(due)
    assert len(reports) == 1 and reports[0].delivered
    (event,) = harness.pd.events
    assert event["event_action"] == "trigger" and event["payload"]["custom_details"]["anomalies_firing"] == 500
    (message,) = harness.slack.messages
    assert "499 more in this group" in str(message["blocks"])
    assert harness.slack.violations == [] and harness.pd.violations == []


async def test_resolve_closes_the_incident_and_the_slack_thread(harness: Harness) -> None:
    p = harness.pipeline()
    a, b = make_anomaly(task="a", severity="critical"), make_anomaly(task="b", severity="critical")
    await harness.dispatcher.deliver(p.process(a, now=T0))
    await harness.dispatcher.deliver(p.process(b, now=T0 + 60))
    await harness.dispatcher.deliver(p.process(resolved(a), now=T0 + 120))
    await harness.dispatcher.deliver(p.process(resolved(b), now=T0 + 180))
    actions = [(e["event_action"], e["dedup_key"]) for e in harness.pd.events]
    key = actions[0][1]
    assert actions == [("trigger", key), ("trigger", key), ("trigger", key), ("resolve", key)]
    parent, *replies = harness.slack.messages
    assert "thread_ts" not in parent and [r["thread_ts"] for r in replies] == [parent["ts"]] * 3
    (update,) = harness.slack.updates
    assert update["ts"] == parent["ts"] and "RESOLVED" in update["blocks"][0]["text"]["text"]
    assert harness.slack_notifier.threads == {}
    assert harness.slack.violations == [] and harness.pd.violations == []


async def test_no_second_page_after_a_restart(harness: Harness) -> None:
    p = harness.pipeline()
    a = make_anomaly(severity="critical", kill_proposed=True, kill_scope="task")
    (report,) = await harness.dispatcher.deliver(p.process(a, now=T0))
    assert report.delivered
    assert "burnguard kill approve " + a.anomaly_id in str(harness.slack.messages[0]["blocks"])
    assert harness.pd.events[0]["payload"]["custom_details"]["approve_command"].endswith(a.anomaly_id)
    pipeline_state, log_state = p.snapshot(), harness.log.snapshot()

    restarted = harness.pipeline()  # a new worker: state from the table, anomalies redelivered
    restarted.restore(pipeline_state)
    harness.log.load({})
    harness.log.load(log_state)
    assert restarted.process(a, now=T0 + 10) == [] and restarted.flush(T0 + 600) == []
    await harness.dispatcher.deliver(restarted.process(resolved(a), now=T0 + 900))
    assert [e["event_action"] for e in harness.pd.events] == ["trigger", "resolve"]
    assert harness.pd.events[1]["dedup_key"] == harness.pd.events[0]["dedup_key"]
    assert harness.slack.messages[1]["thread_ts"] == harness.slack.messages[0]["ts"]
