"""What the two agents do with a batch of records, without Faust: routing (ingest) and detection.

``ingest`` reads ``agent-cost-events`` (keyed by root task) and forwards each record, unchanged, to
the internal topic keyed by its workflow (:func:`route`), with its source coordinates and its
event time in headers, then sends every internal partition a watermark: how far in event time each
source partition it reads has got, and whether it is read to its end. A record it cannot route goes
to the dead-letter topic. ``detect`` reads the internal topic and runs one
:class:`~detectors.engine.Engine` per partition (:class:`DetectionPipeline`), so every event of a
workflow reaches the engine that holds that workflow's baselines; the records of the different
source partitions reach it in event-time order (:class:`~streams.ordering.EventTimeMerge`), and its
event time advances only as far as every source has got, as in ``burnguard replay``. Validation
is the engine's: a record it rejects goes to the dead-letter topic with the engine's reason (the
ingest validates too, only to decide which event times may feed the watermarks: streams.routing),
and so does an event the engine held ahead of the stream and gave up (detectors.event_clock).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from detectors.config import Autonomy, BurnguardConfig
from detectors.engine import Engine, describe_validation_error
from detectors.event_clock import NOW
from detectors.ledger import TaskState
from schemas.events import CostEvent
from schemas.frames import FrameError, decode_frame
from streams.dlq import DeadLetterLog, dead_letter
from streams.ordering import EventTimeMerge, Mark
from streams.routing import (
    SOURCE_HEADER,
    TS_HEADER,
    IngestClock,
    parse_source,
    route,
    route_with_time,
    source_header,
)
from streams.state import PartitionState
from streams.summaries import TASK_SUMMARY_SCHEMA, late_spend_record, task_summary

__all__ = [
    "SOURCE_HEADER",
    "TASK_SUMMARY_SCHEMA",
    "TS_HEADER",
    "BatchResult",
    "DetectionPipeline",
    "IngestClock",
    "PipelineStats",
    "Record",
    "Watermark",
    "parse_source",
    "route",
    "route_with_time",
    "source_header",
    "task_summary",
]

log = logging.getLogger("burnguard.streams")


@dataclass(slots=True)
class Record:
    """One record of the internal topic, with the place of its original on the input topic."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    source: tuple[str, int, int]
    #: event time (epoch s) read by the ingest; ``None``: the record is processed as it arrives
    ts: float | None = None


@dataclass(slots=True)
class Watermark:
    """A watermark record of the internal topic (see :func:`watermark_header`)."""

    partition: int
    offset: int
    sources: dict[str, Mark]


@dataclass(slots=True)
class BatchResult:
    """What a batch produced: records to send (key, value), table writes, and per partition the
    highest internal offset up to which every record is done with (the rest wait in event-time order)."""

    anomalies: list[tuple[bytes, bytes]] = field(default_factory=list)
    summaries: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    state: dict[bytes, bytes] = field(default_factory=dict)
    done: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class PipelineStats:
    """Counters since the worker started (events, not bytes)."""

    routed: int = 0
    events: int = 0
    redelivered: int = 0
    dead_letters: int = 0
    errors: int = 0
    anomalies: int = 0
    summaries: int = 0
    batches: int = 0
    checkpoint_bytes: int = 0
    restored_partitions: int = 0
    watermarks: int = 0
    #: records waiting for the other sources to reach their event time (now)
    held: int = 0
    #: records released before their turn because a partition held ``max_held`` records
    out_of_order: int = 0
    #: events whose minute of spend was already released to the roll-up (they count in a later one)
    late: int = 0


