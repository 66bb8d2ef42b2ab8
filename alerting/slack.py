"""Slack: one message per group episode, then replies in its thread; the parent is edited on resolve.

Through ``slack_sdk``'s :class:`AsyncWebClient` with its own retry handlers switched off (the retry
stage decides), at most ``messages_per_s`` per channel (one token bucket per channel). The thread of
each open episode is kept in the notification log (:mod:`alerting.nflog`), keyed ``dedup_key|channel``:
the data is the channel id and ``ts`` of the first message, ``sent`` the notification last posted
in it. A resolve is a thread reply, then an edit of the parent: after the reply the log is flushed,
so the alerting stage writes it down before the edit and a restart in between edits without
replying twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from alerting.config import AlertingConfig, ReceiverConfig, SlackSettings
from alerting.nflog import ChannelLog, LogEntry, NotificationLog
from alerting.notifier import ChannelSpec, DeliveryError, Notification
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

__all__ = ["SLACK", "SlackNotifier", "slack_message", "upgrade_slack_state"]

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
        self,
        settings: SlackSettings,
        *,
        links: dict[str, str] | None = None,
        client: AsyncWebClient | None = None,
        log: ChannelLog | None = None,
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
        self.log = log if log is not None else NotificationLog().channel(self.channel)

    @property
    def threads(self) -> dict[str, dict[str, str]]:
        """The open threads (``dedup_key|channel`` -> channel id and ``ts``), as the log has them."""
        return {key: dict(entry.data) for key, entry in self.log.items()}

    def handles(self, receiver: ReceiverConfig) -> bool:
        return receiver.slack is not None

    async def send(self, notification: Notification, receiver: ReceiverConfig) -> None:
        assert receiver.slack is not None
        channel = receiver.slack.channel
        key = f"{notification.dedup_key}|{channel}"
        text, blocks = slack_message(notification, self.links)
        entry = self.log.get(key)
        if entry is None:  # the episode's first message (or its thread was lost: start again)
            answer = await self._call(channel, "chat_postMessage", channel=channel, text=text, blocks=blocks)
            if notification.status is AnomalyStatus.FIRING:
                started = {"channel": str(answer["channel"]), "ts": str(answer["ts"])}
                self.log.put(key, LogEntry(sent=notification.notification_id, data=started))
            return
        thread = entry.data
        if entry.sent != notification.notification_id:  # a retry after the reply went out must not reply twice
            await self._call(
                channel, "chat_postMessage", channel=thread["channel"], thread_ts=thread["ts"], text=text,
                blocks=blocks, reply_broadcast=notification.reason == "escalated",
            )
            self.log.put(key, LogEntry(sent=notification.notification_id, data=thread))
            if notification.status is AnomalyStatus.RESOLVED:
                await self.log.flush()  # durable before the edit: a restart does not reply again
        if notification.status is AnomalyStatus.RESOLVED:
            await self._call(
                channel, "chat_update", channel=thread["channel"], ts=thread["ts"], text=text, blocks=blocks
            )
            self.log.delete(key)

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

    async def aclose(self) -> None:
        session = getattr(self.client, "session", None)
        if session is not None:
            await session.close()


def upgrade_slack_state(old: Any) -> dict[str, LogEntry]:
    """The log entries for the ``"slack"`` value of a state record written before the notification
    log, ``{"threads": {"<dedup_key>|<channel>": {"channel": ..., "ts": ...}}, "replied": [...]}``:
    each thread, with ``sent`` the notification named ``"<notification_id>|reply"`` in ``replied``
    (its reply posted, the parent's edit still to do; a ``notification_id`` is ``dedup_key#sequence``).

    >>> upgrade_slack_state({"threads": {"g|#c": {"channel": "C1", "ts": "1.2"}}, "replied": ["g#1|reply"]})
    {'g|#c': LogEntry(sent='g#1', data={'channel': 'C1', 'ts': '1.2'})}
    >>> upgrade_slack_state({}), upgrade_slack_state(None)
    ({}, {})
    """
    if not isinstance(old, Mapping):
        return {}
    replied = [str(r).removesuffix("|reply") for r in old.get("replied") or ()]
    entries = {}
    for key, thread in (old.get("threads") or {}).items():
        dedup_key = str(key).rsplit("|", 1)[0]
        sent = next((n for n in replied if n.rsplit("#", 1)[0] == dedup_key), None)
        entries[str(key)] = LogEntry(sent=sent, data={str(k): str(v) for k, v in thread.items()})
    return entries


def _build(config: AlertingConfig, environ: Mapping[str, str], log: ChannelLog) -> SlackNotifier | None:
    if not any(r.slack for r in config.receivers):
        return None
    return SlackNotifier(config.slack, links=config.links, log=log)


SLACK = ChannelSpec(SlackNotifier.channel, _build, upgrade=upgrade_slack_state)
