"""The engine's event time: an :class:`~detectors.event_clock.EventClock`, the events it holds
ahead of the stream, and the periodic ticks that event time drives.

Mixed into :class:`~detectors.engine.Engine`, so ``burnguard replay``, the demo and the worker's
engines follow one rule: an event far ahead of the stream waits for others to confirm the jump
(else it is rejected, with the reason, and handed to the caller by :meth:`take_rejected`), an event
far behind is rejected at once, and only events taken in move event time (``max_ts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from detectors.event_clock import BEHIND, NOW, EventClock
from schemas.events import CostEvent

if TYPE_CHECKING:
    from detectors.config import BurnguardConfig
    from schemas.anomaly import Anomaly

__all__ = ["EngineTime", "EventTimeRejected", "HeldRejection"]


class EventTimeRejected(ValueError):
    """An event whose time the stream cannot take (its ``args[0]`` is the reason a person reads)."""


#: a held event given up: (its JSON, the caller's tag — a line number, a source offset —, the reason)
HeldRejection = tuple[str, Any, str]


class EngineTime:
    """Event time for :class:`~detectors.engine.Engine` (see the module docstring)."""

    config: BurnguardConfig
    tick_s: float
    _next_tick: float
    event_clock: EventClock

    def _fold(self, event: CostEvent) -> list[Anomaly]:
        raise NotImplementedError

    def _tick(self, now: float, out: list[Anomaly]) -> None:
        raise NotImplementedError

    def _new_event_clock(self) -> EventClock:
        c = self.config
        return EventClock(
            max_ahead_s=c.max_ahead_s,
            max_behind_s=c.behind_s,
            confirm_events=c.confirm_events,
            settle_events=c.settle_events,
            max_held=c.max_held_events,
        )

    @property
    def max_ts(self) -> float:
        """The stream's event time, epoch s: the highest time of the events taken in (0: none yet)."""
        return self.event_clock.now

    @max_ts.setter
    def max_ts(self, value: float) -> None:
        self.event_clock.now = value

    def process(self, event: CostEvent, *, raw: bytes | str | None = None, tag: Any = None) -> list[Anomaly]:
        """Fold one validated event into the state and return what it (or the held events it
        confirmed) triggered. ``raw``: its original JSON, kept while it is held; ``tag``: JSON-able,
        handed back with it if it is rejected later. Raises :class:`EventTimeRejected` for an event
        far behind the stream."""
        clock = self.event_clock
        verdict = clock.admit(event.ts)
        if verdict == NOW:
            out = self._fold(event)
            return out + self._take(clock.caught_up()) if clock.held else out
        if verdict == BEHIND:
            raise EventTimeRejected(clock.behind_reason(event.ts))
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if text is None:
            text = event.model_dump_json(by_alias=True, exclude_none=True)
        return self._take(clock.hold(event.ts, [text, tag], len(text)))

    def _take(self, items: list[Any]) -> list[Anomaly]:
        out: list[Anomaly] = []
        for text, tag in items:
            try:
                event = CostEvent.model_validate_json(text)
            except ValidationError as exc:  # cannot happen to what was valid when held; never lost
                self.event_clock.give_up([text, tag], f"held event no longer valid: {exc}")
                continue
            self.event_clock.taken(event.ts)
            out += self._fold(event)
        return out

    def take_rejected(self) -> list[HeldRejection]:
        """Held events rejected since the last call: the caller dead-letters each with its reason."""
        return [(r.item[0], r.item[1], r.reason) for r in self.event_clock.take_rejected()]

    @property
    def held_events(self) -> int:
        """Events held ahead of the stream's event time, waiting for a confirmation."""
        return self.event_clock.held

    def advance_to(self, now: float) -> list[Anomaly]:
        """Let event time pass to ``now`` (trusted: the end of a replay, an idle stream's watermark):
        held events no longer ahead of it are processed first, in arrival order."""
        out = self._take(self.event_clock.settle(now))
        self.max_ts = max(self.max_ts, now)
        return out + self._tick_if_due()

    def finish(self) -> list[Anomaly]:
        """The stream ended (a replay's last line): held events confirmed by then are processed,
        the others rejected (see :meth:`take_rejected`)."""
        return self._take(self.event_clock.close())

    def _tick_if_due(self) -> list[Anomaly]:
        out: list[Anomaly] = []
        watermark = self.max_ts - self.config.lateness_s
        if watermark < self._next_tick:
            return out
        if self._next_tick == 0.0 or watermark - self._next_tick > 86_400:
            # first tick, or a jump of more than a day: one tick, not thousands. Ticks fall on whole
            # multiples of tick_s, so every engine (replay, each Kafka partition) ticks at the same times
            self._next_tick = watermark - watermark % self.tick_s
        while self._next_tick <= watermark:
            self._tick(self._next_tick, out)
            self._next_tick += self.tick_s
        return out
