"""Test helpers for the runaway, cost-shift, fan-out and stale detectors.

- :func:`task_events` writes the contract events (dicts, ``ts`` in epoch seconds) of one root task;
- :func:`fold` turns events into a :class:`TaskState` the way the engine does;
- :func:`replay` drives one detector per workflow over an event stream the way the engine does
  (fold, ``on_event``, ``on_task_finished`` on the root's finish, ``on_tick`` every 60 s of event
  time) and keeps the engine's episode bookkeeping, so a test can count what would be emitted;
- :func:`real_trace_run` replays the real fleet through the engine itself, once per session.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from detectors.base import Detector, Signal
from detectors.engine import Engine
from detectors.ledger import TaskState
from schemas.anomaly import Anomaly
from schemas.events import Category, CostEvent, EventKind
from tests.paths import REAL_TRACE

__all__ = [
    "REAL_TRACE",
    "T0",
    "Emitted",
    "ReplayResult",
    "drive",
    "fold",
    "normal_tasks",
    "read_trace",
    "real_trace_events",
    "real_trace_run",
    "replay",
    "round_trip",
    "task_events",
    "view",
]

#: Monday 2026-11-02 10:00 UTC, epoch seconds.
T0 = 1_793_613_600.0


def task_events(
    task_id: str,
    start: float,
    *,
    workflow: str = "wf",
    steps: int = 20,
    step_cost: float = 0.02,
    step_s: float = 10.0,
    ctx0: int = 2_000,
    ctx_step: int = 500,
    outcome: str | None = "success",
    subagents: int = 0,
    nested: bool = False,
    review_usd: float = 0.0,
    tenant: str = "acme",
    team: str = "team-a",
) -> list[dict[str, Any]]:
    """Events of one root task: start, ``subagents`` sub-agent starts (a chain when ``nested``),
    ``steps`` model steps ``step_s`` apart costing ``step_cost`` USD each with a prompt growing by
    ``ctx_step`` tokens, an optional human review, and a finish (none when ``outcome`` is None)."""
    base = {"tenant": tenant, "team": team, "workflow": workflow, "agent": "bot", "root_task_id": task_id}
    out: list[dict[str, Any]] = [{**base, "event_id": f"{task_id}#0", "ts": start, "kind": "task_started",
                                  "task_id": task_id}]
    parent = task_id
    for k in range(subagents):
        sub = f"{task_id}/sub{k}"
        out.append({**base, "event_id": f"{sub}#0", "ts": start + 0.5, "kind": "task_started", "task_id": sub,
                    "parent_task_id": parent})
        if nested:
            parent = sub
    for i in range(steps):
        out.append({**base, "event_id": f"{task_id}#s{i}", "ts": start + (i + 1) * step_s, "kind": "step",
                    "task_id": task_id, "category": "model", "name": "gpt-4o", "provider": "openai",
                    "input_tokens": ctx0 + i * ctx_step, "output_tokens": 100, "cost_usd": step_cost})
    end = start + (steps + 1) * step_s
    if review_usd:
        out.append({**base, "event_id": f"{task_id}#review", "ts": end, "kind": "step", "task_id": task_id,
                    "category": "human_review", "name": "reviewer", "cost_usd": review_usd})
    if outcome is not None:
        out.append({**base, "event_id": f"{task_id}#end", "ts": end, "kind": "task_finished",
                    "task_id": task_id, "outcome": outcome})
    return out


def normal_tasks(n: int, start: float = T0, *, prefix: str = "n", gap_s: float = 300.0,
                 **kw: Any) -> list[dict[str, Any]]:
    """``n`` ordinary completed tasks, one every ``gap_s`` seconds, 15-25 steps each (about $0.30-0.50
    at the default $0.02 a step, 2.5-4.5 minutes): a deterministic spread, not a constant."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        kw.setdefault("steps", 20)
        steps = kw["steps"] - 5 + (i * 7) % 11
        out += task_events(f"{prefix}{i}", start + i * gap_s, **{**kw, "steps": steps})
    return out


def drive(det: Detector, events: Iterable[dict[str, Any]]) -> list[Signal]:
    """Every signal ``det`` returns over ``events`` (all of one workflow), as the engine calls it."""
    return replay(events, lambda: det, detectors={}).signals


def round_trip(det: Detector, fresh: Detector) -> Detector:
    """``fresh`` restored from ``det``'s snapshot after a trip through JSON bytes (as a table holds it)."""
    fresh.restore(orjson.loads(orjson.dumps(det.snapshot())))
    return fresh


def view(signals: Iterable[Signal]) -> list[dict[str, Any]]:
    """Signals as plain data, for equality checks."""
    return [asdict(s) for s in signals]


