"""The bounded copy of a rejected input that a dead letter keeps, whatever the input's size.

Shared by the Kafka pipeline's dead letters (``streams.dlq``) and ``burnguard replay --dlq``: a
dead letter holds at most :data:`MAX_KEPT_VALUE_BYTES` bytes of the original, with the original's
size (bytes) and SHA-256 (hex), so it can be matched to the original and never grows with it.

>>> fields = kept_value(b"x" * 10_000, 10_000, "ab" * 32)
>>> fields["value_bytes"], fields["value_truncated"], len(fields["value_text"])
(10000, True, 8192)
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

__all__ = ["MAX_KEPT_VALUE_BYTES", "kept_text", "kept_value", "value_fields"]

#: bytes of the original value a dead letter keeps (base64 and text: about 3x this in the record)
MAX_KEPT_VALUE_BYTES = 8192


def kept_text(raw: bytes | None, truncated: bool = False) -> str | None:
    """``raw`` as UTF-8 text, or ``None`` when it is not UTF-8. A prefix (``truncated``) may end
    inside a character: up to 3 bytes of it are dropped, never more."""
    if raw is None:
        return None
    for cut in range(4 if truncated else 1):
        try:
            return raw[: len(raw) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def kept_value(prefix: bytes, size: int, sha256: str) -> dict[str, Any]:
    """The dead-letter fields of a value of ``size`` bytes whose first bytes are ``prefix`` and whose
    SHA-256 is ``sha256``: ``value_b64``, ``value_text`` (of at most :data:`MAX_KEPT_VALUE_BYTES`),
    ``value_bytes``, ``value_sha256`` and ``value_truncated``."""
    kept = prefix[:MAX_KEPT_VALUE_BYTES]
    cut = size > len(kept)
    return {
        "value_b64": base64.b64encode(kept).decode("ascii"),
        "value_text": kept_text(kept, cut),
        "value_bytes": size,
        "value_sha256": sha256,
        "value_truncated": cut,
    }


def value_fields(value: bytes) -> dict[str, Any]:
    """:func:`kept_value` of a value held whole."""
    return kept_value(value[:MAX_KEPT_VALUE_BYTES], len(value), hashlib.sha256(value).hexdigest())
