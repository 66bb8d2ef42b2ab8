"""Test helpers for the task-budget, retry-rate and burn-rate detectors.

- :func:`ev` writes one contract event (a dict, ``ts`` in epoch seconds);
- :class:`Drive` runs one detector the way the engine does — fold the event into the root's
  :class:`TaskState`, ``on_event``, ``on_task_finished`` on the root's finish, ``on_tick`` every
  60 s of event time — and records every signal with the time it came out;
- :func:`real_trace_anomalies` runs the whole engine once over the real fleet trace.
"""

from __future__ import annotations

import functools
import gzip
import itertools
from collections.abc import Iterable
from typing import Any

from detectors.base import Detector, Signal
from detectors.engine import Engine
from detectors.ledger import TaskState
from schemas.anomaly import Anomaly
from schemas.events import CostEvent
from tests.paths import REAL_TRACE

__all__ = ["T0", "Drive", "ev", "firing", "fold", "kinds", "real_trace_anomalies", "step"]

#: Monday 2026-11-02 10:00:00 UTC (a multiple of 600 s and of 300 s), epoch seconds.
T0 = 1_793_613_600.0
_ids = itertools.count()


def ev(kind: str, task: str, ts: float, **fields: Any) -> dict[str, Any]:
    """One contract event of workflow ``wf`` (team ``team-a``, tenant ``acme``) unless overridden."""
    out: dict[str, Any] = {"event_id": f"b{next(_ids)}", "ts": ts, "kind": kind, "tenant": "acme",
                           "team": "team-a", "workflow": "wf", "task_id": task}
    out.update(fields)
    return out


def step(task: str, ts: float, cost: float = 0.01, **fields: Any) -> dict[str, Any]:
    """A model step (``gpt-4o-mini`` unless ``category`` / ``name`` say otherwise)."""
    return ev("step", task, ts, **{"category": "model", "name": "gpt-4o-mini", "cost_usd": cost, **fields})


def fold(events: Iterable[dict[str, Any]]) -> TaskState:
    """The root task's state after ``events`` (all of one root), as the engine builds it."""
    task: TaskState | None = None
    for raw in events:
        event = CostEvent.model_validate(raw)
        task = task or TaskState.open(event)
        task.apply(event, event.cost_usd)
    assert task is not None
    return task


class Drive:
    """Feeds events to one detector like the engine does and keeps every signal it returns."""

    def __init__(self, detector: Detector, tick_s: float = 60.0) -> None:
        self.detector = detector
        self.tick_s = tick_s
        self.tasks: dict[str, TaskState] = {}
        self.signals: list[Signal] = []
        self.next_tick = 0.0

    def feed(self, events: Iterable[dict[str, Any]]) -> list[Signal]:
        """Process ``events`` in order; returns the signals they (and the ticks they passed) produced."""
        start = len(self.signals)
        for raw in events:
            event = CostEvent.model_validate(raw)
            self.tick_to(event.ts)
            task = self.tasks.get(event.root)
            if task is None:
                task = self.tasks[event.root] = TaskState.open(event)
            task.apply(event, event.cost_usd)
            self._keep(self.detector.on_event(event, task), task)
            if task.finished:
                self._keep(self.detector.on_task_finished(task), task)
                del self.tasks[event.root]
        return self.signals[start:]

    def tick_to(self, now: float) -> list[Signal]:
        """Let event time pass to ``now``, ticking every ``tick_s``."""
        start = len(self.signals)
        if not self.next_tick:
            self.next_tick = now
        while self.next_tick <= now:
            self.signals.extend(self.detector.on_tick(self.next_tick, list(self.tasks.values())))
            self.next_tick += self.tick_s
        return self.signals[start:]

    def _keep(self, sig: Signal | None, task: TaskState) -> None:
        if sig is None:
            return
        self.signals.append(sig)
        if sig.firing and sig.scope.get("root_task_id") == task.root_task_id:  # as the engine does
            alerted = task.alerted if task.alerted is not None else {}
            alerted[sig.detector] = max(alerted.get(sig.detector, -1), sig.severity.rank)
            task.alerted = alerted


def firing(signals: Iterable[Signal]) -> list[Signal]:
    return [s for s in signals if s.firing]


@functools.lru_cache(maxsize=1)
def real_trace_anomalies() -> tuple[tuple[Anomaly, ...], int]:
    """Every anomaly the engine (default config) raises over the real fleet trace, and how many
    events it rejected."""
    engine = Engine(clock=lambda: T0)  # detected_at is wall-clock; any fixed valid time
    out: list[Anomaly] = []
    rejected = 0
    with gzip.open(REAL_TRACE, "rb") as fh:
        for line in fh:
            found, reason = engine.process_bytes(line)
            rejected += reason is not None
            out += found
    out += engine.advance_to(engine.max_ts + 2 * 3600)
    return tuple(out), rejected


def kinds(signals: Iterable[Signal]) -> list[tuple[bool, str]]:
    return [(s.firing, str(s.severity)) for s in signals]