def fold(events: Iterable[dict[str, Any]]) -> TaskState:
    """The root task's state after ``events`` (all of one root task)."""
    task: TaskState | None = None
    for raw in events:
        ev = CostEvent.model_validate(raw)
        if task is None:
            task = TaskState.open(ev)
        task.apply(ev, _cost(ev))
    assert task is not None
    return task


def _cost(ev: CostEvent) -> float | None:
    """A step's cost as the engine folds it: absent on a model/embedding step means unpriced."""
    if ev.cost_usd is not None or ev.kind is not EventKind.STEP:
        return ev.cost_usd
    return None if ev.category in (Category.MODEL, Category.EMBEDDING) else 0.0


def read_trace(path: Path = REAL_TRACE) -> Iterator[dict[str, Any]]:
    with gzip.open(path) as fh:
        for line in fh:
            yield orjson.loads(line)


@lru_cache(maxsize=1)
def _trace() -> tuple[dict[str, Any], ...]:
    return tuple(read_trace())


def real_trace_events() -> list[dict[str, Any]]:
    """The real fleet's events (parsed once per test session), in file (time) order."""
    return list(_trace())


@lru_cache(maxsize=1)
def real_trace_run() -> tuple[Engine, tuple[Anomaly, ...]]:
    """The real fleet replayed once through the engine with its default configuration, then two
    hours of event time so every tick has run; every anomaly it emitted. Read-only for tests."""
    engine = Engine(clock=lambda: T0)
    out: list[Anomaly] = []
    last = 0.0
    for raw in _trace():
        anomalies, reason = engine.process_obj(raw)
        assert reason is None, reason
        out += anomalies
        last = max(last, engine.max_ts)
    out += engine.advance_to(last + engine.config.lateness_s + 7200)
    return engine, tuple(out)


@dataclass(frozen=True, slots=True)
class Emitted:
    """One episode state change, as the engine would publish it."""

    status: str  # firing | resolved
    signal: Signal


@dataclass(slots=True)
class ReplayResult:
    signals: list[Signal] = field(default_factory=list)  # every signal the detectors returned
    emitted: list[Emitted] = field(default_factory=list)  # after the engine's deduplication
    rejected: int = 0  # events the contract refuses (they go to the dead-letter topic)
    detectors: dict[tuple[str, str, str], Detector] = field(default_factory=dict)

    def firing(self, severity: str | None = None) -> list[Signal]:
        return [e.signal for e in self.emitted
                if e.status == "firing" and (severity is None or e.signal.severity == severity)]


def replay(
    events: Iterable[dict[str, Any]],
    make: Callable[[], Detector],
    *,
    tick_s: float = 60.0,
    detectors: dict[tuple[str, str, str], Detector] | None = None,
) -> ReplayResult:
    """Drive one detector (``make()``) per workflow over time-ordered ``events``."""
    res = ReplayResult(detectors=detectors if detectors is not None else {})
    live: dict[tuple[str, str, str], dict[str, TaskState]] = {}
    open_eps: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    next_tick = math.nan

    def handle(sig: Signal | None) -> None:
        if sig is None:
            return
        res.signals.append(sig)
        key = (sig.detector, tuple(sorted(sig.scope.items())))
        rank = {"info": 0, "warning": 1, "critical": 2}[str(sig.severity)]
        if not sig.firing:
            if open_eps.pop(key, None) is not None:
                res.emitted.append(Emitted("resolved", sig))
        elif open_eps.get(key, -1) < rank:
            open_eps[key] = rank
            res.emitted.append(Emitted("firing", sig))

    for raw in events:
        try:
            ev = CostEvent.model_validate(raw)
        except ValidationError:
            res.rejected += 1
            continue
        if math.isnan(next_tick):
            next_tick = (ev.ts // tick_s + 1) * tick_s
        while ev.ts >= next_tick:
            for key, each in res.detectors.items():
                for sig in each.on_tick(next_tick, list(live.get(key, {}).values())):
                    handle(sig)
            next_tick += tick_s
        wf = (ev.tenant, ev.team, ev.workflow)
        det = res.detectors.get(wf)
        if det is None:
            det = res.detectors[wf] = make()
        tasks = live.setdefault(wf, {})
        task = tasks.get(ev.root)
        if task is None:
            task = tasks[ev.root] = TaskState.open(ev)
        task.apply(ev, _cost(ev))
        handle(det.on_event(ev, task))
        if ev.kind is EventKind.TASK_FINISHED and ev.task_id == ev.root:
            del tasks[ev.root]
            handle(det.on_task_finished(task))
            for ep in [k for k in open_eps if ("root_task_id", ev.root) in k[1]]:
                del open_eps[ep]
    return res
