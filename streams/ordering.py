"""Event-time order across source partitions, for one partition of the internal topic.

The ingest agent forwards every source partition of ``agent-cost-events`` (keyed by root task) to
the workflow-keyed internal topic, so one internal partition interleaves records of every source
partition, in whatever order the ingest instances happened to read them. A workflow's learned
baselines (runaway, fan-out, stale) depend on the order in which its tasks finish, and its
event-time ticks on how far event time has advanced: fed in arrival order, an engine whose one
source runs an hour ahead ticks an hour ahead, and every task of the lagging sources looks silent.

:class:`EventTimeMerge` restores event-time order: records wait in one queue per source (arrival
order, which is the source's own order) and leave in ``(event time, source)`` order — a k-way
merge — once no source can still send an earlier one. What a source may still send is bounded by
its *frontier*: the event time it has reached, from its own records here and from the watermarks
the ingest sends to every internal partition after each batch. A source the ingest reports
*idle* (read to its end) holds nobody back beyond what the others had reached when it was found
idle: the idle check reads the end offsets of *every* source at once, and an idle source bounds the
merge by the event time the other sources had reached below those ends (their records and
watermarks carry source offsets). What the others produced after that snapshot waits for the idle
source's next watermark, since it may yet send records produced alongside them. So a burst into
sources that were idle is merged in order, whichever source's reader gets to it first; only a
record produced after others with a later event time were released is *late*.

Sources are assumed to be in event-time order (agents send a task's events as they happen). A
record earlier than its source's frontier is *late*; it leaves as soon as it heads its queue.

A record that carries its source offset leaves only once a watermark of its source *vouches* for it
(the watermark's offset is at or past it): the ingest sends a watermark only after every record it
forwarded before it is on the broker. A record whose ingest batch failed half-way (some deliveries
refused, later ones accepted) is therefore never folded: the ingest stops with that batch
unacknowledged, and after its restart forwards the batch again. A record arriving at or below the
last offset queued for its source is such a re-forward: the queued records from there on are
dropped (:meth:`EventTimeMerge.add` returns them), their new copies follow, and the source's
frontier and vouched offset fall back to what it had told below the re-forward: the others must
not run ahead of records it is about to send again (after a SIGKILL the survivor forwards what the
victim had forwarded, not committed).

>>> merge = EventTimeMerge(["ev:0", "ev:1"])
>>> merge.add("ev:0", 10.0, "a"); merge.add("ev:0", 30.0, "c"); merge.release()
[]
[]
[]
>>> merge.add("ev:1", 20.0, "b"); merge.release()  # ev:1 has reached 20: a and b cannot be preceded
[]
['a', 'b']
>>> merge.watermark("ev:1", 40.0, idle=False); merge.release(), merge.reached()
(['c'], 30.0)
>>> merge.watermark("ev:0", None, idle=True); merge.reached()  # ev:0 read to its end: ev:1 decides
40.0

With the ends of the idle check, an idle source waits for what the others produced after it:

>>> merge = EventTimeMerge(["ev:0", "ev:1"])
>>> merge.watermark("ev:0", None, idle=True, ends={"ev:0": 0, "ev:1": 0})  # before anything was produced
>>> merge.add("ev:1", 20.0, "b", offset=0); merge.watermark("ev:1", 20.0, idle=False, offset=0); merge.release()
[]
[]
>>> merge.watermark("ev:0", None, idle=True, ends={"ev:0": 0, "ev:1": 1}); merge.release()  # still idle after b
['b']

Records with offsets wait for a watermark that vouches for them; a re-forward replaces what was queued:

>>> merge = EventTimeMerge(["ev:0"])
>>> merge.add("ev:0", 10.0, "a", offset=5); merge.add("ev:0", 11.0, "b", offset=6); merge.release()
[]
[]
[]
>>> merge.add("ev:0", 10.0, "a again", offset=5)  # the ingest restarted: 5 and 6 come again
['a', 'b']
>>> merge.watermark("ev:0", 10.0, idle=False, offset=5); merge.release()
['a again']
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

__all__ = ["WATERMARK_HEADER", "EventTimeMerge", "Mark", "parse_watermark", "watermark_header"]

T = TypeVar("T")
_MAX_NOTES = 1024
#: the header that makes a record of the internal topic a watermark (its value is empty)
WATERMARK_HEADER = "burnguard-watermark"


class Mark(NamedTuple):
    """What a watermark says of one source."""

    #: the highest event time read from it (``None``: none yet)
    ts: float | None
    #: read to its end
    idle: bool
    #: the highest source offset the ingest has forwarded (``None``: none, or not told)
    offset: int | None = None
    #: with ``idle``: the end offset of every source when it was found idle (``None``: not told)
    ends: dict[str, int] | None = None


def watermark_header(sources: Mapping[str, Mark | tuple[Any, ...]]) -> bytes:
    """The header of a watermark record: a :class:`Mark` per source (``"topic:partition"``).

    >>> marks = parse_watermark(watermark_header({"ev:0": Mark(1793613600.25, False, 7), "ev:1": (None, True)}))
    >>> marks["ev:0"], marks["ev:1"]
    (Mark(ts=1793613600.25, idle=False, offset=7, ends=None), Mark(ts=None, idle=True, offset=None, ends=None))
    """
    return orjson.dumps({name: list(Mark(*mark)) for name, mark in sources.items()})


def parse_watermark(value: bytes) -> dict[str, Mark]:
    """The sources of :func:`watermark_header` (an unreadable header or entry counts as none)."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(obj, dict):
        return {}
    out: dict[str, Mark] = {}
    for name, entry in obj.items():
        if not isinstance(entry, list) or not 2 <= len(entry) <= 4:
            continue
        ts, idle, offset, ends = [*entry, None, None][:4]
        out[str(name)] = Mark(
            float(ts) if isinstance(ts, int | float) else None,
            bool(idle),
            offset if isinstance(offset, int) else None,
            {str(k): v for k, v in ends.items() if isinstance(v, int)} if isinstance(ends, dict) else None,
        )
    return out


