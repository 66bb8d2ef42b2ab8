"""``burnguard replay``: the detectors over a JSONL file, in event time, without Kafka."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

import orjson

from burnguard.files import DEFAULT_MAX_LINE_BYTES, Oversized, display_name, open_input, read_lines
from detectors.config import Autonomy, BurnguardConfig
from detectors.engine import Engine
from schemas.anomaly import Anomaly
from schemas.dead_letter import MAX_KEPT_VALUE_BYTES, kept_value, value_fields
from schemas.events import CostEvent

__all__ = ["ReplayResult", "failure", "looks_like", "open_events", "replay_file"]


@dataclass(slots=True)
class ReplayResult:
    engine: Engine
    lines: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: steps that arrived after their root task had finished, and their money (USD): the part of
    #: ``engine.stats.spend_usd`` in no finished task's totals (the worker's late-spend records)
    late_steps: int = 0
    late_spend_usd: float = 0.0
    #: non-blank lines that begin like a JSON object (``{``), and the first non-blank line's start
    objects: int = 0
    first_line: bytes = b""

    def note_first(self, line: bytes) -> None:
        if not self.first_line:
            self.first_line = line[:4096]

    def count_late(self, event: CostEvent) -> None:
        self.late_steps += 1
        self.late_spend_usd += event.cost_usd or 0.0

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def open_events(path: str | Path) -> BinaryIO:
    """Open a JSONL file, gzip-compressed when it starts with the gzip magic bytes; ``-`` is stdin
    (gzip detected alike). See :func:`burnguard.files.open_input`."""
    return open_input(path)


def replay_file(
    path: str | Path,
    out: IO[bytes] | None,
    *,
    config: BurnguardConfig | None = None,
    autonomy: Autonomy | None = None,
    dlq: IO[bytes] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    keep_anomalies: bool = True,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ReplayResult:
    """Run every line of ``path`` through a fresh :class:`Engine`; write anomalies to ``out``.

    Blank lines are skipped; a line that is not a valid cost event is counted, written to ``dlq``
    (if given) with its line number and reason, and never stops the replay. So is a line longer than
    ``max_line_bytes`` (read through in bounded memory, never parsed), and a valid event whose time
    the stream does not confirm (detectors.event_clock): far behind the stream, or far ahead of it
    and given up later (then written when given up, out of line order). An input that cannot be
    read through (a truncated gzip archive) raises :class:`burnguard.files.InputError`.
    """
    engine = Engine(config, autonomy=autonomy)
    result = ReplayResult(engine)
    engine.on_late_spend = result.count_late
    started = time.perf_counter()
    write = out.write if out is not None else None
    with open_events(path) as stream:
        lines = read_lines(stream, name=display_name(path), limit=max_line_bytes, on_bytes=on_bytes)
        for number, line in enumerate(lines, start=1):
            if isinstance(line, Oversized):
                result.lines += 1
                result.note_first(line.prefix)
                result.objects += line.prefix.lstrip().startswith(b"{")
                too_big = f"line is {line.size:,} bytes, over the {max_line_bytes:,}-byte limit of a cost event"
                _reject(result, dlq, number, too_big, line.prefix, line.size, line.sha256)
                continue
            if not line.strip():
                continue
            result.lines += 1
            result.note_first(line)
            if not line.lstrip().startswith(b"{"):
                _reject(result, dlq, number, f"not a JSON object (starts with {_preview(line)})", line)
                continue
            result.objects += 1
            anomalies, reason = engine.process_bytes(line, tag=number)
            if reason is not None:
                _reject(result, dlq, number, reason, line)
            for anomaly in anomalies:
                _emit(anomaly, write, result, keep_anomalies)
            for raw, tag, why in engine.take_rejected():  # held ahead of the stream, then given up
                _reject(result, dlq, tag, why, raw)
        for anomaly in engine.finish():
            _emit(anomaly, write, result, keep_anomalies)
        for anomaly in engine.advance_to(engine.max_ts + engine.config.lateness_s):
            _emit(anomaly, write, result, keep_anomalies)
        for raw, tag, why in engine.take_rejected():
            _reject(result, dlq, tag, why, raw)
    result.seconds = time.perf_counter() - started
    return result


def _preview(line: bytes, chars: int = 20) -> str:
    """The start of a line as a quoted string, e.g. ``'id,ts,cost'``."""
    text = line[: chars * 4].decode("utf-8", "replace").strip()
    return repr(text[:chars] + ("…" if len(text) > chars else ""))


def _reject(
    result: ReplayResult,
    dlq: IO[bytes] | None,
    number: int,
    reason: str,
    raw: bytes | str,
    size: int | None = None,
    sha256: str | None = None,
) -> None:
    """Count a rejected line and write its dead letter: line number, one-clause reason, the line as text
    (``raw``, whole, or its first 8 KiB when longer than the limit) and the original's size (bytes,
    newline excluded) and SHA-256; ``size``/``sha256`` are given when ``raw`` holds only a prefix."""
    result.rejected.append((number, reason))
    if dlq is None:
        return
    data = (raw.encode() if isinstance(raw, str) else raw).rstrip(b"\r\n")
    fields = value_fields(data) if size is None or sha256 is None else kept_value(data, size, sha256)
    text = data.decode("utf-8", "replace") if not fields["value_truncated"] else fields["value_text"]
    if text is None:  # a prefix that is not UTF-8
        text = data[:MAX_KEPT_VALUE_BYTES].decode("utf-8", "replace")
    letter = {"line": number, "reason": reason, "raw": text}
    letter.update({k: fields[k] for k in ("value_bytes", "value_sha256", "value_truncated")})
    dlq.write(orjson.dumps(letter) + b"\n")


def _emit(anomaly: Anomaly, write: Callable[[bytes], object] | None, result: ReplayResult, keep: bool) -> None:
    if write is not None:
        write(anomaly.to_json() + b"\n")
    if keep:
        result.anomalies.append(anomaly)


def looks_like(first: bytes) -> str:
    r"""What a file whose first non-blank line is ``first`` looks like, for an error message.

    >>> looks_like(b"id,ts,cost\n"), looks_like(b"\x89PNG\r\n\x1a\n\x00")
    ("CSV (first line 'id,ts,cost')", 'binary data, not text')
    """
    if b"\x00" in first:
        return "binary data, not text"
    try:
        text = first.decode("utf-8").strip()
    except UnicodeDecodeError:
        return "binary data, not text"
    if text.startswith("["):
        return "a JSON array (replay reads one JSON object per line)"
    if "," in text and "{" not in text:
        return f"CSV (first line {_preview(first, 40)})"
    return f"text (first line {_preview(first, 40)})"


def failure(result: ReplayResult, name: str) -> str | None:
    """Why a replay that read its input through found nothing to use, in one line, or ``None``."""
    if result.lines == 0:
        return f"{name}: no events (the input is empty); give a file of JSON lines, one cost event per line"
    if result.objects == 0:
        return (
            f"{name}: no line is a JSON object; it looks like {looks_like(result.first_line)}. "
            "replay reads JSON lines, one cost event per line"
        )
    if result.engine.stats.events == 0 and result.engine.stats.duplicates == 0:
        number, reason = result.rejected[0] if result.rejected else (0, "")
        return f"{name}: every line ({result.lines:,}) was rejected, none is a cost event (line {number}: {reason})"
    return None
