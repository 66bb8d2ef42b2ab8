"""Producing cost events to the events topic at a steady rate (``burnguard simulate --to-kafka``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.timefmt import format_ts
from streams.settings import StreamSettings
from streams.topics import ensure_topics

__all__ = ["encode_event", "produce_events"]


def encode_event(event: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """``(key, value)`` of one contract event: key = ``root_task_id`` (else ``task_id``), value = its
    JSON with ``ts`` as RFC 3339 UTC.

    >>> encode_event({"task_id": "t1", "ts": 1793613600.25, "kind": "step"})
    (b't1', b'{"task_id":"t1","ts":"2026-11-02T10:00:00.250Z","kind":"step"}')
    """
    ts = event["ts"]
    value = orjson.dumps({**event, "ts": ts if isinstance(ts, str) else format_ts(ts)})
    key = str(event.get("root_task_id") or event["task_id"]).encode()
    return key, value


async def produce_events(
    settings: StreamSettings,
    events: Iterable[Mapping[str, Any]],
    *,
    rate: float = 0.0,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Send ``events`` to ``settings.events_topic`` at ``rate`` events/s (0: as fast as the broker
    takes them); returns the count. Creates the topics first (:func:`ensure_topics`)."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=5, **settings.aiokafka_kwargs())
    await producer.start()
    sent = 0
    started = time.monotonic()
    # confirm (and report progress) about ten times a second at a set rate, every 500 events otherwise
    every = 500 if rate <= 0 else max(1, min(500, int(rate / 10)))
    try:
        pending: list[asyncio.Future[Any]] = []
        for event in events:
            key, value = encode_event(event)
            pending.append(await producer.send(settings.events_topic, value=value, key=key))
            sent += 1
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if len(pending) >= every:
                await asyncio.gather(*pending)
                if on_sent is not None:
                    on_sent(len(pending))
                pending.clear()
        await producer.flush()
        if pending:
            await asyncio.gather(*pending)
            if on_sent is not None:
                on_sent(len(pending))
    finally:
        await producer.stop()
    return sent
