"""PagerDuty: one incident per group episode (``dedup_key``), triggered, updated, resolved.

Through the ``pagerduty`` package's :class:`EventsApiV2Client` (synchronous, on httpx2) in a small
thread pool. The client retries on its own — 429 without limit and 5xx with sleeps inside the
call — so its knobs are set to answer at once and leave every retry to the retry stage. At most
``events_per_minute`` per routing key (one token bucket per key, keyed by a hash, never the key).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pagerduty
from pydantic import SecretStr

from alerting.config import AlertingConfig, PagerDutySettings, ReceiverConfig
from alerting.nflog import ChannelLog
from alerting.notifier import ChannelSpec, DeliveryError, Notification
from alerting.ratelimit import KeyedRateLimiter
from alerting.render import (
    action_line,
    approve_command,
    at_stake,
    format_value,
    lead_line,
    link_lines,
    scope_line,
    top_lines,
)
from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity
from schemas.timefmt import format_ts

__all__ = ["PAGERDUTY", "PagerDutyNotifier", "pagerduty_severity", "trigger_fields"]

MAX_LISTED = 20


def pagerduty_severity(anomaly: Anomaly) -> str:
    """PagerDuty's four severities: a critical finding that still needs a person is ``critical``;
    one burnguard already stopped with a kill is ``error`` (the money has stopped, the cause has not).

    >>> from alerting.testing.anomalies import make_anomaly
    >>> [pagerduty_severity(make_anomaly(severity=s, action=a)) for s, a in
    ...  [("critical", "alert"), ("critical", "kill"), ("warning", "alert"), ("info", "none")]]
    ['critical', 'error', 'warning', 'info']
    """
    if anomaly.severity is Severity.CRITICAL:
        return "error" if anomaly.action is Action.KILL else "critical"
    return anomaly.severity.value


def trigger_fields(n: Notification, source: str, links: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments of ``EventsApiV2Client.trigger`` for a firing notification."""
    lead = n.lead
    details: dict[str, Any] = {
        "at_stake": at_stake(lead) or "not estimated",
        "summary": lead.summary,
        "observed": format_value(lead.observed, lead.unit),
        "expected": format_value(lead.expected, lead.unit),
        "threshold": format_value(lead.threshold, lead.unit),
        "metric": lead.metric,
        "scope": scope_line(lead),
        "action": action_line(lead),
        "top_lines_usd": dict(top_lines(lead)),
        "anomaly_id": lead.anomaly_id,
        "anomalies_firing": len(n.firing),
        "evidence": lead.evidence,
    }
    if lead.evidence.get("kill_proposed") and lead.action is not Action.KILL:
        details["approve_command"] = approve_command(lead)
    others = [a for a in n.firing if a.anomaly_id != lead.anomaly_id]
    if others:
        details["others"] = [
            {"anomaly_id": a.anomaly_id, "severity": a.severity.value, "summary": a.summary}
            for a in others[:MAX_LISTED]
        ]
    return {
        "summary": lead_line(n)[:1024],
        "source": f"{lead.scope.get('tenant', 'default')}/{lead.scope.get('workflow', source)}"[:255],
        "dedup_key": n.dedup_key,
        "severity": pagerduty_severity(lead),
        "payload": {
            "timestamp": format_ts(lead.ts),
            "component": lead.detector,
            "group": lead.scope.get("team", "")[:255] or source,
            "class": lead.metric,
        },
        "custom_details": details,
        "links": [{"href": url, "text": name} for name, url in link_lines(lead, links)] or None,
    }


class PagerDutyNotifier:
    channel = "pagerduty"

    def __init__(
        self,
        settings: PagerDutySettings,
        *,
        links: dict[str, str] | None = None,
        verify: ssl.SSLContext | bool = True,
        max_workers: int = 4,
    ) -> None:
        self.settings = settings
        self.links = links or {}
        self.verify = verify
        self.limiter = KeyedRateLimiter(settings.events_per_minute / 60.0, burst=2)
        self._clients: dict[str, pagerduty.EventsApiV2Client] = {}
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pagerduty")

    def handles(self, receiver: ReceiverConfig) -> bool:
        return receiver.pagerduty is not None

    def _client(self, routing_key: SecretStr) -> tuple[str, pagerduty.EventsApiV2Client]:
        ident = hashlib.sha256(routing_key.get_secret_value().encode()).hexdigest()[:12]
        client = self._clients.get(ident)
        if client is None:
            client = pagerduty.EventsApiV2Client(
                routing_key.get_secret_value(), base_url=self.settings.base_url, verify=self.verify
            )
            client.retry = {429: 1}  # a 429 must come back (0 would mean "retry forever" here)
            client.max_http_attempts = -1  # ...and at once: the retry stage waits, honouring Retry-After
            client.max_network_attempts = 0  # a transport error is raised, not slept on
            client.timeout = self.settings.timeout_s  # type: ignore[assignment]  # httpx2 takes float seconds
            self._clients[ident] = client
        return ident, client

    async def send(self, notification: Notification, receiver: ReceiverConfig) -> None:
        assert receiver.pagerduty is not None
        ident, client = self._client(receiver.pagerduty.routing_key)
        if notification.status is AnomalyStatus.FIRING:
            action = "trigger"
            call = partial(client.trigger, **trigger_fields(notification, self.settings.source, self.links))
        else:
            action = "resolve"
            call = partial(client.resolve, notification.dedup_key)
        await self.limiter.acquire(ident)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except pagerduty.HttpError as exc:
            # the library's message may quote the end of the routing key: never pass it on
            response = exc.response
            status = response.status_code if response is not None else None
            raise DeliveryError(
                f"pagerduty {action}: HTTP {status}",
                status=status,
                headers={str(k): str(v) for k, v in response.headers.items()} if response is not None else {},
            ) from None
        except pagerduty.Error as exc:
            cause = exc.__cause__
            raise DeliveryError(f"pagerduty {action}: {type(cause or exc).__name__}") from cause

    async def aclose(self) -> None:
        for client in self._clients.values():
            client.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _build(config: AlertingConfig, environ: Mapping[str, str], log: ChannelLog) -> PagerDutyNotifier | None:
    """PagerDuty keeps no state of its own: the incident is keyed by the notification's ``dedup_key``."""
    if not any(r.pagerduty for r in config.receivers):
        return None
    ca_file = config.pagerduty.ca_file
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    return PagerDutyNotifier(config.pagerduty, links=config.links, verify=verify)


PAGERDUTY = ChannelSpec(PagerDutyNotifier.channel, _build)