class DetectionPipeline:
    """The detect agent's work: one Engine per partition of the internal topic, restored from and
    checkpointed to table entries (see :mod:`streams.state`).

    With ``sources`` (every ``"topic:partition"`` of the events topic), records that carry their
    event time are folded in event-time order across sources and each engine's event time follows
    the sources' watermarks (:class:`~streams.ordering.EventTimeMerge`, at most ``max_held``
    records waiting per partition); without, records are folded as they arrive. With ``roll_up``,
    each engine leaves its tenants' and teams' burn rates to the roll-up stage (streams.rollup).
    """

    def __init__(
        self,
        config: BurnguardConfig,
        *,
        partitions: int,
        autonomy: Autonomy | str | None = None,
        dedup_keep: int = 2_000,
        max_value_bytes: int = 512 * 1024,
        clock: Callable[[], float] = time.time,
        sources: Sequence[str] | None = None,
        max_held: int = 50_000,
        roll_up: bool = False,
    ) -> None:
        self.config = config
        self.partitions = partitions
        self.autonomy = autonomy
        self.dedup_keep = dedup_keep
        self.max_value_bytes = max_value_bytes
        self.clock = clock
        self.sources = list(sources) if sources is not None else None
        self.max_held = max_held
        self.roll_up = roll_up  # tenant and team burn rates are the roll-up stage's (streams.rollup)
        self.stats = PipelineStats()
        self.states: dict[int, PartitionState] = {}
        self.merges: dict[int, EventTimeMerge[Record]] = {}
        self._last: dict[int, int] = {}  # per partition: highest internal offset received
        self._summaries: list[tuple[bytes, bytes]] = []
        self._bad_frames: list[tuple[Record, str]] = []  # dead-lettered by the next batch
        self.note_dead = DeadLetterLog()
        #: the misnamed cost fields the worker's report has warned about (streams.worker_report), once each
        self.notices_logged: set[str] = set()

    def _engine(self) -> Engine:
        engine = Engine(self.config, autonomy=self.autonomy, clock=self.clock, roll_up=self.roll_up)
        engine.on_task_finished = self._on_finished
        engine.on_late_spend = lambda ev: self._summaries.append(late_spend_record(ev))  # streams.summaries
        return engine

    def _on_finished(self, task: TaskState) -> None:
        self._summaries.append((task.root_task_id.encode(), orjson.dumps(task_summary(task))))

    # -- partitions ------------------------------------------------------------------------------
    def load(self, partition: int, entries: Mapping[bytes, bytes]) -> PartitionState:
        """(Re)build a partition's engine from the table's entries (all partitions' may be given)."""
        self._forget(partition)
        state = PartitionState.restore(partition, self.partitions, entries, self._engine)
        self.states[partition] = state
        self.stats.restored_partitions += 1
        return state

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget partitions this worker no longer owns (their state lives on in the table, and the
        records still waiting here are redelivered to their next owner: they were not acknowledged)."""
        for p in partitions:
            self.states.pop(p, None)
            self._forget(p)

    def _forget(self, partition: int) -> None:
        merge = self.merges.pop(partition, None)
        if merge is not None:
            self.stats.held -= merge.held
        self._last.pop(partition, None)

    def unframe(self, value: bytes | None, partition: int, offset: int, topic: str = "internal") -> list[Record]:
        """The records of one frame of the internal topic (schemas.frames), each with its source place
        and event time; they share the frame's internal offset, so the frame is acknowledged once all
        of them are folded. A malformed frame is dead-lettered whole (with the next batch) and yields none."""
        try:
            source, entries = decode_frame(value or b"")
        except FrameError as exc:
            self._bad_frames.append((Record(None, value, partition, offset, (topic, partition, offset)), str(exc)))
            return []
        return [Record(e.key, e.value, partition, offset, (source, e.partition, e.offset), e.ts) for e in entries]

    # -- the batch -------------------------------------------------------------------------------
    def process(self, items: Sequence[Record | Watermark]) -> BatchResult:
        """Fold a batch into the partitions' engines (each must be loaded) and checkpoint them.

        Records are folded in event-time order when the pipeline has ``sources`` and the record
        its event time; ``result.done`` then says, per partition, up to which internal offset every
        record has been folded (the caller acknowledges those, and only those).
        """
        result = BatchResult()
        for rec, reason in self._bad_frames:
            self._dead(rec, f"frame: {reason}", result)
        self._bad_frames.clear()
        touched: set[int] = set()
        seen: set[int] = set()
        for item in items:
            p = item.partition
            seen.add(p)
            if item.offset > self._last.get(p, -1):
                self._last[p] = item.offset
            if isinstance(item, Watermark):
                self.stats.watermarks += 1
                if self.sources is not None:
                    for name, mark in item.sources.items():
                        self._merge(p).watermark(name, *mark)
                continue
            if self.sources is None or item.ts is None:
                self._fold(self.states[p], item, result)
                touched.add(p)
                continue
            name = f"{item.source[0]}:{item.source[1]}"
            # sent again by a restarted ingest: the copies still waiting give way to the new ones (a copy
            # already folded is skipped when its new one is: PartitionState.seen_offset)
            replaced = self._merge(p).add(name, item.ts, item, item.source[2])
            self.stats.held += 1 - len(replaced)
            self.stats.redelivered += len(replaced)
        for p in sorted(seen & self.merges.keys()):
            merge = self.merges[p]
            state = self.states[p]
            forced = merge.forced
            released = merge.release()
            self.stats.held -= len(released)
            for rec in released:
                self._fold(state, rec, result)
            touched.update({p} if released else ())
            if merge.forced > forced:
                self.stats.out_of_order += merge.forced - forced
                log.warning(
                    "partition %d: %d records released out of event-time order (%d held: a source is far behind)",
                    p,
                    merge.forced - forced,
                    merge.max_held,
                )
            reached = merge.reached()
            if math.isfinite(reached) and reached > state.engine.max_ts:
                self._emit(self._advance(state.engine, reached), result)
            pending = [rec.offset for rec in merge.pending()]
            result.done[p] = min(pending) - 1 if pending else self._last[p]
        for p in sorted(seen - self.merges.keys()):
            result.done[p] = self._last[p]
        for p in sorted(seen):
            self._dead_held(self.states[p], result)
        result.summaries, self._summaries = self._summaries, []
        self.stats.summaries += len(result.summaries)
        touched.update(p for p in seen if self.states[p].ticked)
        for p in sorted(touched):
            result.state.update(self.states[p].checkpoint(self.dedup_keep, self.max_value_bytes))
        self.stats.checkpoint_bytes += sum(len(v) for v in result.state.values())
        self.stats.batches += 1
        return result

    def _merge(self, partition: int) -> EventTimeMerge[Record]:
        merge = self.merges.get(partition)
        if merge is None:
            merge = self.merges[partition] = EventTimeMerge(self.sources or (), self.max_held)
        return merge

    def _advance(self, engine: Engine, now: float) -> list[Any]:
        """Let the engine's event time pass to ``now`` (its ticks fall on whole multiples of its tick
        interval, as in replay, so every partition ticks at the same event times)."""
        if engine.max_ts == 0.0:
            return []  # the stream's time is not known yet (its first events wait to be confirmed)
        return engine.advance_to(now)

    def _emit(self, anomalies: Iterable[Any], result: BatchResult) -> None:
        for anomaly in anomalies:
            result.anomalies.append((anomaly.anomaly_id.encode(), anomaly.to_json()))
            self.stats.anomalies += 1

    def _fold(self, state: PartitionState, rec: Record, result: BatchResult) -> None:
        try:
            self._one(state, rec, result)
        except Exception as exc:  # never die of one record: it goes to the dead-letter topic
            self.stats.errors += 1
            topic, part, offset = rec.source
            log.exception("error on the record at %s/%d@%d", topic, part, offset)
            self._dead(rec, f"internal error while processing: {type(exc).__name__}: {exc}", result)

    def _one(self, state: PartitionState, rec: Record, result: BatchResult) -> None:
        if rec.value is None:
            self._dead(rec, "event: empty record (no value)", result)
            return
        try:
            event = CostEvent.model_validate_json(rec.value)
        except ValidationError as exc:
            state.engine.stats.rejected += 1
            self._dead(rec, describe_validation_error(exc), result)
            return
        key = (event.tenant, event.team, event.workflow)
        source = f"{rec.source[0]}:{rec.source[1]}"
        if state.seen_offset(key, source, rec.source[2]):
            self.stats.redelivered += 1
            return
        engine = state.engine
        if self.sources is not None and event.ts > engine.max_ts and engine.event_clock.verdict(event.ts) == NOW:
            # ticks due by this event's time run before it: a tick then sees the workflow's events
            # earlier than its watermark, whichever partition's event passed the watermark first
            self._emit(self._advance(state.engine, event.ts), result)
        if event.ts < state.engine.minutes.released_to:
            self.stats.late += 1
            if self.stats.late <= 20:
                log.warning(
                    "partition %d: late event %s@%d (event time %.3f, minutes released to %.0f): "
                    "its spend counts in a later minute",
                    *(rec.partition, source, rec.source[2], event.ts, state.engine.minutes.released_to),
                )
        anomalies, reason = state.engine.process_safely(event, raw=rec.value, tag=[*rec.source, rec.partition])
        state.folded(key, source, rec.source[2])
        if reason is not None:
            self.stats.errors += 1
            self._dead(rec, reason, result)
            return
        self.stats.events += 1
        self._emit(anomalies, result)

    def _dead_held(self, state: PartitionState, result: BatchResult) -> None:
        """Dead-letter the events the engine held ahead of the stream and then gave up."""
        for raw, tag, reason in state.engine.take_rejected():
            topic, partition, offset, internal = tag
            rec = Record(None, raw.encode(), int(internal), -1, (str(topic), int(partition), int(offset)))
            self._dead(rec, reason, result)

    def _dead(self, rec: Record, reason: str, result: BatchResult) -> None:
        topic, partition, offset = rec.source
        self.note_dead("detect", topic, partition, offset, reason)
        result.dead_letters.append(
            (rec.key, dead_letter(rec.value, reason, topic, partition, offset, "detect", now=self.clock()))
        )
        self.stats.dead_letters += 1
