"""The alert pipeline's time when anomalies are read late: each at the time it was written.

The pipeline has no clock (:mod:`alerting.pipeline`): its caller says what ``now`` is. Live, that is
the wall clock. Anomalies read after a restart, a take-over or any lag must be taken in at the time
they were written, each after the timers that ran out before it — else the backlog is squeezed into
one instant, and an anomaly that fired and resolved while no alerter ran resolves inside its own
group_wait and is never notified (a kill nobody hears of). :class:`IntakeClock` keeps that time,
:func:`in_time_order` merges partitions by it, and :class:`CatchUp` says when the backlog is read
(then the timers run on the wall clock again).

>>> from alerting.config import AlertingConfig
>>> from alerting.pipeline import AlertPipeline
>>> from alerting.testing.anomalies import T0, make_anomaly, resolved
>>> pipeline = AlertPipeline(AlertingConfig.model_validate({"route": {"receiver": "console", "group_wait": 30}}))
>>> clock, kill = IntakeClock(), make_anomaly(severity="critical", action="kill")
>>> wall = T0 + 3600  # read an hour late: fired at T0, resolved 60 s later
>>> pipeline.ingest(kill, clock.at(T0, wall))
True
>>> out = clock.advance(pipeline, clock.at(T0 + 60, wall))  # the group_wait ended before the resolve
>>> pipeline.ingest(resolved(kill), clock.now)
True
>>> out += clock.advance(pipeline, wall)
>>> [(n.reason, n.created_at - T0) for n in out]
[('new', 30.0), ('resolved', 330.0)]
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol, TypeVar

from alerting.notifier import Notification
from alerting.pipeline import AlertPipeline

__all__ = ["CatchUp", "IntakeClock", "TimedRecord", "in_time_order"]


class TimedRecord(Protocol):
    """What :func:`in_time_order` reads of a record (an aiokafka ``ConsumerRecord`` has it)."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...  # milliseconds; negative when unknown


R = TypeVar("R", bound=TimedRecord)


class IntakeClock:
    """The pipeline's time (epoch seconds): it never goes back, and never passes the wall clock."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def at(self, written: float | None, wall: float) -> float:
        """The time to take in a record written at ``written`` (``None``: unknown, taken as ``wall``):
        when it was written, but not before the last one nor after the wall clock. Does not move."""
        return max(self.now, min(wall if written is None else written, wall))

    def advance(self, pipeline: AlertPipeline, to: float) -> list[Notification]:
        """Run the pipeline's timers up to ``to``, each at the time it was due (as they would have
        run live), and move there; the notifications released, in order."""
        out: list[Notification] = []
        while (due := pipeline.next_flush_at()) is not None and due <= to:
            self.now = max(self.now, due)  # a flush moves every group it evaluates past this time
            out += pipeline.flush(self.now)
        self.now = max(self.now, to)
        return out


def in_time_order(batches: Iterable[Sequence[R]]) -> Iterator[R]:
    """The records of several partitions merged by the time they were written, each partition's own
    order kept (an anomaly's states share a partition: their order there is theirs). A record with
    no timestamp, or one earlier than its partition's last, goes at its partition's running time.

    >>> from types import SimpleNamespace as Rec
    >>> a = [Rec(partition=0, offset=0, timestamp=1000), Rec(partition=0, offset=1, timestamp=900)]
    >>> b = [Rec(partition=1, offset=7, timestamp=950), Rec(partition=1, offset=8, timestamp=-1)]
    >>> [(r.partition, r.offset) for r in in_time_order([a, b])]
    [(1, 7), (1, 8), (0, 0), (0, 1)]
    """
    keyed = []
    for records in batches:
        running, seq = -math.inf, []
        for r in records:
            if r.timestamp is not None and r.timestamp >= 0:
                running = max(running, float(r.timestamp))
            seq.append((running, r.partition, r.offset, r))
        keyed.append(seq)
    for *_, record in heapq.merge(*keyed, key=lambda item: item[:3]):
        yield record


class CatchUp:
    """Whether a reader is still behind the records written before it started reading.

    Behind while a partition's position is short of the end offset it had at the start or of the
    high watermark a fetch has reported since. Then the pipeline's time stays the last record's; once
    caught up it is the wall clock. If no record comes for ``stall_s`` although the ends say more are
    there, the reader counts as caught up (``stalled``): alerting must not wait on a stuck fetch.

    >>> now = [0.0]
    >>> c = CatchUp(stall_s=5, clock=lambda: now[0])
    >>> c.start({0: 10, 1: 0})
    >>> c.behind({0: 4, 1: 0}, {}), c.behind({0: 10, 1: 0}, {0: 10}), c.behind({0: 10, 1: 0}, {0: 12})
    (True, False, True)
    >>> now[0] = 6.0
    >>> c.behind({0: 10, 1: 0}, {0: 12}), c.stalled
    (False, True)
    """

    def __init__(self, stall_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self.clock = clock
        self.lagging = False  # the last answer of behind()
        self.stalled = False
        self._ends: dict[int, int] = {}
        self._last = clock()

    def start(self, ends: Mapping[int, int]) -> None:
        """Reading starts (a take-over): the partitions' end offsets now."""
        self._ends = dict(ends)
        self._last = self.clock()
        self.lagging = bool(self._ends)

    def took(self) -> None:
        """A record was read."""
        self._last = self.clock()

    def behind(self, positions: Mapping[int, int], highwaters: Mapping[int, int | None]) -> bool:
        """``positions``: partition -> next offset to read; ``highwaters``: from the last fetches."""
        parts = set(positions) | set(self._ends)
        lag = any(positions.get(p, 0) < max(self._ends.get(p, 0), highwaters.get(p) or 0) for p in parts)
        if not lag:
            self._ends.clear()
        self.stalled = lag and self.clock() - self._last > self.stall_s
        self.lagging = lag and not self.stalled
        return self.lagging
