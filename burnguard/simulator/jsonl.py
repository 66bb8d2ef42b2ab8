"""Writing simulated events as JSON lines, with RFC 3339 UTC timestamps."""

from __future__ import annotations

import gzip
import io
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any, cast

import orjson

__all__ = ["format_ts", "write_jsonl"]

_CHUNK = 2_000  # lines per write


def format_ts(epoch: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds and ``Z``.

    >>> format_ts(1793577600.25)
    '2026-11-02T00:00:00.250Z'
    """
    ms = round(epoch * 1000)
    seconds, millis = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def _lines(events: Iterable[Mapping[str, Any]]) -> Iterable[bytes]:
    dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for event in events:
        ts = event["ts"]
        yield dumps({**event, "ts": ts if isinstance(ts, str) else format_ts(ts)}, option=option)


def _write(events: Iterable[Mapping[str, Any]], write: Callable[[bytes], object]) -> int:
    count = 0
    chunk: list[bytes] = []
    for line in _lines(events):
        chunk.append(line)
        if len(chunk) >= _CHUNK:
            write(b"".join(chunk))
            count += len(chunk)
            chunk.clear()
    if chunk:
        write(b"".join(chunk))
        count += len(chunk)
    return count


def write_jsonl(
    events: Iterable[Mapping[str, Any]], path_or_file: str | os.PathLike[str] | IO[bytes] | IO[str]
) -> int:
    """Write ``events`` one JSON object per line, ``ts`` as RFC 3339; returns the line count.

    A path is written atomically (:func:`burnguard.files.atomic_output`: an interrupted or failed
    write leaves the previous file, or none); ``-`` is standard output; a path ending in ``.gz`` is
    gzip-compressed. An open file may be binary or text; it is left open.
    """
    if isinstance(path_or_file, str | os.PathLike):
        from burnguard.files import atomic_output

        path = Path(path_or_file)
        with atomic_output(path) as fh:
            if path.suffix == ".gz":
                with gzip.GzipFile(filename="", mode="wb", fileobj=fh) as gz:
                    return _write(events, gz.write)
            return _write(events, fh.write)
    if isinstance(path_or_file, io.TextIOBase):
        text_file = path_or_file
        return _write(events, lambda data: text_file.write(data.decode()))
    binary_file = cast(IO[bytes], path_or_file)
    return _write(events, binary_file.write)
