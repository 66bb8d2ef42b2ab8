"""Frames: the records of the internal topic ``<app>.events-by-workflow`` (version 1).

The ingest stage forwards what it reads of ``agent-cost-events`` not one record per event but one
*frame* per destination partition per batch: the events' original bytes, unchanged, each with its
routing key, its place on the source topic (partition, offset) and the event time the ingest read
from it. A frame is marked by the header ``bg-frame: 1`` (a record without it is a single forwarded
event, as earlier versions wrote them, and is still read). The layout, all integers big-endian::

    frame   := magic "BGF1"  u16 topic-length  topic (UTF-8)  entry*
    entry   := i32 source-partition  i64 source-offset  f64 event-time (NaN: none)
               u16 key-length  u32 value-length  key  value

Binary and length-prefixed, not JSON: an event's bytes travel exactly as the producer wrote them
(a dead letter carries them byte for byte), and neither side parses or re-encodes them to frame
them. Nothing here is executable data: a malformed frame raises :class:`FrameError`.

>>> raw = encode_frame("agent-cost-events", [FrameEntry(b"k", b'{"a":1}', 3, 41, 1793613600.5)])
>>> decode_frame(raw)
('agent-cost-events', [FrameEntry(key=b'k', value=b'{"a":1}', partition=3, offset=41, ts=1793613600.5)])
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

__all__ = [
    "FRAME_HEADER",
    "FRAME_HEADERS",
    "FRAME_MAGIC",
    "MAX_FRAME_BYTES",
    "FrameEntry",
    "FrameError",
    "decode_frame",
    "encode_frame",
    "entry_size",
    "split_frames",
]

FRAME_HEADER = "bg-frame"
#: the headers a frame record is sent with
FRAME_HEADERS = {FRAME_HEADER: b"1"}
FRAME_MAGIC = b"BGF1"
#: a frame is closed before it would pass this many bytes (a frame of one event may be larger: an
#: event is at most streams.settings.MAX_EVENT_BYTES_LIMIT, under the producer's 1,000,000-byte request)
MAX_FRAME_BYTES = 512 * 1024
_ENTRY = struct.Struct(">iqdHI")
_TOPIC = struct.Struct(">H")


class FrameError(ValueError):
    """Bytes that are not a well-formed frame (truncated, wrong magic, lengths past the end)."""


class FrameEntry(NamedTuple):
    """One forwarded event: its routing key and bytes, its source partition and offset, its event
    time (epoch s) as the ingest read it, ``None`` when it had none it could use."""

    key: bytes | None
    value: bytes
    partition: int
    offset: int
    ts: float | None


def entry_size(entry: FrameEntry) -> int:
    return _ENTRY.size + len(entry.key or b"") + len(entry.value)


def encode_frame(topic: str, entries: Iterable[FrameEntry]) -> bytes:
    name = topic.encode()
    parts = [FRAME_MAGIC, _TOPIC.pack(len(name)), name]
    pack = _ENTRY.pack
    nan = math.nan
    for key, value, partition, offset, ts in entries:
        k = key or b""
        parts += (pack(partition, offset, nan if ts is None else ts, len(k), len(value)), k, value)
    return b"".join(parts)


def split_frames(topic: str, entries: list[FrameEntry], max_bytes: int = MAX_FRAME_BYTES) -> Iterator[bytes]:
    """``entries`` as frames of at most ``max_bytes`` each (a single larger entry is a frame alone), in order."""
    start, size = 0, 0
    for i, entry in enumerate(entries):
        grown = entry_size(entry)
        if i > start and size + grown > max_bytes:
            yield encode_frame(topic, entries[start:i])
            start, size = i, 0
        size += grown
    if start < len(entries):
        yield encode_frame(topic, entries[start:])


def decode_frame(data: bytes) -> tuple[str, list[FrameEntry]]:
    """The source topic and the entries of a frame, in the order they were written."""
    if data[:4] != FRAME_MAGIC:
        raise FrameError(f"not a burnguard frame (starts with {data[:4]!r}, expected {FRAME_MAGIC!r})")
    end = len(data)
    try:
        (length,) = _TOPIC.unpack_from(data, 4)
        at = 4 + _TOPIC.size
        if at + length > end:
            raise FrameError(f"truncated or malformed frame: its topic name runs past the end ({at + length} > {end})")
        topic = data[at : at + length].decode()
        at += length
        entries: list[FrameEntry] = []
        unpack = _ENTRY.unpack_from
        size = _ENTRY.size
        while at < end:
            partition, offset, ts, key_len, value_len = unpack(data, at)
            at += size
            stop = at + key_len + value_len
            if stop > end:
                raise FrameError(f"entry {len(entries)} runs past the end of the frame ({stop} > {end} bytes)")
            key = data[at : at + key_len] if key_len else None
            entries.append(FrameEntry(key, data[at + key_len : stop], partition, offset, None if ts != ts else ts))
            at = stop
    except (struct.error, UnicodeDecodeError) as exc:
        raise FrameError(f"truncated or malformed frame: {exc}") from exc
    return topic, entries
