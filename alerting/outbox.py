"""The outbox: every notification the pipeline has released and not yet finished, channel by channel.

So a notification is never lost between the pipeline and its channels, whoever runs them keeps the
outbox durable (the alerting stage writes it in its state record on Kafka): a notification is in it
before its anomalies count as taken in, and leaves it only once every channel has delivered it or
failed permanently. :class:`JournaledNotifier` wraps a channel so it skips what
the outbox says it already did and records what it delivers.

>>> from alerting.testing.anomalies import make_anomaly
>>> from alerting.notifier import Notification
>>> a = make_anomaly()
>>> n = Notification(notification_id="k#0", receiver="oncall", route_id="root", group_key="g", group_labels={},
...                  dedup_key="k", sequence=0, reason="new", firing=(a,), resolved=(), created_at=0.0)
>>> box = Outbox()
>>> box.add([n]); box.mark("k#0", "slack", "delivered")
>>> box.done("k#0", "slack"), box.done("k#0", "pagerduty"), box.groups()
(True, False, ['k'])
>>> import json
>>> restored = Outbox.restore(json.loads(json.dumps(box.snapshot())))
>>> restored.first("k").done, restored.first("k").notification == n
({'slack': 'delivered'}, True)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from alerting.config import ReceiverConfig
from alerting.notifier import Notification, Notifier

__all__ = ["JournaledNotifier", "Outbox", "OutboxEntry"]


@dataclass
class OutboxEntry:
    notification: Notification
    #: channel -> ``delivered`` · ``permanent`` · ``gave_up``: channels not to send to again
    done: dict[str, str] = field(default_factory=dict)


class Outbox:
    """Notifications released by the pipeline and not yet finished, in release order per group."""

    def __init__(self) -> None:
        self.entries: dict[str, OutboxEntry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, notifications: Iterable[Notification]) -> None:
        for n in notifications:
            self.entries.setdefault(n.notification_id, OutboxEntry(n))

    def groups(self) -> list[str]:
        """The groups (``dedup_key``) with something to send, in the order they were released."""
        return list(dict.fromkeys(e.notification.dedup_key for e in self.entries.values()))

    def first(self, dedup_key: str) -> OutboxEntry | None:
        """The group's oldest unfinished notification (a group's messages go out in order)."""
        return next((e for e in self.entries.values() if e.notification.dedup_key == dedup_key), None)

    def done(self, notification_id: str, channel: str) -> bool:
        entry = self.entries.get(notification_id)
        return entry is not None and channel in entry.done

    def mark(self, notification_id: str, channel: str, result: str) -> None:
        entry = self.entries.get(notification_id)
        if entry is not None:
            entry.done[channel] = result

    def remove(self, notification_id: str) -> None:
        self.entries.pop(notification_id, None)

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"notification": e.notification.model_dump(mode="json", by_alias=True), "done": dict(e.done)}
            for e in self.entries.values()
        ]

    @classmethod
    def restore(cls, data: list[dict[str, Any]]) -> Outbox:
        box = cls()
        for raw in data:
            n = Notification.model_validate(raw["notification"])
            box.entries[n.notification_id] = OutboxEntry(n, {str(k): str(v) for k, v in raw["done"].items()})
        return box


class JournaledNotifier:
    """A channel that skips what the outbox says it already did, and records what it delivers
    (then ``on_delivered`` writes the state, so a restart does not send it again)."""

    def __init__(
        self, inner: Notifier, outbox: Callable[[], Outbox], on_delivered: Callable[[], Awaitable[None]]
    ) -> None:
        self.inner = inner
        self.channel = inner.channel
        self.outbox = outbox
        self.on_delivered = on_delivered

    def handles(self, receiver: ReceiverConfig) -> bool:
        return self.inner.handles(receiver)

    async def send(self, notification: Notification, receiver: ReceiverConfig) -> None:
        if self.outbox().done(notification.notification_id, self.channel):
            return  # delivered before a restart: never twice
        await self.inner.send(notification, receiver)
        self.outbox().mark(notification.notification_id, self.channel, "delivered")
        await self.on_delivered()

    async def aclose(self) -> None:
        await self.inner.aclose()
