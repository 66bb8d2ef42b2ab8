"""Handing an engine's state over: the whole of it, or per workflow (what a Kafka batch touched).

Everything is plain JSON-able data — task ledgers, detector snapshots, open episodes, recent ids —
so a table, a file or another process can hold it, and loading it cannot run code.
"""

from __future__ import annotations

import logging
from itertools import islice
from typing import TYPE_CHECKING, Any

import orjson

from detectors.base import Detector, StateVersionError
from detectors.ledger import TaskState
from schemas.anomaly import Anomaly

if TYPE_CHECKING:
    from detectors.config import BurnguardConfig
    from detectors.engine import _WorkflowScope
    from detectors.episodes import EpisodeBook
    from detectors.event_clock import EventClock
    from detectors.kill_policy import KillCooldowns
    from detectors.ledger import RecentIds
    from detectors.scope_spend import SpendMinutes

__all__ = ["EngineHandover", "ScopeKey"]

ScopeKey = tuple[str, ...]


class EngineHandover:
    """Mixed into :class:`~detectors.engine.Engine`: ``snapshot``/``restore`` and their parts."""

    # what the engine holds (declared here for the type checker; the engine sets them)
    config: BurnguardConfig
    episodes: EpisodeBook
    kill_cooldowns: KillCooldowns
    event_clock: EventClock
    _next_tick: float
    _tasks: dict[str, TaskState]
    _workflows: dict[ScopeKey, _WorkflowScope]
    _scope_detectors: dict[ScopeKey, Detector]
    _pending_state: dict[str, Any]
    _seen: RecentIds
    _finished: RecentIds
    _unpriced_models: set[str]
    _misnamed_cost: set[str]
    minutes: SpendMinutes

    def _reset(self) -> None:
        raise NotImplementedError

    def _workflow(self, tenant: str, team: str, workflow: str) -> _WorkflowScope:
        raise NotImplementedError

    def _scope_detector(self, key: ScopeKey) -> Detector:
        raise NotImplementedError

    if TYPE_CHECKING:  # EngineYoung's, mixed into the engine beside this

        def _young_snapshot(self) -> dict[str, Any]: ...

        def _young_restore(self, data: dict[str, Any] | None) -> None: ...

    # -- the whole state -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue on another process, as plain JSON-able data."""
        detectors = {
            _join(key): {det.name: det.snapshot() for det in scope.detectors} for key, scope in self._workflows.items()
        }
        detectors.update({"scope:" + _join(k): {"burn_rate": d.snapshot()} for k, d in self._scope_detectors.items()})
        return {
            "v": 1,
            "config_version": self.config.version,
            "max_ts": self.event_clock.now,
            "next_tick": self._next_tick,
            "tasks": [t.to_dict() for t in self._tasks.values()],
            "detectors": {**self._pending_state, **detectors},
            "episodes": self.episodes.snapshot(),
            "seen": self._seen.snapshot(),
            "finished": self._finished.snapshot(),
            "unpriced": sorted(self._unpriced_models),
            "misnamed_cost": sorted(self._misnamed_cost),
            "kills": self.kill_cooldowns.snapshot(),
            "minutes": self.minutes.snapshot(),
            "clock": self.event_clock.snapshot(),
            "young": self._young_snapshot(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("v") != 1:
            raise ValueError(f"engine snapshot version {state.get('v')!r} is not 1")
        self._reset()
        self._pending_state = dict(state["detectors"])
        self.event_clock.restore(state.get("clock"))  # absent from snapshots older than the event clock
        self.event_clock.now = max(self.event_clock.now, state["max_ts"])
        self._next_tick = state["next_tick"]
        for data in state["tasks"]:
            task = TaskState.from_dict(data)
            self._tasks[task.root_task_id] = task
            self._workflow(task.tenant, task.team, task.workflow).tasks[task.root_task_id] = task
        for key in [k for k in self._pending_state if not k.startswith("scope:")]:
            self._workflow(*_split(key))
        for key in [k for k in self._pending_state if k.startswith("scope:")]:
            self._scope_detector(_split(key[len("scope:") :]))
        self.episodes.restore(state["episodes"])
        self._seen.restore(state["seen"])
        self._finished.restore(state["finished"])
        self._unpriced_models = set(state["unpriced"])
        self._misnamed_cost = set(state.get("misnamed_cost", ()))  # absent from older snapshots
        self.kill_cooldowns.restore(state.get("kills", {}))
        self.minutes.restore(state.get("minutes"))  # absent from snapshots older than the roll-up
        self._young_restore(state.get("young"))

    def snapshot_bytes(self) -> bytes:
        return orjson.dumps(self.snapshot())

    # -- state hand-over in parts (the Kafka worker checkpoints only what a batch touched) ----------
    @property
    def next_tick(self) -> float:
        """Event time (epoch s) of the next periodic tick; it moves when a tick has run."""
        return self._next_tick

    def snapshot_workflow(self, key: ScopeKey) -> dict[str, Any]:
        """The part of :meth:`snapshot` about one ``(tenant, team, workflow)``: its detectors, its
        burn-rate scope, its live tasks, the open episodes whose scope names that workflow, and its
        spend not yet released to its tenant and team (``minutes``)."""
        name = _join(key)
        detectors: dict[str, Any] = {}
        scope = self._workflows.get(key)
        if scope is not None:
            detectors[name] = {det.name: det.snapshot() for det in scope.detectors}
        elif name in self._pending_state:
            detectors[name] = self._pending_state[name]
        spend = self._scope_detectors.get(key)
        if spend is not None:
            detectors["scope:" + name] = {"burn_rate": spend.snapshot()}
        elif "scope:" + name in self._pending_state:
            detectors["scope:" + name] = self._pending_state["scope:" + name]
        return {
            "detectors": detectors,
            "tasks": [t.to_dict() for t in scope.tasks.values()] if scope is not None else [],
            "episodes": [
                a.model_dump(mode="json", by_alias=True) for a in self.episodes.open.values() if _scope_key(a) == key
            ],
            "kills": self.kill_cooldowns.snapshot(key),
            # with its events' offsets in one record: a checkpoint cut short never splits them
            "minutes": self.minutes.rows_of(key),
        }

    def snapshot_shared(self, keep_ids: int | None = None) -> dict[str, Any]:
        """:meth:`snapshot` without any workflow's part (see :meth:`snapshot_workflow`): event time,
        the tenant and team burn-rate scopes, their episodes, how far spend is released to them,
        and the most recent ``keep_ids`` seen event ids and finished root ids (all of them when ``None``)."""
        detectors = {
            "scope:" + _join(k): {"burn_rate": d.snapshot()} for k, d in self._scope_detectors.items() if len(k) < 3
        }
        detectors.update(
            {k: v for k, v in self._pending_state.items() if k.startswith("scope:") and len(_split(k[6:])) < 3}
        )
        if keep_ids is None:
            seen, finished = self._seen.snapshot(), self._finished.snapshot()
        else:  # the newest ids, without copying a dedup memory of 200 000 ids on every checkpoint
            seen = list(islice(reversed(self._seen._ids), keep_ids))[::-1]
            finished = list(islice(reversed(self._finished._ids), keep_ids))[::-1]
        return {
            "v": 1,
            "config_version": self.config.version,
            "max_ts": self.event_clock.now,
            "next_tick": self._next_tick,
            "tasks": [],
            "detectors": detectors,
            "episodes": [
                a.model_dump(mode="json", by_alias=True) for a in self.episodes.open.values() if _scope_key(a) is None
            ],
            "seen": seen,
            "finished": finished,
            "unpriced": sorted(self._unpriced_models),
            "misnamed_cost": sorted(self._misnamed_cost),
            "minutes": self.minutes.snapshot(everything=False),
            # with the events held ahead of the stream: acknowledged, they live on only here
            "clock": self.event_clock.snapshot(),
        }


def _scope_key(anomaly: Anomaly) -> ScopeKey | None:
    """The ``(tenant, team, workflow)`` an episode's scope lies in, ``None`` above workflow level."""
    scope = anomaly.scope
    workflow = scope.get("workflow")
    if workflow is None:
        return None
    return (scope.get("tenant", "default"), scope.get("team", ""), workflow)


def _join(key: ScopeKey) -> str:
    return "\x1f".join(key)


def _split(key: str) -> tuple[str, ...]:
    return tuple(key.split("\x1f"))


def _restore(det: Detector, snapshot: dict[str, Any], key: ScopeKey) -> None:
    """Restore a detector; one whose snapshot another version wrote starts learning afresh (logged)."""
    try:
        det.restore(snapshot)
    except StateVersionError as exc:
        where = "/".join(key)
        logging.getLogger("burnguard.engine").warning("%s for %s: it starts learning afresh (%s)", det.name, where, exc)
