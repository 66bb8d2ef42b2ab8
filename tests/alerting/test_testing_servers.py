"""The local Slack and PagerDuty servers' outage switch: "500, then hang", one endpoint only, recovery.

Checked through the real clients (slack-sdk, pagerduty), as the alerting tests use them.
"""

from __future__ import annotations

import asyncio

import httpx2
import pagerduty
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from alerting.testing.http import Answer
from alerting.testing.pagerduty_server import PagerDutyServer
from alerting.testing.slack_server import SlackServer
from tests.alerting.conftest import PD_KEY, SLACK_TOKEN


def _slack(server: SlackServer, timeout_s: int = 1) -> AsyncWebClient:
    return AsyncWebClient(token=SLACK_TOKEN, base_url=server.base_url, timeout=timeout_s, retry_handlers=[])


async def _post(client: AsyncWebClient) -> str:
    """``ok``, ``HTTP <status>`` or ``timeout``: what one chat.postMessage got."""
    try:
        await client.chat_postMessage(channel="#oncall", text="hello")
        return "ok"
    except SlackApiError as exc:
        return f"HTTP {exc.response.status_code}"
    except TimeoutError:
        return "timeout"


async def test_slack_500_then_hang_then_recovery() -> None:
    async with SlackServer(SLACK_TOKEN) as server:
        client = _slack(server)
        server.outage(Answer(500), then=Answer(hang=True), after=2)
        got = [await _post(client) for _ in range(4)]
        assert got == ["HTTP 500", "HTTP 500", "timeout", "timeout"]
        assert server.outage_answers == 4 and server.messages == []
        server.outage(None)
        await asyncio.sleep(0.1)  # the hung requests are let go (answered 503 to clients long gone)
        assert await _post(client) == "ok"
        assert len(server.messages) == 1 and server.outage_answers == 4  # counted for the last outage
        assert [r.answered for r in server.requests] == [500, 500, 503, 503, 200]
        assert server.violations == []


async def test_an_outage_of_one_endpoint_leaves_the_others_answering() -> None:
    async with SlackServer(SLACK_TOKEN) as server:
        client = _slack(server)
        server.outage(Answer(hang=True), only="chat.update")
        posted = await client.chat_postMessage(channel="#oncall", text="parent")
        with pytest.raises(TimeoutError):
            await client.chat_update(channel=str(posted["channel"]), ts=str(posted["ts"]), text="edited")
        assert len(server.messages) == 1 and server.updates == [] and server.outage_answers == 1
        server.outage(None)
        await client.chat_update(channel=str(posted["channel"]), ts=str(posted["ts"]), text="edited")
        assert len(server.updates) == 1


async def test_pagerduty_500_then_hang_then_recovery() -> None:
    async with PagerDutyServer({PD_KEY}) as server:
        client = pagerduty.EventsApiV2Client(PD_KEY, base_url=server.base_url, verify=server.client_ssl)
        client.retry = {429: 1}
        client.max_http_attempts = -1
        client.max_network_attempts = 0
        client.timeout = 0.5  # type: ignore[assignment]
        loop = asyncio.get_running_loop()

        async def trigger() -> str:
            call = lambda: client.trigger("disk full", "host-1", dedup_key="k-1", severity="critical")  # noqa: E731
            try:
                await loop.run_in_executor(None, call)
                return "ok"
            except pagerduty.HttpError as exc:
                return f"HTTP {exc.response.status_code if exc.response is not None else None}"
            except pagerduty.Error as exc:
                cause = exc.__cause__
                return "timeout" if isinstance(cause, httpx2.TimeoutException) else type(cause or exc).__name__

        server.outage(Answer(500), then=Answer(hang=True), after=1)
        assert [await trigger() for _ in range(3)] == ["HTTP 500", "timeout", "timeout"]
        assert server.events == [] and server.outage_answers == 3
        server.outage(None)
        await asyncio.sleep(0.1)
        assert await trigger() == "ok"
        assert [e["dedup_key"] for e in server.events] == ["k-1"] and server.violations == []
        client.close()
