"""The ingest's part of :mod:`streams.pipeline`: where a record goes (its workflow key), the event
time it carries through the internal topic (validated, bounded by the wall clock, and moved by the
engine's rule: :class:`IngestClock`), and the header that keeps its place on the input topic.
"""

from __future__ import annotations

import math

import orjson
from pydantic import ValidationError

from detectors.engine import describe_validation_error
from detectors.event_clock import span
from schemas.events import CostEvent
from schemas.timefmt import format_ts
from streams.ordering import Mark
from streams.state import workflow_key

__all__ = ["SOURCE_HEADER", "TS_HEADER", "IngestClock", "parse_source", "route", "route_with_time", "source_header"]

SOURCE_HEADER = "burnguard-source"
TS_HEADER = "burnguard-ts"


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
    key, reason, _ = route_with_time(value)
    return key, reason


def route_with_time(
    value: bytes | None, wall: float | None = None, max_skew_s: float = math.inf
) -> tuple[bytes | None, str | None, float | None]:
    """:func:`route` plus the record's event time in epoch seconds, taken only from a record the
    contract accepts (``None`` otherwise: the engine rejects it downstream, with the reason). With
    the wall clock ``wall`` (epoch s), a valid event more than ``max_skew_s`` ahead of it is not
    routed: ``(None, reason, None)``, for the dead-letter topic.

    >>> ev = b'{"event_id": "e", "kind": "task_started", "task_id": "t", "team": "t", "workflow": "w", '
    >>> route_with_time(ev + b'"ts": "2026-11-02T10:00:00.250Z"}')
    (b'["default","t","w"]', None, 1793613600.25)
    >>> route_with_time(b'{"team": "t", "workflow": "w", "ts": "2099-12-31T00:00:00Z"}')  # invalid: no time
    (b'["default","t","w"]', None, None)
    >>> print(route_with_time(ev + b'"ts": "2099-12-31T00:00:00Z"}', 1793613600.0, 300)[1])
    event time 2099-12-31T00:00:00.000Z is 73.2 years ahead of this worker's clock (2026-11-02T10:00:00.000Z), \
more than BURNGUARD_MAX_CLOCK_SKEW_S = 300 s: rejected (a producer's clock or a bug, not a cost yet to come)
    """
    if value is not None:
        try:  # the common case first: a valid event, parsed and validated in one pass of pydantic-core
            event = CostEvent.model_validate_json(value)
        except ValidationError:
            pass
        else:
            if wall is not None and event.ts > wall + max_skew_s:
                return None, _skew_reason(event.ts, wall, max_skew_s), None
            return workflow_key(event.tenant, event.team, event.workflow), None, event.ts
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            tenant, team, workflow = obj.get("tenant", "default"), obj.get("team"), obj.get("workflow")
            names = (tenant, team, workflow)
            if all(isinstance(v, str) and v for v in names):
                # invalid (else it was routed above): routed all the same, without a time, so that the
                # engine rejects it with its reason
                return workflow_key(*(str(v) for v in names)), None, None
    if value is None:
        return None, "event: empty record (no value)", None
    try:
        CostEvent.model_validate_json(value)
    except ValidationError as exc:
        return None, describe_validation_error(exc), None
    return None, "event: tenant, team and workflow must be non-empty strings", None


def _skew_reason(ts: float, wall: float, max_skew_s: float) -> str:
    return (
        f"event time {format_ts(ts)} is {span(ts - wall)} ahead of this worker's clock ({format_ts(wall)}), "
        f"more than BURNGUARD_MAX_CLOCK_SKEW_S = {max_skew_s:.0f} s: rejected (a producer's clock or a bug, "
        "not a cost yet to come)"
    )


class IngestClock:
    """The ingest's event time and positions per source partition. Its watermarks tell only what is
    on the broker — the offsets and event time of batches whose deliveries all completed — so an idle
    check running while a batch is in flight vouches for none of it (:meth:`delivered`, :meth:`mark`).
    The frontier its watermarks report is taken only
    from records the contract accepts and within the wall-clock bound (:func:`route_with_time`), so
    neither an invalid record nor a far-future one moves it. Not yet done: a *valid* record far
    ahead of its source but within the wall-clock bound (a backlog's stray record stamped today)
    still moves its source's frontier; the engine holds and rejects the event itself
    (detectors.event_clock), and the merge's event time is the lowest of the sources' frontiers.
    Clamping such a record to the frontier (the engine's rule per source) was tried and measured
    worse: a quiet source's first records after a gap of more than ``max_ahead_s`` then left the
    merge early, and the roll-up's tenant and team anomalies no longer matched replay's."""

    def __init__(self) -> None:
        #: per source partition: the event time reached (epoch s) by the records read
        self.frontier: dict[int, float] = {}
        #: per source partition: the highest offset forwarded to the internal topic
        self.forwarded: dict[int, int] = {}
        # as of the last batch whose records are all on the broker: the highest offset forwarded
        # (with all before it), the last offset read (forwarded or dead-lettered), the event time
        self._vouched: dict[int, int] = {}
        self._read_to: dict[int, int] = {}
        self._settled: dict[int, float] = {}

    def place(self, partition: int, ts: float | None) -> float | None:
        """The event time to send with a record of ``partition`` whose validated time is ``ts``
        (``None``: an invalid record, which carries none)."""
        if ts is not None and ts > self.frontier.get(partition, -math.inf):
            self.frontier[partition] = ts
        return ts

    def forward(self, partition: int, offset: int) -> None:
        """The record at ``offset`` of source ``partition`` is being forwarded."""
        if offset > self.forwarded.get(partition, -1):
            self.forwarded[partition] = offset

    def delivered(self, read: dict[int, int]) -> None:
        """Every record of a batch that read source partitions up to ``read`` (partition -> last
        offset) is on the broker: watermarks may now vouch for them."""
        self._vouched.update(self.forwarded)
        self._read_to.update(read)
        self._settled.update((p, self.frontier[p]) for p in read if p in self.frontier)

    def mark(self, partition: int, idle: bool = False, ends: dict[str, int] | None = None) -> Mark:
        """What a watermark tells of source ``partition``: only what is on the broker."""
        return Mark(self._settled.get(partition), idle, self._vouched.get(partition), ends if idle else None)

    def read_to(self, partition: int) -> int:
        """The next offset of ``partition`` past what this ingest has on the broker (0: nothing)."""
        return self._read_to.get(partition, -1) + 1

    def forget(self, partition: int) -> None:
        """The partition went to another worker, who reads on from the committed offset: if it
        comes back, what was read here before says nothing of what is forwarded."""
        for known in (self.frontier, self.forwarded, self._vouched, self._read_to, self._settled):
            known.pop(partition, None)
