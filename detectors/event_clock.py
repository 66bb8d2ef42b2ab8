"""Event time that no single event can move: the rule ``burnguard replay``, the worker's engines and
the ingest's source frontiers all follow.

The stream's event time (``now``, epoch s) is the highest time of the events it has taken in. An
event more than ``max_ahead_s`` ahead of it is not taken in yet but *held* in a *candidate*: the
held events that lie within ``max_ahead_s`` of one another. A candidate is *confirmed* — its
events are processed, in arrival order, and time moves to them — when the events held at or after
its time number at least ``confirm_events`` and more than the events the stream processed
meanwhile: the stream moved there (a weekend's silence, then Monday; a file of two days). It is
*rejected*, with a reason, once ``settle_events`` events were processed while it waited: the stream
went on without it (a wrong clock). At the very start (``now`` unknown) every event is held until
one candidate of its own holds ``confirm_events`` events, so a first event from 2099 (or 2001) does
not set the time. An event more than ``max_behind_s`` behind ``now`` is rejected at once: its task
would have expired already.

>>> clock = EventClock(max_ahead_s=600, max_behind_s=86_400, confirm_events=3, settle_events=4)
>>> [clock.admit(t) for t in (1000.0, 1010.0)], clock.now  # the start: held until three agree
([1, 1], 0.0)
>>> clock.hold(1000.0, "a"), clock.hold(1010.0, "b"), clock.admit(1020.0), clock.hold(1020.0, "c")
([], [], 1, ['a', 'b', 'c'])
>>> for ts in (1000.0, 1010.0, 1020.0): clock.taken(ts)
>>> clock.admit(4e9), clock.hold(4e9, "2099"), [clock.admit(1030.0 + i) for i in range(4)]
(1, [], [0, 0, 0, 0])
>>> clock.now, [(r.item, r.reason[:35]) for r in clock.take_rejected()]
(1033.0, [('2099', 'event time 2096-10-02T07:06:40.000Z')])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.timefmt import format_ts

__all__ = ["AHEAD", "BEHIND", "NOW", "EventClock", "Rejected", "span"]

#: :meth:`EventClock.admit` verdicts: take the event in now, hold it, reject it (too far behind)
NOW, AHEAD, BEHIND = 0, 1, 2


def span(seconds: float) -> str:
    """A duration a person reads: ``'12 s'``, ``'45.0 min'``, ``'26.0 h'``, ``'73.0 years'``.

    >>> span(12), span(2700), span(93_600), span(2.3e9)
    ('12 s', '45.0 min', '26.0 h', '72.9 years')
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 365 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / (365.25 * 86_400):.1f} years"


@dataclass(slots=True)
class Rejected:
    """A held event given up, with the reason (the caller dead-letters ``item``)."""

    item: Any
    reason: str


@dataclass(slots=True)
class _Held:
    seq: int  # arrival order
    ts: float  # event time, epoch s
    at: int  # how many events the stream had processed when it arrived
    size: int  # bytes it costs a checkpoint
    item: Any


@dataclass(slots=True)
class _Candidate:
    low: float
    high: float
    held: list[_Held] = field(default_factory=list)

    @property
    def since(self) -> int:
        return min(h.at for h in self.held)


