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
*idle* (read to its end) holds nobody back until it sends again.

Sources are assumed to be in event-time order (agents send a task's events as they happen). A
record earlier than its source's frontier is *late*; it leaves as soon as it heads its queue.

>>> merge = EventTimeMerge(["ev:0", "ev:1"])
>>> merge.add("ev:0", 10.0, "a"); merge.add("ev:0", 30.0, "c"); merge.release()
[]
>>> merge.add("ev:1", 20.0, "b"); merge.release()  # ev:1 has reached 20: a and b cannot be preceded
['a', 'b']
>>> merge.watermark("ev:1", 40.0, idle=False); merge.release(), merge.reached()
(['c'], 30.0)
>>> merge.watermark("ev:0", None, idle=True); merge.reached()  # ev:0 read to its end: ev:1 decides
40.0
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import orjson

__all__ = ["WATERMARK_HEADER", "EventTimeMerge", "parse_watermark", "watermark_header"]

T = TypeVar("T")
#: the header that makes a record of the internal topic a watermark (its value is empty)
WATERMARK_HEADER = "burnguard-watermark"


def watermark_header(sources: Mapping[str, tuple[float | None, bool]]) -> bytes:
    """The header of a watermark record: per source (``"topic:partition"``), the highest event time
    read from it (``None``: none yet) and whether it is read to its end.

    >>> parse_watermark(watermark_header({"ev:0": (1793613600.25, False), "ev:1": (None, True)}))
    {'ev:0': (1793613600.25, False), 'ev:1': (None, True)}
    """
    return orjson.dumps({name: [ts, idle] for name, (ts, idle) in sources.items()})


def parse_watermark(value: bytes) -> dict[str, tuple[float | None, bool]]:
    """The sources of :func:`watermark_header` (an unreadable header counts as none)."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(obj, dict):
        return {}
    out: dict[str, tuple[float | None, bool]] = {}
    for name, entry in obj.items():
        if isinstance(entry, list) and len(entry) == 2:
            ts, idle = entry
            out[str(name)] = (float(ts) if isinstance(ts, int | float) else None, bool(idle))
    return out


@dataclass(slots=True)
class _Source(Generic[T]):
    index: int
    queue: deque[tuple[float, T]] = field(default_factory=deque)
    #: every record this source sends from now on has at least this event time (epoch s)
    frontier: float = -math.inf
    #: read to its end by the ingest, and nothing received since
    idle: bool = False


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

    def add(self, source: str, ts: float, item: T) -> None:
        """A record of ``source`` with event time ``ts`` (epoch s), in the source's own order."""
        src = self._source(source)
        src.idle = False
        if not src.queue:
            heapq.heappush(self._heads, (ts, src.index))
        src.queue.append((ts, item))
        self.held += 1
        if ts > src.frontier:
            src.frontier = ts

    def watermark(self, source: str, ts: float | None, idle: bool) -> None:
        """``source`` has been read up to event time ``ts`` (``None``: nothing read yet); ``idle``:
        read to its end for now."""
        src = self._source(source)
        if ts is not None and ts > src.frontier:
            src.frontier = ts
        src.idle = idle

    def _bound(self) -> tuple[float, int]:
        """The smallest ``(event time, source index)`` a record not yet received may have."""
        bound = (math.inf, -1)
        for src in self._by_index:
            if not src.queue and not src.idle and (src.frontier, src.index) < bound:
                bound = (src.frontier, src.index)
        return bound

    def release(self) -> list[T]:
        """The records that can no longer be preceded by another, in ``(event time, source)`` order."""
        out: list[T] = []
        heads = self._heads
        bound = self._bound()
        while heads:
            head = heads[0]
            if head >= bound:
                if self.held <= self.max_held:
                    break
                self.forced += 1
            heapq.heappop(heads)
            src = self._by_index[head[1]]
            out.append(src.queue.popleft()[1])
            self.held -= 1
            if src.queue:
                heapq.heappush(heads, (src.queue[0][0], head[1]))
            elif not src.idle and (src.frontier, src.index) < bound:
                bound = (src.frontier, src.index)
        return out

    def reached(self) -> float:
        """Event time every source has reached: each record before it has been released, and no
        source can still send one (``-inf`` while a source has not been heard of)."""
        reached = math.inf
        newest = -math.inf
        for src in self._by_index:
            newest = max(newest, src.frontier)
            if src.queue:
                reached = min(reached, src.queue[0][0])
            elif not src.idle:
                reached = min(reached, src.frontier)
        return newest if reached == math.inf else reached

    def pending(self) -> Iterable[T]:
        """The oldest held record of each source (the caller's acknowledgements wait for them)."""
        return (src.queue[0][1] for src in self._by_index if src.queue)