@dataclass(slots=True)
class _Source(Generic[T]):
    index: int
    #: (event time, record, source offset or -1 when not told), in the source's own order
    queue: deque[tuple[float, T, int]] = field(default_factory=deque)
    #: the highest source offset a watermark vouched for: every record up to it is on the broker
    vouched: int = -1
    #: every record this source sends from now on has at least this event time (epoch s)
    frontier: float = -math.inf
    #: read to its end by the ingest, and nothing received since
    idle: bool = False
    #: with ``idle``: every source's end offset when it was found idle (``None``: not told)
    ends: dict[str, int] | None = None
    #: (source offset, frontier) as records and watermarks told it, offsets ascending
    offsets: list[int] = field(default_factory=list)
    frontiers: list[float] = field(default_factory=list)

    def note(self, offset: int | None) -> None:
        """Remember the frontier reached at source offset ``offset``."""
        if offset is None or (self.offsets and offset <= self.offsets[-1]):
            return
        if len(self.offsets) >= _MAX_NOTES:  # the oldest half: idle checks look at recent ends only
            del self.offsets[: _MAX_NOTES // 2], self.frontiers[: _MAX_NOTES // 2]
        self.offsets.append(offset)
        self.frontiers.append(self.frontier)

    def rewind(self, offset: int) -> None:
        """The ingest forwards again from source offset ``offset``: what the source had told from
        there on — its frontier, the offsets vouched for — is told again by the new copies."""
        i = bisect.bisect_left(self.offsets, offset)
        self.frontier = self.frontiers[i - 1] if i else -math.inf
        del self.offsets[i:], self.frontiers[i:]
        if self.queue:
            self.frontier = max(self.frontier, max(ts for ts, _, _ in self.queue))
        self.vouched = min(self.vouched, offset - 1)

    def frontier_below(self, end: int) -> float:
        """The frontier it had reached with its records below source offset ``end`` (``-inf``: unknown)."""
        i = bisect.bisect_left(self.offsets, end)
        return self.frontiers[i - 1] if i else -math.inf


class EventTimeMerge(Generic[T]):
    """Records of several sources, released in event-time order (see the module docstring).

    ``sources`` names every source that may send (``"topic:partition"``); until each has sent a
    record or a watermark, nothing is released. A source not named is added when it first sends.
    ``max_held`` bounds memory: past it, the oldest record leaves without waiting (``forced``
    counts them) — order is then no longer guaranteed, which is logged by the caller.
    """

    def __init__(self, sources: Iterable[str], max_held: int = 50_000) -> None:
        self.max_held = max_held
        self.held = 0
        self.forced = 0
        self._sources: dict[str, _Source[T]] = {}
        self._by_index: list[_Source[T]] = []
        self._heads: list[tuple[float, int]] = []  # (event time, source index) of each non-empty queue's head
        for name in sorted(sources):
            self._source(name)

    def _source(self, name: str) -> _Source[T]:
        src = self._sources.get(name)
        if src is None:
            src = self._sources[name] = _Source(len(self._by_index))
            self._by_index.append(src)
        return src

    def add(self, source: str, ts: float, item: T, offset: int | None = None) -> list[T]:
        """A record of ``source`` with event time ``ts`` (epoch s) and source offset ``offset``, in
        the source's own order; returns the queued records it replaces (a re-forward: see the module
        docstring), which the caller forgets."""
        src = self._source(source)
        src.idle = False
        src.ends = None
        dropped: list[T] = []
        at = -1 if offset is None else offset
        if offset is not None and src.queue and src.queue[-1][2] >= offset:
            while src.queue and src.queue[-1][2] >= offset:
                dropped.append(src.queue.pop()[1])
            dropped.reverse()
            self.held -= len(dropped)
            src.rewind(offset)
            self._heads = [h for h in self._heads if h[1] != src.index]
            heapq.heapify(self._heads)
            if src.queue:
                heapq.heappush(self._heads, (src.queue[0][0], src.index))
        if not src.queue:
            heapq.heappush(self._heads, (ts, src.index))
        src.queue.append((ts, item, at))
        self.held += 1
        if ts > src.frontier:
            src.frontier = ts
        src.note(offset)
        return dropped

    def watermark(
        self, source: str, ts: float | None, idle: bool, offset: int | None = None, ends: dict[str, int] | None = None
    ) -> None:
        """``source`` has been read up to event time ``ts`` (``None``: nothing read yet) and source
        offset ``offset``; ``idle``: read to its end for now, when every source ended at ``ends``."""
        src = self._source(source)
        if ts is not None and ts > src.frontier:
            src.frontier = ts
        src.note(offset)
        if offset is not None and offset > src.vouched:
            src.vouched = offset
        src.idle = idle
        src.ends = ends if idle else None

    def _limit(self, src: _Source[T]) -> tuple[float, float]:
        """The smallest ``(event time, source index)`` a record ``src`` has not sent yet may have, as
        far as the merge waits for it (``inf``: it holds nobody back); only for a source with nothing
        queued. An idle source's records come after all that the others sent below its ends."""
        if not src.idle:
            return (src.frontier, src.index)
        if src.ends is None:
            return (math.inf, math.inf)
        reached = src.frontier  # what the other sources had reached below their ends at the idle check
        for name, end in src.ends.items():
            other = self._sources.get(name)
            if other is not None and other is not src:
                reached = max(reached, other.frontier_below(end))
        return (reached, math.inf)

    def _bound(self) -> tuple[float, float]:
        """The smallest ``(event time, source index)`` a record not yet received may have."""
        bound: tuple[float, float] = (math.inf, math.inf)
        for src in self._by_index:
            if not src.queue:
                bound = min(bound, self._limit(src))
        return bound

    def release(self) -> list[T]:
        """The records that can no longer be preceded by another, in ``(event time, source)`` order."""
        out: list[T] = []
        heads = self._heads
        bound = self._bound()
        while heads:
            head = heads[0]
            src = self._by_index[head[1]]
            if head >= bound or src.queue[0][2] > src.vouched:
                if self.held <= self.max_held:
                    break
                self.forced += 1
            heapq.heappop(heads)
            out.append(src.queue.popleft()[1])
            self.held -= 1
            if src.queue:
                heapq.heappush(heads, (src.queue[0][0], head[1]))
            else:
                bound = min(bound, self._limit(src))
        return out

    def reached(self) -> float:
        """Event time every source has reached: each record before it has been released, and no
        source can still send one (``-inf`` while a source has not been heard of)."""
        reached = math.inf
        newest = -math.inf
        for src in self._by_index:
            newest = max(newest, src.frontier)
            reached = min(reached, src.queue[0][0] if src.queue else self._limit(src)[0])
        return newest if reached == math.inf else reached

    def pending(self) -> Iterable[T]:
        """The oldest held record of each source (the caller's acknowledgements wait for them)."""
        return (src.queue[0][1] for src in self._by_index if src.queue)
