"""The kill switch's records: proposals (a public topic), the table entries of the outstanding
commands, the loop's outputs and counters, and the id of an escalation. Plain data, no Faust."""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_serializer, field_validator

from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity
from schemas.killswitch import KillAck, KillCommand, KillMode, KillTarget
from schemas.timefmt import format_ts, parse_ts

__all__ = [
    "ESCALATION_DETECTOR",
    "PROPOSAL_SCHEMA",
    "EntryState",
    "KillEntry",
    "KillOutputs",
    "KillProposal",
    "KillStats",
    "ProposalStatus",
    "escalation_anomaly",
    "escalation_id",
]

PROPOSAL_SCHEMA: Final = "burnguard.kill_proposal/1"
ESCALATION_DETECTOR = "kill_unacknowledged"
_TIME = WithJsonSchema({"type": "string", "format": "date-time"})


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class KillProposal(BaseModel):
    """A kill waiting for an operator (approve mode), on the compacted proposals topic (key =
    ``command_id``); the latest record of an id is its state. ``expires_at`` ends the proposal, not
    the command: an approved command gets its own expiry when it is signed."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["burnguard.kill_proposal/1"] = Field(default=PROPOSAL_SCHEMA, alias="schema")
    command_id: str = Field(min_length=1, max_length=128)
    anomaly_id: str = Field(min_length=1, max_length=128)
    target: KillTarget
    reason: str = Field(max_length=2000)
    status: ProposalStatus = ProposalStatus.PENDING
    proposed_at: Annotated[float, _TIME]
    expires_at: Annotated[float, _TIME]
    #: event time of the event that triggered the anomaly (the start of time-to-halt)
    event_ts: Annotated[float, _TIME]
    anomaly: dict[str, Any] = Field(default_factory=dict, description="the firing anomaly, for its resolution")
    decided_at: Annotated[float, _TIME] | None = None
    decided_by: str | None = None
    command: KillCommand | None = Field(default=None, description="the signed command, once approved")

    @field_validator("proposed_at", "expires_at", "event_ts", "decided_at", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> float | None:
        return None if value is None else parse_ts(value)

    @field_serializer("proposed_at", "expires_at", "event_ts", "decided_at")
    def _format_time(self, value: float | None) -> str | None:
        return None if value is None else format_ts(value)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))

    def unsigned_command(self, mode: KillMode, now: float, expiry_s: float) -> KillCommand:
        return KillCommand(
            command_id=self.command_id,
            anomaly_id=self.anomaly_id,
            target=self.target,
            reason=self.reason,
            issued_at=now,
            expires_at=now + expiry_s,
            mode=mode,
        )


class EntryState(StrEnum):
    PROPOSED = "proposed"
    ISSUED = "issued"
    HALTED = "halted"
    DENIED = "denied"
    #: an ack whose ``issued`` record has not arrived yet
    ACK_FIRST = "ack_first"


class KillEntry(BaseModel):
    """One command id's state in the worker's changelogged table (and the internal topic's record)."""

    command_id: str
    state: EntryState
    updated_at: float
    event_ts: float | None = None
    command: KillCommand | None = None
    anomaly: dict[str, Any] = Field(default_factory=dict)
    escalated: bool = False
    ack: KillAck | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))


def escalation_id(command_id: str) -> str:
    """Deterministic id of the ``kill_unacknowledged`` anomaly of one command.

    >>> escalation_id("kill-9a28c39974725e53b781c9e3")
    'kill_unacknowledged-1f5d455e92d4544934a0'
    """
    return f"{ESCALATION_DETECTOR}-{hashlib.sha256(command_id.encode()).hexdigest()[:20]}"


@dataclass(slots=True)
class KillStats:
    """Counters since the worker started, and the latest times to halt (seconds, event → ack)."""

    commands: int = 0
    proposals: int = 0
    approved: int = 0
    denied: int = 0
    acks: int = 0
    duplicates: int = 0
    escalations: int = 0
    stale: int = 0
    invalid: int = 0
    unsigned: int = 0
    time_to_halt_s: deque[float] = field(default_factory=lambda: deque(maxlen=1_000))

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0–1) of the recorded times to halt, nearest rank; ``None`` with none."""
        values = sorted(self.time_to_halt_s)
        if not values:
            return None
        return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]


@dataclass(slots=True)
class KillOutputs:
    """Records to send (key, value) per topic, and the table write (``None``: unchanged)."""

    commands: list[tuple[bytes, bytes]] = field(default_factory=list)
    internal: list[tuple[bytes, bytes]] = field(default_factory=list)
    proposals: list[tuple[bytes, bytes]] = field(default_factory=list)
    anomalies: list[tuple[bytes, bytes]] = field(default_factory=list)
    entry: bytes | None = None


def escalation_anomaly(entry: KillEntry, now: float, deadline_s: float) -> Anomaly:
    """The critical ``kill_unacknowledged`` anomaly of an issued command nobody acknowledged within
    ``deadline_s`` seconds (``now``: wall clock, epoch seconds)."""
    command = entry.command
    assert command is not None
    firing = Anomaly.model_validate(entry.anomaly) if entry.anomaly else None
    target = command.target
    waited = now - command.issued_at
    return Anomaly(
        anomaly_id=escalation_id(command.command_id),
        detector=ESCALATION_DETECTOR,
        status=AnomalyStatus.FIRING,
        severity=Severity.CRITICAL,
        # what triggers it is the deadline passing, on the wall clock (as the deadline itself):
        # never inside the event-time range the detectors' own anomalies live in
        ts=now,
        detected_at=now,
        scope=dict(firing.scope) if firing else {k: v for k, v in target.model_dump(exclude={"scope"}).items() if v},
        metric="kill_ack_wait_s",
        unit="seconds",
        observed=round(waited, 3),
        threshold=deadline_s,
        action=Action.ALERT,
        summary=f"No listener acknowledged kill {command.command_id} of {target.scope.value} {target.key} within "
        f"{deadline_s:g}s: it may still be running — halt it by hand",
        evidence={
            "kill_command_id": command.command_id,
            "kill_target": target.model_dump(mode="json", exclude_none=True),
            "kill_mode": command.mode.value,
            "anomaly_id": command.anomaly_id,
            "issued_at": format_ts(command.issued_at),
            "expires_at": format_ts(command.expires_at),
            "event_ts": format_ts(entry.event_ts if entry.event_ts is not None else command.issued_at),
        },
        config_version=firing.config_version if firing else "killswitch",
    )
