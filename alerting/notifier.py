"""What the pipeline hands to channels: a :class:`Notification`, and the :class:`Notifier` protocol.

One notification is one message about one group of anomalies for one receiver. Its ``dedup_key``
names the group's episode (first firing to last resolve): PagerDuty's incident key and the Slack
thread, the same across restarts. ``notification_id`` is ``dedup_key#sequence`` — the key an outbox
or the alerts dead-letter topic can use.

A channel is registered, never discovered: its module defines the :class:`Notifier` and a
:class:`ChannelSpec` (its name, the factory that builds it from the alerting config and the
environment, how it reads its state out of an older record), and :mod:`alerting.channels` lists
the specs in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from alerting.config import AlertingConfig, ReceiverConfig
from alerting.nflog import ChannelLog, LogEntry
from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity

__all__ = ["ChannelSpec", "DeliveryError", "Notification", "Notifier"]

Reason = Literal["new", "escalated", "resolved", "repeat"]


class Notification(BaseModel):
    model_config = ConfigDict(frozen=True)

    notification_id: str
    receiver: str
    route_id: str
    group_key: str
    group_labels: dict[str, str]
    dedup_key: str
    sequence: int
    reason: Reason
    firing: tuple[Anomaly, ...]
    resolved: tuple[Anomaly, ...]
    created_at: float

    @property
    def status(self) -> AnomalyStatus:
        """``firing`` while any anomaly of the group fires; ``resolved`` once all have resolved."""
        return AnomalyStatus.FIRING if self.firing else AnomalyStatus.RESOLVED

    @property
    def lead(self) -> Anomaly:
        """The anomaly a person reads first: the most severe firing one (a kill first), else the last resolved."""
        if self.firing:
            return max(self.firing, key=lambda a: (a.severity.rank, a.action is Action.KILL, a.score or 0.0, -a.ts))
        return self.resolved[-1]

    @property
    def severity(self) -> Severity:
        return max((a.severity for a in self.firing or self.resolved), key=lambda s: s.rank)


class DeliveryError(Exception):
    """A channel could not deliver. ``status``/``headers`` come from the HTTP answer when there was
    one; the message is safe to log (no secrets, no response bodies); ``__cause__`` is the
    library's exception, which :func:`alerting.retry.is_retryable` inspects."""

    def __init__(self, message: str, *, status: int | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


@runtime_checkable
class Notifier(Protocol):
    """One channel (Slack, PagerDuty, the console). Registered in :mod:`alerting.channels`, never discovered;
    what it must remember across restarts it keeps in the :class:`~alerting.nflog.ChannelLog` its factory gives it."""

    channel: str

    def handles(self, receiver: ReceiverConfig) -> bool:
        """Whether this receiver has a target on this channel."""
        ...

    async def send(self, notification: Notification, receiver: ReceiverConfig) -> None:
        """Deliver once (no retry: the retry stage owns that); raise :class:`DeliveryError`."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ChannelSpec:
    """How the alerting stage gets a channel: ``build(config, environ, log)`` returns the notifier,
    or ``None`` when no receiver of ``config`` uses the channel; ``log`` is the channel's view of the
    stage's notification log. ``upgrade`` reads the channel's state out of an ``alerter_state/1``
    record written before the notification log (the value under the channel's name) into log entries."""

    name: str
    build: Callable[[AlertingConfig, Mapping[str, str], ChannelLog], Notifier | None]
    upgrade: Callable[[Any], dict[str, LogEntry]] | None = None
