"""Dead letters keep a bounded prefix of their original, its size and hash (streams.dlq)."""

from __future__ import annotations

import base64
import hashlib

import orjson

from streams.dlq import MAX_KEPT_KEY_BYTES, MAX_KEPT_VALUE_BYTES, dead_letter


def test_dead_letter_is_bounded_and_keeps_size_and_hash() -> None:
    value = ("é" * 600_000).encode()  # 1.2 MB of two-byte characters: the prefix may end inside one
    letter = orjson.loads(dead_letter(value, "r" * 10_000, "ev", 1, 2, "ingest", key=b"k" * 5_000))
    assert letter["value_bytes"] == len(value) and letter["value_truncated"]
    assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert len(base64.b64decode(letter["value_b64"])) == MAX_KEPT_VALUE_BYTES
    assert letter["value_text"] == "é" * (MAX_KEPT_VALUE_BYTES // 2)
    assert len(base64.b64decode(letter["key_b64"])) == MAX_KEPT_KEY_BYTES and letter["key_truncated"]
    assert len(letter["reason"]) == 2000
    small = orjson.loads(dead_letter(b"{}", "bad", "ev", 0, 0, "detect"))
    assert (small["value_text"], small["value_truncated"], small["key_b64"]) == ("{}", False, None)
