"""The channels' registry: built from the alerting config, each keeping its state in its part of the log."""

from __future__ import annotations

from alerting.channels import CHANNELS, FALLBACK, build_channels, upgrade_channel_state
from alerting.config import AlertingConfig
from alerting.nflog import NotificationLog
from alerting.testing.anomalies import T0, make_anomaly
from tests.alerting.conftest import Harness, alerting_config


def test_only_the_channels_a_receiver_uses_are_built_else_the_console_alone() -> None:
    log = NotificationLog()
    both = alerting_config("http://127.0.0.1:1/api/", "https://127.0.0.1:1")
    built = build_channels(both, {}, log)
    assert [n.channel for n in built] == ["slack", "pagerduty"] == list(CHANNELS)
    slack_only = AlertingConfig.model_validate(
        {**both.model_dump(by_alias=True), "receivers": [{"name": "oncall", "slack": {"channel": "#oncall"}}]}
    )
    assert [n.channel for n in build_channels(slack_only, {}, log)] == ["slack"]
    assert [n.channel for n in build_channels(AlertingConfig(), {}, log)] == [FALLBACK.name] == ["console"]


async def test_a_built_channel_keeps_its_state_in_the_log_it_was_given(harness: Harness) -> None:
    log = NotificationLog()
    (slack, _) = build_channels(harness.config, {}, log)
    await slack.send(harness.pipeline().process(make_anomaly(severity="critical"), now=T0)[0],
                     harness.config.receiver("oncall"))
    ((key, entry),) = log.snapshot()["slack"].items()
    assert key.endswith("|#oncall") and entry["data"]["ts"] == harness.slack.messages[0]["ts"]
    await slack.aclose()


def test_an_old_records_channel_state_is_upgraded_by_the_channel_named_and_nothing_else() -> None:
    old = {
        "schema": "burnguard.alerter_state/1",
        "slack": {"threads": {"g|#c": {"channel": "C1", "ts": "1.2"}}, "replied": []},
        "pipeline": None,
    }
    assert upgrade_channel_state(old) == {"slack": {"g|#c": {"sent": None, "data": {"channel": "C1", "ts": "1.2"}}}}
    assert upgrade_channel_state({"slack": {}}) == {} == upgrade_channel_state({"schema": "x"})
