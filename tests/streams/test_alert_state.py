"""The alerting stage's durable records without a broker: the state record, the outbox, dead letters."""

from __future__ import annotations

import base64

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from alerting.channels import build_channels
from alerting.clock import in_time_order
from alerting.config import AlertingConfig
from alerting.dispatch import Dispatcher
from alerting.nflog import NotificationLog
from alerting.outbox import JournaledNotifier, Outbox
from alerting.pipeline import AlertPipeline
from alerting.retry import DeliveryOutcome, RetryStage
from alerting.testing.anomalies import T0, make_anomaly, resolved
from alerting.testing.pagerduty_server import PagerDutyServer
from alerting.testing.slack_server import SlackServer
from streams.alert_state import (
    ALERT_DEAD_LETTER_SCHEMA,
    decode_state,
    delivery_dead_letter,
    encode_state,
    intake_dead_letter,
)
from streams.settings import SettingsError, StreamSettings
from streams.topics import topic_specs
from tests.alerting.conftest import PD_KEY, SLACK_TOKEN, alerting_config
from tests.streams.alerter_fixtures import V1_RECORD, V1_THREAD_TS


def _pipeline_with_one_notification() -> tuple[AlertPipeline, Outbox]:
    pipeline = AlertPipeline(AlertingConfig.model_validate({"route": {"receiver": "console", "group_wait": 0}}))
    outbox = Outbox()
    outbox.add(pipeline.process(make_anomaly(severity="critical"), now=T0))
    return pipeline, outbox


def test_the_state_record_round_trips_and_restores_a_pipeline_that_pages_nothing_again() -> None:
    pipeline, outbox = _pipeline_with_one_notification()
    (entry,) = outbox.entries.values()
    outbox.mark(entry.notification.notification_id, "pagerduty", "delivered")
    log = {"slack": {"k|#c": {"sent": "k#0", "data": {"channel": "C1", "ts": "1.2"}}}}
    raw = encode_state(pipeline.snapshot(), log, outbox, {2: 7})

    state = decode_state(raw)
    assert state.offsets == {2: 7} and state.log["slack"]["k|#c"]["data"]["ts"] == "1.2"
    (restored_entry,) = state.outbox.entries.values()
    assert restored_entry.notification == entry.notification and restored_entry.done == {"pagerduty": "delivered"}
    restarted = AlertPipeline(pipeline.config)
    assert state.pipeline is not None
    restarted.restore(state.pipeline)
    assert restarted.process(make_anomaly(severity="critical"), now=T0 + 5) == []  # redelivered: a duplicate


def test_no_record_is_an_empty_state_and_another_schema_is_refused() -> None:
    empty = decode_state(None)
    assert empty.pipeline is None and len(empty.outbox) == 0 and empty.offsets == {}
    with pytest.raises(ValueError, match="alerter_state/2"):
        decode_state(b'{"schema": "burnguard.alerter_state/2"}')


def test_dead_letters_carry_the_notification_receiver_channel_and_reason() -> None:
    _, outbox = _pipeline_with_one_notification()
    (entry,) = outbox.entries.values()
    n = entry.notification
    key, value = delivery_dead_letter(
        n, "pagerduty", DeliveryOutcome("permanent", 1, "pagerduty trigger: HTTP 400", 400)
    )
    record = orjson.loads(value)
    assert key == f"{n.notification_id}|pagerduty".encode()
    assert record["schema"] == ALERT_DEAD_LETTER_SCHEMA
    assert (record["reason"], record["channel"], record["receiver"], record["status"]) == (
        "permanent",
        "pagerduty",
        "console",
        400,
    )
    assert record["notification"]["dedup_key"] == n.dedup_key

    key, value = intake_dead_letter(b"{oops", "not a burnguard.anomaly/1", "burnguard.anomalies", 1, 9, now=0.0)
    record = orjson.loads(value)
    assert key == b"burnguard.anomalies/1@9" and record["reason"] == "intake"
    assert base64.b64decode(record["value_b64"]) == b"{oops" and record["failed_at"] == "1970-01-01T00:00:00.000Z"


def test_the_alerting_topics_are_settings_and_the_state_topic_is_compacted() -> None:
    settings = StreamSettings.from_env(
        {
            "BURNGUARD_ALERTS_DLQ_TOPIC": "a-dlq",
            "BURNGUARD_ALERTS_STATE_TOPIC": "a-state",
            "BURNGUARD_ALERTING_CONFIG": "alerting.yaml",
        }
    )
    assert (settings.alerts_dlq_topic, settings.alerts_state_topic, settings.alerting_config_file) == (
        "a-dlq",
        "a-state",
        "alerting.yaml",
    )
    specs = {s.name: s for s in topic_specs(settings)}
    assert specs["a-state"].config["cleanup.policy"] == "compact" and specs["a-state"].partitions == 1
    assert specs["a-dlq"].config["cleanup.policy"] == "delete"
    with pytest.raises(SettingsError, match="must differ"):
        StreamSettings.from_env({"BURNGUARD_ALERTS_DLQ_TOPIC": "burnguard.dlq"})


