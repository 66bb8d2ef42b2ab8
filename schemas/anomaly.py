"""The anomaly, ``burnguard.anomaly/1`` (CONTRACT §2)."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, Strict, WithJsonSchema, field_serializer, field_validator

from schemas.timefmt import format_ts, parse_ts

_TIME = WithJsonSchema({"type": "string", "format": "date-time"})
#: A JSON number, never ``true`` or a string (the alerter reads anomalies from a topic).
_Number = Annotated[float, Strict()]

__all__ = [
    "ANOMALY_SCHEMA",
    "SCOPE_KEYS",
    "Action",
    "Anomaly",
    "AnomalyStatus",
    "Severity",
    "anomaly_id_for",
]

ANOMALY_SCHEMA: Final = "burnguard.anomaly/1"
#: The keys a scope may hold, in their canonical order.
SCOPE_KEYS = ("tenant", "team", "workflow", "agent", "task_id", "root_task_id")


class AnomalyStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Action(StrEnum):
    NONE = "none"
    ALERT = "alert"
    KILL = "kill"


def anomaly_id_for(detector: str, scope: dict[str, str], episode_start_ts: float) -> str:
    """Deterministic id of one episode of one detector on one scope.

    The same events give the same id in a replay, after a restart or on another worker, so every
    outward action keyed by it (PagerDuty ``dedup_key``, kill command key) is idempotent.

    >>> anomaly_id_for("task_budget", {"root_task_id": "t1"}, 1793613600.25)
    'task_budget-d0576b61243f28b91cc9'
    """
    canonical = orjson.dumps(
        [detector, [[k, scope[k]] for k in SCOPE_KEYS if k in scope], round(episode_start_ts, 3)]
    )
    return f"{detector}-{hashlib.sha256(canonical).hexdigest()[:20]}"


class Anomaly(BaseModel):
    """An anomaly episode's state change: emitted when it fires, escalates, and resolves."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["burnguard.anomaly/1"] = Field(default=ANOMALY_SCHEMA, alias="schema")
    anomaly_id: str
    detector: str
    status: AnomalyStatus
    severity: Severity
    ts: Annotated[float, _TIME] = Field(
        description="event time of the triggering event, epoch seconds (RFC 3339 on the wire)"
    )
    detected_at: Annotated[float, _TIME] = Field(description="wall-clock time it was emitted, epoch seconds")
    scope: dict[str, str]
    metric: str
    unit: str
    observed: _Number
    expected: _Number | None = None
    threshold: _Number | None = None
    score: _Number | None = None
    action: Action = Action.NONE
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    config_version: str

    @field_validator("ts", "detected_at", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> float:
        return parse_ts(value)

    @field_serializer("ts", "detected_at")
    def _format_time(self, value: float) -> str:
        return format_ts(value)

    def to_json(self) -> bytes:
        """The wire form: one JSON object, ``schema`` spelled as in the contract."""
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))
