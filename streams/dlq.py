"""Dead letters: an input the pipeline could not use, kept with everything needed to look at it.

One JSON object per record on ``burnguard.dlq`` (key = the original key), ``burnguard.dead_letter/1``:

- ``reason`` — the engine's validation reason (``cost_usd: Input should be greater than or
  equal to 0``) or the internal error;
- ``stage`` — ``ingest`` (could not be routed) or ``detect`` (rejected or failed in the engine);
- ``topic``, ``partition``, ``offset`` — where the original record is, on the input topic;
- ``value_b64`` — the original bytes, base64; ``value_text`` — the same as UTF-8 text when it
  decodes (``null`` otherwise); ``key_b64`` likewise for the key;
- ``failed_at`` — wall-clock time, RFC 3339 UTC.

>>> import orjson
>>> rec = orjson.loads(dead_letter(b"{oops", "event: Invalid JSON", "agent-cost-events", 2, 17, "ingest", now=0.0))
>>> rec["reason"], rec["partition"], rec["offset"], rec["value_b64"], rec["value_text"], rec["failed_at"]
('event: Invalid JSON', 2, 17, 'e29vcHM=', '{oops', '1970-01-01T00:00:00.000Z')
"""

from __future__ import annotations

import base64
import logging
import time

import orjson

from schemas.timefmt import format_ts

__all__ = ["DEAD_LETTER_SCHEMA", "DeadLetterLog", "dead_letter"]

log = logging.getLogger("burnguard.streams")

DEAD_LETTER_SCHEMA = "burnguard.dead_letter/1"


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


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
    """The dead-letter record (JSON bytes) for one input record; see the module docstring."""
    return orjson.dumps(
        {
            "schema": DEAD_LETTER_SCHEMA,
            "reason": reason,
            "stage": stage,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key_b64": base64.b64encode(key).decode("ascii") if key is not None else None,
            "value_b64": base64.b64encode(value).decode("ascii") if value is not None else None,
            "value_text": _text(value),
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