def test_the_state_record_keeps_the_pipelines_clock_and_an_older_record_reads_as_zero() -> None:
    pipeline, outbox = _pipeline_with_one_notification()
    state = decode_state(encode_state(pipeline.snapshot(), {}, outbox, {0: 3}, clock=T0 + 12.5))
    assert state.clock == T0 + 12.5
    old = orjson.loads(encode_state(pipeline.snapshot(), {}, outbox, {0: 3}))
    del old["clock"]
    assert decode_state(orjson.dumps(old)).clock == 0.0


def test_records_are_taken_in_by_the_time_they_were_written_each_partitions_order_kept() -> None:
    def rec(partition: int, offset: int, ts_ms: int) -> ConsumerRecord:
        return ConsumerRecord("a", partition, offset, ts_ms, 0, None, b"", None, 0, 0, [])

    p0 = [rec(0, 0, 1000), rec(0, 1, 3000), rec(0, 2, 2500)]  # a producer's clock stepped back: order kept
    p1 = [rec(1, 0, 2000), rec(1, 1, 4000)]
    p2 = [rec(2, 5, -1), rec(2, 6, 500)]  # no timestamp: taken at the running time of its partition
    order = [(r.partition, r.offset) for r in in_time_order([p0, p1, p2])]
    assert order == [(2, 5), (2, 6), (0, 0), (1, 0), (0, 1), (0, 2), (1, 1)]
    for part in (p0, p1, p2):
        assert [o for p, o in order if p == part[0].partition] == [r.offset for r in part]


def test_a_record_of_the_format_before_the_notification_log_restores_with_its_slack_thread() -> None:
    record = orjson.loads(V1_RECORD.read_bytes())
    assert record["schema"] == "burnguard.alerter_state/1" and "notification_log" not in record
    (thread_key,) = record["slack"]["threads"]
    ((replied,),) = [record["slack"]["replied"]]

    state = decode_state(V1_RECORD.read_bytes())
    notification_id = replied.removesuffix("|reply")
    assert state.log == {
        "slack": {thread_key: {"sent": notification_id, "data": {"channel": "C0ONCALL", "ts": V1_THREAD_TS}}}
    }
    assert state.offsets == {0: 2} and state.clock == record["clock"]
    (entry,) = state.outbox.entries.values()
    assert entry.notification.notification_id == notification_id and entry.done == {"pagerduty": "delivered"}
    assert state.pipeline is not None
    restarted = AlertPipeline(AlertingConfig.model_validate({"route": {"receiver": "oncall"}, "receivers": [
        {"name": "oncall"}]}))
    restarted.restore(state.pipeline)
    again = make_anomaly(severity="critical")
    assert restarted.process(again, now=T0 + 200) == [] and restarted.process(resolved(again), now=T0 + 201) == []

    # written back, the record has no channel's name at the top level, and reads the same
    rewritten = orjson.loads(encode_state(state.pipeline, state.log, state.outbox, state.offsets, clock=state.clock))
    assert "slack" not in rewritten and decode_state(orjson.dumps(rewritten)).log == state.log


async def test_the_upgraded_slack_thread_is_edited_without_replying_again() -> None:
    state = decode_state(V1_RECORD.read_bytes())
    async with SlackServer(SLACK_TOKEN) as slack, PagerDutyServer({PD_KEY}) as pd:
        config = alerting_config(slack.base_url, pd.base_url)
        log = NotificationLog()
        log.load(state.log)
        outbox = state.outbox

        async def written() -> None:
            return None

        channels = [JournaledNotifier(n, lambda: outbox, written) for n in build_channels(config, {}, log)]
        dispatcher = Dispatcher(config.receivers, channels, RetryStage(config.retry))
        (entry,) = outbox.entries.values()
        (report,) = await dispatcher.deliver([entry.notification])
        await dispatcher.aclose()
        assert report.delivered
        assert slack.messages == [] and pd.requests == []  # no second reply, no second PagerDuty resolve
        (update,) = slack.updates
        assert (update["channel"], update["ts"]) == ("C0ONCALL", V1_THREAD_TS)
        assert log.snapshot() == {} and slack.violations == []
