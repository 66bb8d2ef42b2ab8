"""Secrets never reach logs, delivery errors or the config dump, even while deliveries fail."""

from __future__ import annotations

import logging

import pytest

from alerting.testing.anomalies import T0, make_anomaly
from alerting.testing.http import Answer
from tests.alerting.conftest import PD_KEY, SLACK_TOKEN, Harness


async def test_failing_deliveries_log_no_secret(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every library logger at its chattiest, slack_sdk's request dumps included
    for name in ("slack_sdk", "pagerduty", "httpx2", "aiohttp"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    harness.slack.script(Answer(500), Answer(429, retry_after=0.01), Answer(401))
    harness.pd.script(Answer(500), Answer(hang=True), Answer(401))
    p = harness.pipeline()
    reports = await harness.dispatcher.deliver(p.process(make_anomaly(severity="critical"), now=T0))
    outcomes = reports[0].outcomes
    assert outcomes["slack"].result == outcomes["pagerduty"].result == "permanent"
    seen = caplog.text + repr(reports) + harness.config.model_dump_json() + repr(harness.config)
    assert "Sending a request" in caplog.text  # the client's debug dump was captured...
    for secret in (SLACK_TOKEN, PD_KEY, PD_KEY[-4:], SLACK_TOKEN.split("-")[-1]):
        assert secret not in seen  # ...and holds no secret, not even the routing key's last four
    assert harness.slack.violations == [] and harness.pd.violations == []