class EventClock:
    """The stream's event time and the events held ahead of it (see the module docstring).

    ``max_ahead_s``/``max_behind_s``: seconds of event time; ``confirm_events``: held events that
    confirm a jump; ``settle_events``: events processed before a held one is given up;
    ``max_held``/``max_held_bytes``: bounds on what waits (past them the oldest is given up).
    ``item``: whatever the caller needs back (the engine holds the event's JSON and its source).
    """

    def __init__(
        self,
        *,
        max_ahead_s: float,
        max_behind_s: float,
        confirm_events: int = 3,
        settle_events: int = 200,
        max_held: int = 256,
        max_held_bytes: int = 256 * 1024,
    ) -> None:
        self.max_ahead_s = max_ahead_s
        self.max_behind_s = max_behind_s
        self.confirm_events = confirm_events
        self.settle_events = settle_events
        self.max_held = max_held
        self.max_held_bytes = max_held_bytes
        #: the stream's event time, epoch s (``0.0``: not known yet)
        self.now = 0.0
        #: events taken in so far (the held ones' clock)
        self.processed = 0
        self._seq = 0
        self._held_bytes = 0
        self._candidates: list[_Candidate] = []  # by time
        self._rejected: list[Rejected] = []

    # -- the hot path ----------------------------------------------------------------------------
    def verdict(self, ts: float) -> int:
        """:data:`NOW`, :data:`AHEAD` or :data:`BEHIND` for an event at ``ts``, changing nothing."""
        now = self.now
        if now == 0.0 or ts > now + self.max_ahead_s:
            return AHEAD
        return BEHIND if ts < now - self.max_behind_s else NOW

    def admit(self, ts: float) -> int:
        """:meth:`verdict`; on :data:`NOW` the event counts as taken in (:meth:`taken`)."""
        verdict = self.verdict(ts)
        if verdict == NOW:
            self.taken(ts)
        return verdict

    def taken(self, ts: float) -> None:
        """An event at ``ts`` was taken in (admitted, or released by :meth:`hold` or :meth:`settle`)."""
        if ts > self.now:
            self.now = ts
        self.processed += 1
        if self._candidates and self.processed - min(c.since for c in self._candidates) >= self.settle_events:
            self._give_up_settled()

    def caught_up(self) -> list[Any]:
        """The held events the stream has reached since they arrived (no longer ahead of ``now``), in
        arrival order: the caller takes each in. A stream far out of order (within ``max_behind_s``)
        reaches its held events this way instead of giving them up."""
        if not self._candidates or self.now == 0.0:
            return []
        if min(c.low for c in self._candidates) > self.now + self.max_ahead_s:
            return []
        return self.settle(self.now)

    def behind_reason(self, ts: float) -> str:
        return (
            f"event time {format_ts(ts)} is {span(self.now - ts)} behind the stream's event time "
            f"{format_ts(self.now)}, more than max_behind_s = {self.max_behind_s:.0f} s: too late to count "
            "(its task would have expired; a late report within that bound still counts)"
        )

    # -- held events ----------------------------------------------------------------------------
    @property
    def held(self) -> int:
        return sum(len(c.held) for c in self._candidates)

    def hold(self, ts: float, item: Any, size: int = 0) -> list[Any]:
        """Hold an event :meth:`admit` found :data:`AHEAD` (``size``: the bytes ``item`` costs a
        checkpoint); returns the held items now confirmed (this one among them, maybe), in arrival
        order: the caller takes each in (:meth:`taken`)."""
        self._seq += 1
        self._held_bytes += size
        held = _Held(self._seq, ts, self.processed, size, item)
        cands = self._candidates
        near = [c for c in cands if c.low - self.max_ahead_s <= ts <= c.high + self.max_ahead_s]
        if near:  # this event may join two candidates into one
            joined = near[0]
            for other in near[1:]:
                joined.held += other.held
                joined.low, joined.high = min(joined.low, other.low), max(joined.high, other.high)
                cands.remove(other)
            joined.held.append(held)
            joined.low, joined.high = min(joined.low, ts), max(joined.high, ts)
        else:
            cands.append(_Candidate(ts, ts, [held]))
            cands.sort(key=lambda c: c.low)
        while self.held > self.max_held or self._held_bytes > self.max_held_bytes:
            self._give_up_oldest()
        return self._confirm()

    def _confirm(self) -> list[Any]:
        out: list[_Held] = []
        while self._candidates:
            if self.now == 0.0:
                first = max(self._candidates, key=lambda c: len(c.held))
                if len(first.held) < self.confirm_events:
                    break
            else:
                first = self._candidates[0]
                waiting = self.held  # every held event lies at or after the first candidate
                if waiting < self.confirm_events or waiting <= self.processed - first.since:
                    break
            out += self._release(first, max(self.now, first.high))
        return [h.item for h in sorted(out, key=lambda h: h.seq)]

    def _release(self, cand: _Candidate, now: float) -> list[_Held]:
        """``cand``'s events, and those of every candidate no longer ahead of ``now``; the ones then
        too far behind are given up."""
        self._candidates.remove(cand)
        out = list(cand.held)
        for other in list(self._candidates):
            if other.low <= now + self.max_ahead_s:
                self._candidates.remove(other)
                for h in other.held:
                    if h.ts < now - self.max_behind_s:
                        self._held_bytes -= h.size
                        self._reject(h, self._behind_of(h.ts, now))
                    else:
                        out.append(h)
        for h in out:
            self._held_bytes -= h.size
        if self.now == 0.0:
            self.now = min(h.ts for h in cand.held)  # the start: the stream's time is now known
        return out

    def settle(self, now: float) -> list[Any]:
        """Trusted event time ``now`` (the end of a replay, an idle stream's watermark): the held
        events no longer ahead of it are released, in arrival order (those too far behind given up)."""
        out: list[_Held] = []
        top = max(now, self.now)
        for cand in list(self._candidates):
            if cand in self._candidates and cand.low <= top + self.max_ahead_s:
                out += self._release(cand, max(top, cand.high))
        for h in sorted(out, key=lambda h: h.seq):
            if h.ts < top - self.max_behind_s:
                out.remove(h)
                self._reject(h, self._behind_of(h.ts, top))
        return [h.item for h in sorted(out, key=lambda h: h.seq)]

    def close(self) -> list[Any]:
        """The stream ended: a stream that never reached ``confirm_events`` takes its largest
        candidate as its time; what else waits is released if confirmed, or given up."""
        out: list[Any] = []
        top = self.now
        if self.now == 0.0 and self._candidates:
            first = max(self._candidates, key=lambda c: len(c.held))
            out += [h.item for h in sorted(self._release(first, first.high), key=lambda h: h.seq)]
            top = first.high
            out += self._confirm()
        for cand in list(self._candidates):
            for h in cand.held:
                self._reject(
                    h,
                    f"event time {format_ts(h.ts)} is {span(h.ts - top)} ahead of the stream's event time "
                    f"{format_ts(top)} (more than max_ahead_s = {self.max_ahead_s:.0f} s), and the stream "
                    f"ended before {self.confirm_events} events (confirm_events) confirmed that time",
                )
        self._candidates.clear()
        self._held_bytes = 0
        return out

    def give_up(self, item: Any, reason: str) -> None:
        """Reject an item the caller cannot take in after all (it comes back by :meth:`take_rejected`)."""
        self._rejected.append(Rejected(item, reason))

    def take_rejected(self) -> list[Rejected]:
        """The held events given up since the last call (the caller dead-letters them)."""
        out, self._rejected = self._rejected, []
        return out

    def _give_up_settled(self) -> None:
        reach = self.now + self.max_ahead_s  # a candidate the stream has reached is released, not given up
        while True:
            settled = [
                c for c in self._candidates if self.processed - c.since >= self.settle_events and c.low > reach
            ]
            if not settled:
                return
            cand = min(settled, key=lambda c: c.since)
            self._candidates.remove(cand)
            for h in cand.held:
                self._held_bytes -= h.size
                self._reject(
                    h,
                    f"event time {format_ts(h.ts)} is {span(h.ts - self.now)} ahead of the stream's event time "
                    f"{format_ts(self.now)} (more than max_ahead_s = {self.max_ahead_s:.0f} s), and "
                    f"{self.processed - h.at} events since (settle_events = {self.settle_events}) kept the "
                    "stream where it was: a wrong clock, not a jump of the stream",
                )

    def _give_up_oldest(self) -> None:
        cand = min(self._candidates, key=lambda c: c.since)
        h = min(cand.held, key=lambda x: x.seq)
        cand.held.remove(h)
        if not cand.held:
            self._candidates.remove(cand)
        self._held_bytes -= h.size
        self._reject(
            h,
            f"event time {format_ts(h.ts)} is ahead of the stream's event time "
            f"{format_ts(self.now) if self.now else '(not known yet)'} by more than max_ahead_s = "
            f"{self.max_ahead_s:.0f} s, and more than max_held_events = {self.max_held} events (or "
            f"{self.max_held_bytes} bytes) waited ahead of the stream: the oldest is given up",
        )

    def _behind_of(self, ts: float, now: float) -> str:
        return (
            f"event time {format_ts(ts)} is {span(now - ts)} behind the stream's event time {format_ts(now)}, "
            f"more than max_behind_s = {self.max_behind_s:.0f} s: too late to count "
            "(its task would have expired; a late report within that bound still counts)"
        )

    def _reject(self, h: _Held, reason: str) -> None:
        self._rejected.append(Rejected(h.item, reason))

    # -- hand-over -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able data; held items must be JSON-able themselves."""
        return {
            "v": 1,
            "now": self.now,
            "processed": self.processed,
            "seq": self._seq,
            "held": [[h.seq, h.ts, h.at, h.size, h.item] for c in self._candidates for h in c.held],
        }

    def restore(self, state: dict[str, Any] | None) -> None:
        if not state:
            return
        if state.get("v") != 1:
            raise ValueError(f"event clock snapshot version {state.get('v')!r} is not 1")
        self.now, self.processed, self._seq = float(state["now"]), int(state["processed"]), int(state["seq"])
        self._candidates, self._held_bytes = [], 0
        for seq, ts, at, size, item in sorted(state["held"], key=lambda row: row[1]):
            cand = self._candidates[-1] if self._candidates else None
            held = _Held(int(seq), float(ts), int(at), int(size), item)
            if cand is not None and ts <= cand.high + self.max_ahead_s:
                cand.held.append(held)
                cand.high = max(cand.high, ts)
            else:
                self._candidates.append(_Candidate(ts, ts, [held]))
            self._held_bytes += held.size
