"""What the two agents do with a batch of records, without Faust: routing (ingest) and detection.

``ingest`` reads ``agent-cost-events`` (keyed by root task) and forwards each record, unchanged, to
the internal topic keyed by its workflow (:func:`route`), with its source coordinates in a header;
a record it cannot route goes to the dead-letter topic. ``detect`` reads the internal topic and runs
one :class:`~detectors.engine.Engine` per partition (:class:`DetectionPipeline`), so every event of
a workflow reaches the engine that holds that workflow's baselines. Validation is the engine's:
a record it rejects goes to the dead-letter topic with the engine's reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from detectors.config import Autonomy, BurnguardConfig
from detectors.engine import Engine, describe_validation_error
from detectors.ledger import BUDGET_LINES, TaskState
from schemas.events import CostEvent
from schemas.timefmt import format_ts
from streams.dlq import DeadLetterLog, dead_letter
from streams.state import PartitionState, workflow_key

__all__ = [
    "SOURCE_HEADER",
    "TASK_SUMMARY_SCHEMA",
    "BatchResult",
    "DetectionPipeline",
    "PipelineStats",
    "Record",
    "parse_source",
    "route",
    "source_header",
    "task_summary",
]

log = logging.getLogger("burnguard.streams")
SOURCE_HEADER = "burnguard-source"
TASK_SUMMARY_SCHEMA = "burnguard.task_summary/1"


def source_header(topic: str, partition: int, offset: int) -> bytes:
    """The header value that carries a record's place on the input topic through the internal topic."""
    return f"{topic}:{partition}:{offset}".encode()


def parse_source(value: bytes) -> tuple[str, int, int]:
    """``(topic, partition, offset)`` from :func:`source_header` (topic names never hold ``:``).

    >>> parse_source(source_header("agent-cost-events", 2, 17))
    ('agent-cost-events', 2, 17)
    """
    topic, partition, offset = value.decode().rsplit(":", 2)
    return topic, int(partition), int(offset)


def route(value: bytes | None) -> tuple[bytes | None, str | None]:
    """``(workflow key, None)`` for a record that can be routed, or ``(None, reason)``.

    Only what routing needs is checked here (JSON object, string ``team`` and ``workflow``);
    everything else is the engine's job, downstream. The reason of an unroutable record is the
    engine's own validation message whenever the schema explains it.

    >>> route(b'{"team": "t", "workflow": "w"}')
    (b'["default","t","w"]', None)
    >>> route(b"not json")[1]
    'event: Invalid JSON: expected ident at line 1 column 2'
    """
    if value is not None:
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            tenant, team, workflow = obj.get("tenant", "default"), obj.get("team"), obj.get("workflow")
            names = (tenant, team, workflow)
            if all(isinstance(v, str) and v for v in names):
                return workflow_key(*(str(v) for v in names)), None
    if value is None:
        return None, "event: empty record (no value)"
    try:
        CostEvent.model_validate_json(value)
    except ValidationError as exc:
        return None, describe_validation_error(exc)
    return None, "event: tenant, team and workflow must be non-empty strings"


def task_summary(task: TaskState) -> dict[str, Any]:
    """The ``burnguard.task_summary/1`` record of a finished root task: money in USD (sub-agents
    included, split into the budget lines), times RFC 3339 UTC, ``duration_s`` in seconds."""
    return {
        "schema": TASK_SUMMARY_SCHEMA,
        "root_task_id": task.root_task_id,
        "scope": {"tenant": task.tenant, "team": task.team, "workflow": task.workflow},
        "agent": task.agent,
        "outcome": task.outcome,
        "cost_usd": round(task.cost_usd, 9),
        "lines": {name: round(task.lines[i], 9) for i, name in enumerate(BUDGET_LINES)},
        "budget_usd": task.budget_usd,
        "value_usd": task.value_usd,
        "started_at": format_ts(task.started_ts),
        "finished_at": format_ts(task.last_ts),
        "duration_s": round(task.duration_s, 3),
        "steps": task.steps,
        "model_calls": task.model_calls,
        "unpriced_steps": task.unpriced_steps,
        "errors": task.errors,
        "retries": task.retries,
        "subagents": task.subagents,
        "killed": task.killed,
    }


