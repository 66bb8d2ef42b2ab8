"""Delivery: each notification through every channel its receiver has, via the one retry stage.

:meth:`Dispatcher.deliver` returns one :class:`DeliveryReport` per notification, saying per channel
whether it was delivered or permanently failed — what the Kafka wiring needs to commit an anomaly's
offset, or to write the alerts dead-letter topic. Notifications of one group go out in order (the
Slack thread needs its first message); different groups go out concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from alerting.config import ReceiverConfig
from alerting.notifier import Notification, Notifier
from alerting.retry import DeliveryOutcome, RetryStage

__all__ = ["DeliveryReport", "Dispatcher"]


@dataclass
class DeliveryReport:
    notification: Notification
    outcomes: dict[str, DeliveryOutcome] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        """Every channel delivered it (vacuously true for a receiver with no channel)."""
        return all(o.delivered for o in self.outcomes.values())

    @property
    def failed_channels(self) -> list[str]:
        return sorted(c for c, o in self.outcomes.items() if not o.delivered)


class Dispatcher:
    def __init__(
        self, receivers: Mapping[str, ReceiverConfig] | Iterable[ReceiverConfig], notifiers: Sequence[Notifier],
        retry: RetryStage,
    ) -> None:
        self.receivers = dict(receivers) if isinstance(receivers, Mapping) else {r.name: r for r in receivers}
        self.notifiers = list(notifiers)
        self.retry = retry

    async def deliver(self, notifications: Sequence[Notification]) -> list[DeliveryReport]:
        reports = {n.notification_id: DeliveryReport(n) for n in notifications}
        by_group: dict[str, list[Notification]] = {}
        for n in notifications:
            by_group.setdefault(n.dedup_key, []).append(n)

        async def one_group(items: list[Notification]) -> None:
            for n in items:
                await self._deliver_one(n, reports[n.notification_id])

        await asyncio.gather(*(one_group(items) for items in by_group.values()))
        return [reports[n.notification_id] for n in notifications]

    async def _deliver_one(self, notification: Notification, report: DeliveryReport) -> None:
        receiver = self.receivers[notification.receiver]
        targets = [n for n in self.notifiers if n.handles(receiver)]

        async def through(notifier: Notifier) -> None:
            report.outcomes[notifier.channel] = await self.retry.run(
                lambda: notifier.send(notification, receiver), f"{notification.notification_id} -> {notifier.channel}"
            )

        await asyncio.gather(*(through(n) for n in targets))

    async def aclose(self) -> None:
        for notifier in self.notifiers:
            await notifier.aclose()
