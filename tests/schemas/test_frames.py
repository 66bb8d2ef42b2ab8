"""Frames of the internal topic: what the ingest writes is what detect reads, byte for byte."""

from __future__ import annotations

import doctest
import math

import pytest

import schemas.frames
from schemas.frames import MAX_FRAME_BYTES, FrameEntry, FrameError, decode_frame, encode_frame, split_frames


def entries(n: int, size: int = 50) -> list[FrameEntry]:
    return [FrameEntry(f"k{i}".encode() if i % 3 else None, bytes([65 + i % 26]) * size, i % 4, 1000 + i,
                       None if i % 5 == 0 else 1_793_613_600.0 + i / 7) for i in range(n)]


def test_docstring_examples() -> None:
    assert doctest.testmod(schemas.frames).failed == 0


def test_round_trip_keeps_every_byte_key_place_and_time() -> None:
    sent = [*entries(200), FrameEntry(b"x", b'{"ts": 1e9, "odd": "\\u00e9\\n"}\n', 7, 2**40, -0.0)]
    topic, got = decode_frame(encode_frame("agent-cost-events", sent))
    assert topic == "agent-cost-events" and got == sent
    assert [e.ts is None for e in got] == [e.ts is None for e in sent]  # NaN is "no time", never a time


def test_an_empty_frame_has_no_entries() -> None:
    assert decode_frame(encode_frame("t", [])) == ("t", [])


def test_frames_are_split_under_the_byte_budget_in_order_and_a_large_event_travels_alone() -> None:
    sent = entries(100, size=10_000)
    frames = list(split_frames("t", sent, max_bytes=64_000))
    assert len(frames) > 10 and all(len(f) <= 64_000 + 100 for f in frames)
    assert [e for f in frames for e in decode_frame(f)[1]] == sent
    big = [FrameEntry(b"k", b"x" * (MAX_FRAME_BYTES + 1), 0, 1, None), *entries(2)]
    split = [decode_frame(f)[1] for f in split_frames("t", big)]
    assert [len(s) for s in split] == [1, 2]


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (lambda f: b'{"kind": "step"}', "not a burnguard frame"),
        (lambda f: f[:-3], "runs past the end"),
        (lambda f: f[:12], "truncated or malformed"),
        (lambda f: f[:4] + b"\x00\x09ab", "truncated or malformed"),
    ],
)
def test_a_malformed_frame_is_an_error_that_says_what_is_wrong(mangle: object, why: str) -> None:
    frame = encode_frame("topic", entries(3))
    with pytest.raises(FrameError, match=why):
        decode_frame(mangle(frame))  # type: ignore[operator]


def test_nan_is_the_only_missing_time() -> None:
    (entry,) = decode_frame(encode_frame("t", [FrameEntry(None, b"{}", 0, 0, math.inf)]))[1]
    assert entry.ts == math.inf and entry.key is None