@dataclass(slots=True)
class Record:
    """One record of the internal topic, with the place of its original on the input topic."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    source: tuple[str, int, int]


@dataclass(slots=True)
class BatchResult:
    """What a batch produced: records to send (key, value) and table writes."""

    anomalies: list[tuple[bytes, bytes]] = field(default_factory=list)
    summaries: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    state: dict[bytes, bytes] = field(default_factory=dict)


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


class DetectionPipeline:
    """The detect agent's work: one Engine per partition of the internal topic, restored from and
    checkpointed to table entries (see :mod:`streams.state`)."""

    def __init__(
        self,
        config: BurnguardConfig,
        *,
        partitions: int,
        autonomy: Autonomy | str | None = None,
        dedup_keep: int = 2_000,
        max_value_bytes: int = 512 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.partitions = partitions
        self.autonomy = autonomy
        self.dedup_keep = dedup_keep
        self.max_value_bytes = max_value_bytes
        self.clock = clock
        self.stats = PipelineStats()
        self.states: dict[int, PartitionState] = {}
        self._summaries: list[tuple[bytes, bytes]] = []
        self.note_dead = DeadLetterLog()

    def _engine(self) -> Engine:
        engine = Engine(self.config, autonomy=self.autonomy, clock=self.clock)
        engine.on_task_finished = self._on_finished
        return engine

    def _on_finished(self, task: TaskState) -> None:
        self._summaries.append((task.root_task_id.encode(), orjson.dumps(task_summary(task))))

    # -- partitions ------------------------------------------------------------------------------
    def load(self, partition: int, entries: Mapping[bytes, bytes]) -> PartitionState:
        """(Re)build a partition's engine from the table's entries (all partitions' may be given)."""
        state = PartitionState.restore(partition, self.partitions, entries, self._engine)
        self.states[partition] = state
        self.stats.restored_partitions += 1
        return state

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget partitions this worker no longer owns (their state lives on in the table)."""
        for p in partitions:
            self.states.pop(p, None)

    # -- the batch -------------------------------------------------------------------------------
    def process(self, records: Sequence[Record]) -> BatchResult:
        """Fold a batch into the partitions' engines (each must be loaded) and checkpoint them."""
        result = BatchResult()
        touched: set[int] = set()
        for rec in records:
            state = self.states[rec.partition]
            touched.add(rec.partition)
            try:
                self._one(state, rec, result)
            except Exception as exc:  # never die of one record: it goes to the dead-letter topic
                self.stats.errors += 1
                topic, part, offset = rec.source
                log.exception("error on the record at %s/%d@%d", topic, part, offset)
                self._dead(rec, f"internal error while processing: {type(exc).__name__}: {exc}", result)
        result.summaries, self._summaries = self._summaries, []
        self.stats.summaries += len(result.summaries)
        for p in sorted(touched):
            result.state.update(self.states[p].checkpoint(self.dedup_keep, self.max_value_bytes))
        self.stats.checkpoint_bytes += sum(len(v) for v in result.state.values())
        self.stats.batches += 1
        return result

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
        anomalies, reason = state.engine.process_safely(event)
        state.folded(key, source, rec.source[2])
        if reason is not None:
            self.stats.errors += 1
            self._dead(rec, reason, result)
            return
        self.stats.events += 1
        for anomaly in anomalies:
            result.anomalies.append((anomaly.anomaly_id.encode(), anomaly.to_json()))
        self.stats.anomalies += len(anomalies)

    def _dead(self, rec: Record, reason: str, result: BatchResult) -> None:
        topic, partition, offset = rec.source
        self.note_dead("detect", topic, partition, offset, reason)
        result.dead_letters.append(
            (rec.key, dead_letter(rec.value, reason, topic, partition, offset, "detect", now=self.clock()))
        )
        self.stats.dead_letters += 1
