"""Slack: one message per group episode, then replies in its thread; the parent is edited on resolve.

Through ``slack_sdk``'s :class:`AsyncWebClient` with its own retry handlers switched off (the retry
stage decides), at most ``messages_per_s`` per channel (one token bucket per channel). The thread of
each open episode (``dedup_key`` + channel → channel id and ``ts`` of the first message) is small
state the worker snapshots with the pipeline's (:meth:`SlackNotifier.snapshot`), and so are the
thread replies already posted for a notification whose parent edit (on resolve) is still to do:
``on_progress`` is awaited after such a reply, so the alerting stage writes it down before the edit
and a restart in between edits without replying twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from alerting.config import ReceiverConfig, SlackSettings
from alerting.notifier import DeliveryError, Notification
from alerting.ratelimit import KeyedRateLimiter
from alerting.render import (
    action_line,
    approve_command,
    format_value,
    headline,
    lead_line,
    link_lines,
    scope_line,
    title,
    top_lines,
)
from schemas.anomaly import Action, AnomalyStatus
from schemas.timefmt import format_ts

__all__ = ["SlackNotifier", "slack_message"]

MAX_LISTED = 5


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def slack_message(n: Notification, links: dict[str, str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """``(text, blocks)``: money at stake and summary first, observed vs expected, budget lines, scope,
    action, links."""
    lead = n.lead
    head = title(n)
    summary = headline(n)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
        _section(f"*{_esc(summary)}*"),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Observed*\n{format_value(lead.observed, lead.unit)} ({lead.metric})"},
                {"type": "mrkdwn", "text": f"*Expected*\n{format_value(lead.expected, lead.unit)}"},
                {"type": "mrkdwn", "text": f"*Threshold*\n{format_value(lead.threshold, lead.unit)}"},
                {"type": "mrkdwn", "text": f"*Severity*\n{lead.severity.value}"},
            ],
        },
    ]
    lines = top_lines(lead)
    if lines:
        blocks.append(_section("*Budget lines*\n" + "\n".join(f"• {_esc(k)}: ${v:,.2f}" for k, v in lines)))
    action = _esc(action_line(lead))
    if lead.evidence.get("kill_proposed") and lead.action is not Action.KILL and n.status is AnomalyStatus.FIRING:
        action = f"kill proposed — approve with `{approve_command(lead)}`"
    blocks.append(_section(f"*Action*\n{action}"))
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": _esc(scope_line(lead))[:2000]},
                {"type": "mrkdwn", "text": f"anomaly `{lead.anomaly_id}` · {format_ts(lead.ts)}"},
            ],
        }
    )
    others = [a for a in (n.firing or n.resolved) if a.anomaly_id != lead.anomaly_id]
    if others:
        listed = "\n".join(f"• {a.severity.value}: {_esc(a.summary)}" for a in others[:MAX_LISTED])
        more = f"\n…and {len(others) - MAX_LISTED} more" if len(others) > MAX_LISTED else ""
        blocks.append(_section(f"*{len(others)} more in this group*\n{listed}{more}"))
    if n.resolved and n.firing:
        blocks.append(_section("*Resolved since the last message*\n" + "\n".join(
            f"• {_esc(a.summary)}" for a in n.resolved[:MAX_LISTED])))
    found = link_lines(lead, links or {})
    if found:
        blocks.append(_section(" · ".join(f"<{url}|{_esc(name)}>" for name, url in found)))
    return lead_line(n)[:3000], blocks


class SlackNotifier:
    channel = "slack"

    def __init__(
        self, settings: SlackSettings, *, links: dict[str, str] | None = None, client: AsyncWebClient | None = None
    ) -> None:
        if client is None:
            if settings.token is None:
                raise ValueError("slack.token is not configured")
            client = AsyncWebClient(
                token=settings.token.get_secret_value(),
                base_url=settings.base_url,
                timeout=settings.timeout_s,
                retry_handlers=[],  # the retry stage is the one place that retries
            )
        self.client = client
        self.links = links or {}
        self.limiter = KeyedRateLimiter(settings.messages_per_s, burst=1)
        self.threads: dict[str, dict[str, str]] = {}
        self._done: set[str] = set()  # "<notification_id>|reply": replied, the parent edit still to do
        self.on_progress: Callable[[], Awaitable[None]] | None = None

    def handles(self, receiver: ReceiverConfig) -> bool:
        return receiver.slack is not None

    async def send(self, notification: Notification, receiver: ReceiverConfig) -> None:
        assert receiver.slack is not None
        channel = receiver.slack.channel
        key = f"{notification.dedup_key}|{channel}"
        text, blocks = slack_message(notification, self.links)
        thread = self.threads.get(key)
        if thread is None:  # the episode's first message (or its thread was lost: start again)
            answer = await self._call(channel, "chat_postMessage", channel=channel, text=text, blocks=blocks)
            if notification.status is AnomalyStatus.FIRING:
                self.threads[key] = {"channel": str(answer["channel"]), "ts": str(answer["ts"])}
            return
        reply = f"{notification.notification_id}|reply"
        if reply not in self._done:  # a retry after the reply went out must not reply twice
            await self._call(
                channel, "chat_postMessage", channel=thread["channel"], thread_ts=thread["ts"], text=text,
                blocks=blocks, reply_broadcast=notification.reason == "escalated",
            )
            self._done.add(reply)
            if notification.status is AnomalyStatus.RESOLVED and self.on_progress is not None:
                await self.on_progress()  # durable before the edit: a restart does not reply again
        if notification.status is AnomalyStatus.RESOLVED:
            await self._call(
                channel, "chat_update", channel=thread["channel"], ts=thread["ts"], text=text, blocks=blocks
            )
            del self.threads[key]
        self._done.discard(reply)

    async def _call(self, bucket: str, method: str, **kwargs: Any) -> Any:
        await self.limiter.acquire(bucket)
        try:
            return await getattr(self.client, method)(**kwargs)
        except SlackApiError as exc:
            response = exc.response
            error = response.data.get("error") if isinstance(response.data, dict) else None
            raise DeliveryError(
                f"slack {method}: HTTP {response.status_code}{f' {error}' if error else ''}",
                status=response.status_code,
                headers={str(k): str(v) for k, v in (response.headers or {}).items()},
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"slack {method}: {type(exc).__name__}") from exc

    def snapshot(self) -> dict[str, Any]:
        return {"threads": {k: dict(v) for k, v in self.threads.items()}, "replied": sorted(self._done)}

    def restore(self, data: dict[str, Any]) -> None:
        self.threads = {k: dict(v) for k, v in data.get("threads", {}).items()}
        self._done = {str(k) for k in data.get("replied", [])}

    async def aclose(self) -> None:
        session = getattr(self.client, "session", None)
        if session is not None:
            await session.close()
