"""The notification log: the one store through which every channel keeps its own state.

Modelled on Alertmanager's notification log (``nflog``): one entry per channel and per key — a
group episode's ``dedup_key``, or whatever finer key the channel needs (Slack: ``dedup_key|#channel``)
— saying what was sent under it last (``sent``: a ``notification_id``, all or part of it delivered)
and the channel's own data (Slack: the thread's channel id and ``ts``). A channel sees only its
own entries, through the :class:`ChannelLog` view :meth:`NotificationLog.channel` gives it.

The log holds no transport. Whoever runs the channels makes it durable: :meth:`snapshot` and
:meth:`load` give and take its JSON form (``{channel: {key: {"sent": ..., "data": {...}}}}``, a
channel with no entry left out), and :meth:`ChannelLog.flush` awaits the ``on_flush`` hook — a
channel calls it when a step it took must be written down before its next one (Slack: a thread
reply before the parent's edit, so a restart in between does not reply twice).

>>> log = NotificationLog()
>>> slack = log.channel("slack")
>>> slack.put("g|#oncall", LogEntry(sent="g#0", data={"channel": "C1", "ts": "1.2"}))
>>> log.snapshot()
{'slack': {'g|#oncall': {'sent': 'g#0', 'data': {'channel': 'C1', 'ts': '1.2'}}}}
>>> restored = NotificationLog()
>>> restored.load(log.snapshot())
>>> restored.channel("slack").get("g|#oncall") == slack.get("g|#oncall"), restored.channel("pagerduty").get("g")
(True, None)
>>> slack.delete("g|#oncall"); log.snapshot()
{}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChannelLog", "LogEntry", "NotificationLog"]


@dataclass(frozen=True)
class LogEntry:
    """What a channel keeps under one key."""

    #: the ``notification_id`` last sent under this key (``None``: not known, e.g. upgraded from an older record)
    sent: str | None = None
    #: the channel's own data (Slack: ``channel`` and ``ts`` of the thread's first message)
    data: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"sent": self.sent, "data": dict(self.data)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LogEntry:
        sent = raw.get("sent")
        return cls(None if sent is None else str(sent), {str(k): str(v) for k, v in (raw.get("data") or {}).items()})


class NotificationLog:
    """Every channel's entries; ``on_flush`` makes them durable (see the module docstring)."""

    def __init__(self, on_flush: Callable[[], Awaitable[None]] | None = None) -> None:
        self._entries: dict[str, dict[str, LogEntry]] = {}
        self.on_flush = on_flush

    def channel(self, name: str) -> ChannelLog:
        """The view a channel keeps its state through (valid across :meth:`load`)."""
        return ChannelLog(self, name)

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            channel: {key: entry.to_json() for key, entry in entries.items()}
            for channel, entries in sorted(self._entries.items())
            if entries
        }

    def load(self, data: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        """Replace every entry with those of a :meth:`snapshot` (``{}``: forget everything)."""
        self._entries = {
            str(channel): {str(key): LogEntry.from_json(raw) for key, raw in entries.items()}
            for channel, entries in data.items()
        }

    async def flush(self) -> None:
        if self.on_flush is not None:
            await self.on_flush()


class ChannelLog:
    """One channel's entries in a :class:`NotificationLog`."""

    def __init__(self, store: NotificationLog, name: str) -> None:
        self.store = store
        self.name = name

    def _mine(self) -> dict[str, LogEntry]:
        return self.store._entries.setdefault(self.name, {})

    def get(self, key: str) -> LogEntry | None:
        return self.store._entries.get(self.name, {}).get(key)

    def put(self, key: str, entry: LogEntry) -> None:
        self._mine()[key] = entry

    def delete(self, key: str) -> None:
        self._mine().pop(key, None)

    def items(self) -> Iterator[tuple[str, LogEntry]]:
        yield from list(self.store._entries.get(self.name, {}).items())

    async def flush(self) -> None:
        """Make what this channel recorded durable before it goes on (the store's ``on_flush``)."""
        await self.store.flush()
