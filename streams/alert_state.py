"""What the alerting stage keeps durable on Kafka: its state record, its dead letters, reading them back.

The records are JSON bytes; :mod:`streams.alerter` moves them. The stage persists one record per
consumer group on the compacted alerts state topic (``burnguard.alerter_state/1``)::

    {"schema": ..., "pipeline": AlertPipeline.snapshot(),
     "notification_log": {"<channel>": {"<key>": {"sent": "<notification_id>", "data": {...}}}},
     "outbox": [{"notification": {...}, "done": {"<channel>": "delivered"}}, ...],
     "offsets": {"0": 17, "1": 4}, "clock": 1793606400.0, "written_at": "2026-11-02T08:00:00.000Z"}

``notification_log`` is every channel's own state (:class:`alerting.nflog.NotificationLog`: per
channel, per key, what was sent and the channel's data, e.g. a chat thread's id); a record written
before it — with each channel's state under the channel's name at the top level — is upgraded on
reading by the channels' registry (:func:`alerting.channels.upgrade_channel_state`).
``offsets`` are the next offsets of the anomalies topic's partitions that the snapshot has taken
in; ``clock`` is the pipeline's time then (epoch seconds: the last record's time while catching up,
the wall clock once caught up), so a restart goes on from it and never runs its timers backwards
(a record of ``alerter_state/1`` without it reads as 0: the next record's time); the outbox
(:mod:`alerting.outbox`) holds every notification the pipeline has released and not yet finished,
with the channels already done. So a notification is never lost between the pipeline and its
channels: it is in the outbox before its anomalies' offsets are committed, and leaves it only once
every channel has delivered it or failed permanently (then a dead letter is on the alerts DLQ).

A permanent failure is one ``burnguard.alert_dead_letter/1`` record on the alerts DLQ (key =
``notification_id|channel``): the notification, the receiver, the channel, the reason
(``permanent``: the channel refused it; ``gave_up``: still failing at the retry deadline; ``intake``:
an anomaly record that could not be read), attempts, HTTP status and the time.

>>> from alerting.outbox import Outbox
>>> log = {"chat": {"g|#c": {"sent": "g#0", "data": {"ts": "1.2"}}}}
>>> state = decode_state(encode_state({"version": 1}, log, Outbox(), {0: 3}, now=0.0, clock=5.0))
>>> state.log == log, state.offsets, state.clock
(True, {0: 3}, 5.0)
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from alerting.channels import upgrade_channel_state
from alerting.notifier import Notification
from alerting.outbox import Outbox
from alerting.retry import DeliveryOutcome
from schemas.timefmt import format_ts

__all__ = [
    "ALERTER_STATE_SCHEMA",
    "ALERT_DEAD_LETTER_SCHEMA",
    "MAX_STATE_BYTES",
    "AlerterSnapshot",
    "decode_state",
    "delivery_dead_letter",
    "encode_state",
    "intake_dead_letter",
    "read_state",
]

ALERTER_STATE_SCHEMA = "burnguard.alerter_state/1"
ALERT_DEAD_LETTER_SCHEMA = "burnguard.alert_dead_letter/1"


@dataclass
class AlerterSnapshot:
    """The decoded state record (see the module docstring)."""

    pipeline: dict[str, Any] | None
    #: the channels' notification log, as :meth:`alerting.nflog.NotificationLog.snapshot` gives it
    log: dict[str, Any]
    outbox: Outbox
    offsets: dict[int, int]
    clock: float = 0.0


def encode_state(
    pipeline: dict[str, Any],
    log: dict[str, Any],
    outbox: Outbox,
    offsets: dict[int, int],
    now: float | None = None,
    *,
    clock: float = 0.0,
) -> bytes:
    return orjson.dumps(
        {
            "schema": ALERTER_STATE_SCHEMA,
            "pipeline": pipeline,
            "notification_log": log,
            "outbox": outbox.snapshot(),
            "offsets": {str(p): o for p, o in sorted(offsets.items())},
            "clock": clock,
            "written_at": format_ts(time.time() if now is None else now),
        }
    )


def decode_state(raw: bytes | None) -> AlerterSnapshot:
    """The state record, or an empty state for ``None`` (no record yet, or a tombstone).

    Raises ``ValueError`` for a record of another schema: starting from nothing would page again
    for every open episode, so the stage refuses to start rather than guess. A record without
    ``notification_log`` (written before it) has its channels' state upgraded into one.
    """
    if raw is None:
        return AlerterSnapshot(None, {}, Outbox(), {})
    data = orjson.loads(raw)
    if not isinstance(data, dict) or data.get("schema") != ALERTER_STATE_SCHEMA:
        schema = data.get("schema") if isinstance(data, dict) else None
        raise ValueError(f"alerter state record of schema {schema!r}, expected {ALERTER_STATE_SCHEMA}")
    return AlerterSnapshot(
        pipeline=data["pipeline"],
        log=dict(data["notification_log"] or {}) if "notification_log" in data else upgrade_channel_state(data),
        outbox=Outbox.restore(data.get("outbox") or []),
        offsets={int(p): int(o) for p, o in (data.get("offsets") or {}).items()},
        clock=float(data.get("clock") or 0.0),
    )


def delivery_dead_letter(
    notification: Notification, channel: str, outcome: DeliveryOutcome, now: float | None = None
) -> tuple[bytes, bytes]:
    """``(key, value)`` of the dead letter for a notification a channel did not take."""
    key = f"{notification.notification_id}|{channel}".encode()
    return key, orjson.dumps(
        {
            "schema": ALERT_DEAD_LETTER_SCHEMA,
            "reason": outcome.result,
            "error": outcome.error,
            "status": outcome.status,
            "attempts": outcome.attempts,
            "channel": channel,
            "receiver": notification.receiver,
            "notification_id": notification.notification_id,
            "dedup_key": notification.dedup_key,
            "notification": notification.model_dump(mode="json", by_alias=True),
            "failed_at": format_ts(time.time() if now is None else now),
        }
    )


def intake_dead_letter(
    value: bytes | None, error: str, topic: str, partition: int, offset: int, now: float | None = None
) -> tuple[bytes, bytes]:
    """``(key, value)`` of the dead letter for an anomaly record the stage could not read."""
    return f"{topic}/{partition}@{offset}".encode(), orjson.dumps(
        {
            "schema": ALERT_DEAD_LETTER_SCHEMA,
            "reason": "intake",
            "error": error,
            "channel": None,
            "receiver": None,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "value_b64": base64.b64encode(value).decode("ascii") if value is not None else None,
            "failed_at": format_ts(time.time() if now is None else now),
        }
    )


#: the largest state record the stage reads back (bytes)
MAX_STATE_BYTES = 16 * 1024 * 1024


async def read_state(kafka: dict[str, Any], topic: str, group_id: str) -> AlerterSnapshot:
    """The group's latest state record from the compacted state topic (read to its end); ``kafka``:
    the client settings (``StreamSettings.aiokafka_kwargs()``)."""
    tp = TopicPartition(topic, 0)
    reader = AIOKafkaConsumer(
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=MAX_STATE_BYTES * 2,
        max_partition_fetch_bytes=MAX_STATE_BYTES,
        **kafka,
    )
    await reader.start()
    latest: bytes | None = None
    key = group_id.encode()
    try:
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        end = (await reader.end_offsets([tp]))[tp]
        while await reader.position(tp) < end:
            for records in (await reader.getmany(tp, timeout_ms=1000)).values():
                for record in records:
                    if record.key == key:
                        latest = record.value
    finally:
        await reader.stop()
    return decode_state(latest)
