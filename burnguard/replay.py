"""``burnguard replay``: the detectors over a JSONL file, in event time, without Kafka."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

import orjson

from detectors.config import Autonomy, BurnguardConfig
from detectors.engine import Engine
from schemas.anomaly import Anomaly
from schemas.events import CostEvent

__all__ = ["ReplayResult", "open_events", "replay_file"]


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

    def count_late(self, event: CostEvent) -> None:
        self.late_steps += 1
        self.late_spend_usd += event.cost_usd or 0.0

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def open_events(path: str | Path) -> BinaryIO:
    """Open a JSONL file, gzip-compressed when it starts with the gzip magic bytes; ``-`` is stdin."""
    if str(path) == "-":
        import sys

        return sys.stdin.buffer
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def _lines(stream: BinaryIO, on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
    for line in stream:
        if on_bytes is not None:
            on_bytes(len(line))
        yield line


def replay_file(
    path: str | Path,
    out: IO[bytes] | None,
    *,
    config: BurnguardConfig | None = None,
    autonomy: Autonomy | None = None,
    dlq: IO[bytes] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    keep_anomalies: bool = True,
) -> ReplayResult:
    """Run every line of ``path`` through a fresh :class:`Engine`; write anomalies to ``out``.

    Blank lines are skipped; a line that is not a valid cost event is counted, written to ``dlq``
    (if given) with its line number and reason, and never stops the replay. So is a valid event
    whose time the stream does not confirm (detectors.event_clock): far behind the stream, or far
    ahead of it and given up later (then written when given up, out of line order).
    """
    engine = Engine(config, autonomy=autonomy)
    result = ReplayResult(engine)
    engine.on_late_spend = result.count_late
    started = time.perf_counter()
    write = out.write if out is not None else None
    with open_events(path) as stream:
        for number, line in enumerate(_lines(stream, on_bytes), start=1):
            if not line.strip():
                continue
            result.lines += 1
            anomalies, reason = engine.process_bytes(line, tag=number)
            if reason is not None:
                _reject(result, dlq, number, reason, line.decode("utf-8", "replace"))
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


def _reject(result: ReplayResult, dlq: IO[bytes] | None, number: int, reason: str, raw: str) -> None:
    result.rejected.append((number, reason))
    if dlq is not None:
        dlq.write(orjson.dumps({"line": number, "reason": reason, "raw": raw.rstrip("\n")}) + b"\n")


def _emit(anomaly: Anomaly, write: Callable[[bytes], object] | None, result: ReplayResult, keep: bool) -> None:
    if write is not None:
        write(anomaly.to_json() + b"\n")
    if keep:
        result.anomalies.append(anomaly)
