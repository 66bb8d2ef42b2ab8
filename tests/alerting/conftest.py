"""The real slack-sdk and pagerduty clients against the local servers, over HTTP(S) on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from alerting.config import AlertingConfig
from alerting.dispatch import Dispatcher
from alerting.nflog import NotificationLog
from alerting.pagerduty import PagerDutyNotifier
from alerting.pipeline import AlertPipeline
from alerting.retry import RetryStage
from alerting.slack import SlackNotifier
from alerting.testing.pagerduty_server import PagerDutyServer
from alerting.testing.slack_server import SlackServer

SLACK_TOKEN = "xoxb-4242-SLACKSECRETtoken-QWERTY"
PD_KEY = "PDsecretROUTINGkey0123456789ZQXW"
assert len(PD_KEY) == 32


def alerting_config(slack_url: str, pd_url: str, **route: object) -> AlertingConfig:
    return AlertingConfig.model_validate(
        {
            "route": {"receiver": "oncall", "group_wait": 0, "group_interval": 60, **route},
            "receivers": [
                {"name": "oncall", "slack": {"channel": "#oncall"}, "pagerduty": {"routing_key": SecretStr(PD_KEY)}}
            ],
            "slack": {"token": SecretStr(SLACK_TOKEN), "base_url": slack_url, "timeout_s": 1, "messages_per_s": 50},
            "pagerduty": {"base_url": pd_url, "timeout_s": 0.5, "events_per_minute": 6000},
            "retry": {"initial_backoff_s": 0.01, "max_backoff_s": 0.05, "max_elapsed_s": 30, "max_retry_after_s": 30},
            "links": {"workflow": "https://burnguard.example/workflows/{workflow}"},
        }
    )


@dataclass
class Harness:
    slack: SlackServer
    pd: PagerDutyServer
    config: AlertingConfig
    slack_notifier: SlackNotifier
    pd_notifier: PagerDutyNotifier
    dispatcher: Dispatcher
    waits: list[float]
    log: NotificationLog  # the channels' state (Slack's threads), as the alerting stage keeps it

    def pipeline(self) -> AlertPipeline:
        return AlertPipeline(self.config)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with SlackServer(SLACK_TOKEN) as slack, PagerDutyServer({PD_KEY}) as pd:
        config = alerting_config(slack.base_url, pd.base_url)
        waits: list[float] = []

        async def sleep(seconds: float) -> None:  # records the waits the retry stage asks for
            waits.append(seconds)
            await asyncio.sleep(0)

        log = NotificationLog()
        slack_notifier = SlackNotifier(config.slack, links=config.links, log=log.channel("slack"))
        pd_notifier = PagerDutyNotifier(config.pagerduty, links=config.links, verify=pd.client_ssl)
        dispatcher = Dispatcher(config.receivers, [slack_notifier, pd_notifier], RetryStage(config.retry, sleep=sleep))
        yield Harness(slack, pd, config, slack_notifier, pd_notifier, dispatcher, waits, log)
        await dispatcher.aclose()
