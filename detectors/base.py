"""What every detector is: a small online learner over event time that answers with signals.

A detector never reads the wall clock, never does I/O and never imports a transport. The engine
(:mod:`detectors.engine`) turns its :class:`Signal` s into anomaly episodes with deterministic ids,
applies the autonomy policy and decides what is emitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from detectors.ledger import TaskState
from schemas.anomaly import Severity
from schemas.events import CostEvent

__all__ = ["Detector", "DetectorParams", "Signal", "StateVersionError"]


class StateVersionError(ValueError):
    """A snapshot written by another version of a detector: start learning afresh."""


class DetectorParams(BaseModel):
    """Base of every detector's knobs. ``enabled: false`` switches a detector off for a scope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


@dataclass(slots=True)
class Signal:
    """A detector's verdict on one scope at one event time.

    ``firing=True`` opens (or escalates) an episode for ``(detector, scope)``; ``firing=False`` says
    the condition has cleared and resolves an open episode. ``kill_eligible`` marks a signal that a
    workflow in ``act`` autonomy may halt (only ever with ``severity`` critical).
    """

    detector: str
    scope: dict[str, str]
    ts: float
    firing: bool = True
    severity: Severity = Severity.WARNING
    metric: str = ""
    unit: str = ""
    observed: float = 0.0
    expected: float | None = None
    threshold: float | None = None
    score: float | None = None
    summary: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    kill_eligible: bool = False


class Detector:
    """Base class. Override the hooks a detector needs; each may return signals or nothing.

    - :meth:`on_event` — every accepted event, with the root task's rolled-up state after it;
    - :meth:`on_task_finished` — once per completed root task (the place to learn baselines);
    - :meth:`on_tick` — event time advanced to ``now`` (watermark), with the scope's live tasks.

    Constructor arguments are the detector's configuration and are stored unchanged; learned state
    lives elsewhere and round-trips through :meth:`snapshot` / :meth:`restore` as plain data.
    """

    name: ClassVar[str] = "detector"
    #: whether any of its signals can be ``kill_eligible`` (so naming it in ``kill_detectors`` can halt a task)
    can_kill: ClassVar[bool] = False
    #: Version of the snapshot layout; bump it when the layout changes.
    state_version: ClassVar[int] = 1

    def on_event(self, event: CostEvent, task: TaskState) -> Signal | None:
        return None

    def on_task_finished(self, task: TaskState) -> Signal | None:
        return None

    def on_tick(self, now: float, tasks: Iterable[TaskState]) -> list[Signal]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"v": self.state_version, "state": self._get_state()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("v") != self.state_version:
            raise StateVersionError(
                f"{self.name}: snapshot version {snapshot.get('v')!r}, expected {self.state_version}"
            )
        self._set_state(snapshot["state"])

    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        return None
