"""Dead letters: an input the pipeline could not use, kept with everything needed to look at it.

One JSON object per record on ``burnguard.dlq`` (key = the original key, at most
:data:`MAX_KEPT_KEY_BYTES` of it), ``burnguard.dead_letter/1``:

- ``reason`` — the engine's validation reason (``cost_usd: Input should be greater than or
  equal to 0``) or the internal error, at most :data:`MAX_REASON_CHARS` characters;
- ``stage`` — ``ingest`` (could not be routed) or ``detect`` (rejected or failed in the engine);
- ``topic``, ``partition``, ``offset`` — where the original record is, on the input topic;
- ``value_b64`` — the original bytes, base64; ``value_text`` — the same as UTF-8 text when it
  decodes (``null`` otherwise); ``key_b64`` likewise for the key;
- ``value_bytes``, ``value_sha256`` — the original value's size and SHA-256 (hex); ``value_truncated``
  — true when ``value_b64``/``value_text`` hold only its first :data:`MAX_KEPT_VALUE_BYTES` bytes
  (the original stays on the input topic at its offset until retention removes it); ``key_truncated``
  likewise for the key. So a dead letter always fits in a Kafka record, however large its original:
  a 1 MB event gives a dead letter of about 21 KB;
- ``failed_at`` — wall-clock time, RFC 3339 UTC.

>>> import orjson
>>> rec = orjson.loads(dead_letter(b"{oops", "event: Invalid JSON", "agent-cost-events", 2, 17, "ingest", now=0.0))
>>> rec["reason"], rec["partition"], rec["offset"], rec["value_b64"], rec["value_text"], rec["failed_at"]
('event: Invalid JSON', 2, 17, 'e29vcHM=', '{oops', '1970-01-01T00:00:00.000Z')
>>> rec["value_bytes"], rec["value_truncated"], rec["value_sha256"][:12]
(5, False, '935aaf3a54c0')
>>> big = orjson.loads(dead_letter(b"x" * 5_000_000, "event: too large", "agent-cost-events", 0, 1, "ingest"))
>>> big["value_bytes"], big["value_truncated"], len(big["value_text"])
(5000000, True, 8192)
"""

from __future__ import annotations

import base64
import logging
import time

import orjson

from schemas.dead_letter import MAX_KEPT_VALUE_BYTES, value_fields
from schemas.timefmt import format_ts

__all__ = [
    "DEAD_LETTER_SCHEMA",
    "MAX_KEPT_KEY_BYTES",
    "MAX_KEPT_VALUE_BYTES",
    "MAX_REASON_CHARS",
    "DeadLetterLog",
    "dead_letter",
    "dead_letter_key",
    "oversized",
]

log = logging.getLogger("burnguard.streams")

DEAD_LETTER_SCHEMA = "burnguard.dead_letter/1"
#: bytes of the original key a dead letter keeps, and the most its own record key holds
MAX_KEPT_KEY_BYTES = 1024
#: characters of the reason a dead letter keeps
MAX_REASON_CHARS = 2000
_NO_VALUE = {"value_b64": None, "value_text": None, "value_bytes": None, "value_sha256": None, "value_truncated": False}


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The dead letter's own record key: the original key, cut to :data:`MAX_KEPT_KEY_BYTES`."""
    return key[:MAX_KEPT_KEY_BYTES] if key is not None else None


def dead_letter(
    value: bytes | None,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    stage: str,
    *,
    key: bytes | None = None,
    now: float | None = None,
) -> bytes:
    """The dead-letter record (JSON bytes) for one input record; see the module docstring. Its size is
    bounded whatever the original's: at most about 4x :data:`MAX_KEPT_VALUE_BYTES` + 3x
    :data:`MAX_KEPT_KEY_BYTES` + :data:`MAX_REASON_CHARS` bytes, plus the topic name."""
    kept_key = dead_letter_key(key)
    value_kept = value_fields(value) if value is not None else _NO_VALUE
    return orjson.dumps(
        {
            "schema": DEAD_LETTER_SCHEMA,
            "reason": reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…",
            "stage": stage,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key_b64": base64.b64encode(kept_key).decode("ascii") if kept_key is not None else None,
            "key_truncated": key is not None and len(key) > MAX_KEPT_KEY_BYTES,
            **value_kept,
            "failed_at": format_ts(time.time() if now is None else now),
        }
    )


class DeadLetterLog:
    """Logs dead letters with their place and reason: all of the first 100, then one in 1000, so a
    flood of bad input cannot flood the log. ``count`` is the total."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, stage: str, topic: str, partition: int, offset: int, reason: str) -> None:
        self.count += 1
        if self.count <= 100 or self.count % 1000 == 0:
            log.warning(
                "dead letter #%d (%s) from %s/%d@%d: %s", self.count, stage, topic, partition, offset, reason[:300]
            )


def oversized(size: int, limit: int) -> str:
    """The reason of an event too large to read.

    >>> oversized(1_000_123, 262_144)
    'event: 1000123 bytes, more than the 262144 a cost event may have (BURNGUARD_MAX_EVENT_BYTES)'
    """
    return f"event: {size} bytes, more than the {limit} a cost event may have (BURNGUARD_MAX_EVENT_BYTES)"
