"""The worker's side of the kill switch, without Faust: commands, proposals, acks, escalation.

Two stages, wired to topics by :mod:`streams.killswitch_app`:

1. **Issue** (each anomaly the detect agent publishes, in its batch): a firing anomaly whose
   policy decided ``kill`` (and named ``kill_target`` and ``kill_command_id``,
   :mod:`detectors.kill_policy`) becomes a command
   signed with the first kill key, mode ``autonomous``, on ``burnguard.killswitch`` (key = the
   target's id), plus an ``issued`` record on the internal topic (key = command id); a proposed
   kill (autonomy ``approve``) becomes a ``propose`` record there instead. The engine's per-target
   cool-down already holds back repeated kills, so one target gets one command per cool-down.
2. **Track** (reads the internal topic, ``burnguard.killswitch.acks`` and ``burnguard.kill-proposals``,
   all keyed by command id and partitioned alike): a table entry per command id
   (:class:`KillEntry`, changelogged) knows whether it was proposed, issued, denied or halted. A
   proposal is published once on the compacted proposals topic; an operator's decision there
   (``burnguard kill approve|deny``) is mirrored; an ack closes the loop with the **time to halt**
   (triggering event → command issued → ack's ``halted_at``), logged, counted, and published as the
   anomaly's resolution (same ``anomaly_id``, the times in its evidence); an issued command that no
   listener acknowledged within the deadline raises a critical ``kill_unacknowledged`` anomaly.

Every step is idempotent under redelivery: the table entry decides, so a redelivered ``issued``
record, proposal or ack changes nothing and emits nothing (an ack that arrives before its
``issued`` record waits in the entry). A detect batch processed again after a crash signs its
commands again: same ``command_id``, new ``issued_at``; listeners halt once per command id.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_serializer, field_validator

from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity
from schemas.killswitch import KillAck, KillCommand, KillMode, KillTarget
from schemas.timefmt import format_ts, parse_ts
from streams.killswitch_keys import KillKeys

__all__ = [
    "ESCALATION_DETECTOR",
    "PROPOSAL_SCHEMA",
    "KillEntry",
    "KillLoop",
    "KillOutputs",
    "KillProposal",
    "KillStats",
    "ProposalStatus",
    "escalation_id",
]

log = logging.getLogger("burnguard.killswitch")
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


class KillLoop:
    """Both stages' logic (see the module docstring). ``keys`` is ``None`` when the worker may not
    kill on its own (no autonomy ``act``): a kill then is counted as unsigned and logged, not sent.
    Times are epoch seconds from ``clock`` (wall clock: deadlines and expiries are operational)."""

    def __init__(
        self,
        keys: KillKeys | None,
        *,
        expiry_s: float = 600.0,
        proposal_ttl_s: float = 3_600.0,
        ack_deadline_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.expiry_s = expiry_s
        self.proposal_ttl_s = proposal_ttl_s
        self.ack_deadline_s = ack_deadline_s
        self.clock = clock
        self.stats = KillStats()

    # -- stage 1: anomalies -> commands and proposals ------------------------------------------------
    def on_anomaly(self, value: bytes | None) -> KillOutputs:
        out = KillOutputs()
        try:
            anomaly = Anomaly.model_validate_json(value or b"")
        except ValidationError:
            self.stats.invalid += 1
            log.warning("anomalies topic: a record that is not an anomaly, ignored: %r", (value or b"")[:200])
            return out
        evidence = anomaly.evidence
        proposed = bool(evidence.get("kill_proposed"))
        if anomaly.status is not AnomalyStatus.FIRING or not (anomaly.action is Action.KILL or proposed):
            return out
        command_id, target_data = evidence.get("kill_command_id"), evidence.get("kill_target")
        if not isinstance(command_id, str) or not isinstance(target_data, dict):
            return out  # decided by an engine without kill targets: nothing to aim at
        now = self.clock()
        try:
            target = KillTarget.model_validate(target_data)
        except ValidationError:
            self.stats.invalid += 1
            log.warning("anomaly %s: kill target %r is not valid, no command", anomaly.anomaly_id, target_data)
            return out
        if now - anomaly.detected_at > (self.proposal_ttl_s if proposed else self.expiry_s):
            self.stats.stale += 1  # read again long after (a new app id on an old topic): too late to act
            log.info(
                "anomaly %s: kill decided at %s is stale, no command",
                anomaly.anomaly_id,
                format_ts(anomaly.detected_at),
            )
            return out
        anomaly_json = orjson.loads(anomaly.to_json())
        proposal = KillProposal(
            command_id=command_id,
            anomaly_id=anomaly.anomaly_id,
            target=target,
            reason=anomaly.summary[:2000],
            proposed_at=now,
            expires_at=now + self.proposal_ttl_s,
            event_ts=anomaly.ts,
            anomaly=anomaly_json,
        )
        if proposed:
            record = {"proposal": proposal.model_dump(mode="json", by_alias=True)}
            out.internal.append((command_id.encode(), orjson.dumps(record)))
            return out
        if self.keys is None:
            self.stats.unsigned += 1
            log.error(
                "anomaly %s: kill decided but no kill key is set (BURNGUARD_KILL_KEYS): no command", anomaly.anomaly_id
            )
            return out
        command = proposal.unsigned_command(KillMode.AUTONOMOUS, now, self.expiry_s).signed(self.keys.signing)
        out.commands.append((target.key.encode(), command.model_dump_json(by_alias=True, exclude_none=True).encode()))
        issued = KillEntry(
            command_id=command_id,
            state=EntryState.ISSUED,
            updated_at=now,
            event_ts=anomaly.ts,
            command=command,
            anomaly=anomaly_json,
        )
        out.internal.append((command_id.encode(), orjson.dumps({"issued": orjson.loads(issued.to_json())})))
        self.stats.commands += 1
        log.info(
            "kill %s issued for %s %s (anomaly %s, %.3fs after the triggering event)",
            command_id,
            target.scope.value,
            target.key,
            anomaly.anomaly_id,
            now - anomaly.ts,
        )
        return out

    # -- stage 2: the table of command ids -------------------------------------------------------
    def on_record(
        self, kind: Literal["internal", "ack", "proposal"], value: bytes | None, stored: bytes | None
    ) -> KillOutputs:
        """Fold one record of the tracked topics into its command id's entry (``stored``, raw)."""
        out = KillOutputs()
        entry = KillEntry.model_validate_json(stored) if stored else None
        try:
            if kind == "ack":
                self._on_ack(KillAck.model_validate_json(value or b""), entry, out)
            elif kind == "proposal":
                self._on_decision(KillProposal.model_validate_json(value or b""), entry, out)
            else:
                self._on_internal(orjson.loads(value or b"{}"), entry, out)
        except (ValidationError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            self.stats.invalid += 1
            log.warning("%s record ignored (%s): %r", kind, type(exc).__name__, (value or b"")[:200])
        return out

    def _on_internal(self, record: dict[str, Any], entry: KillEntry | None, out: KillOutputs) -> None:
        now = self.clock()
        if "proposal" in record:
            proposal = KillProposal.model_validate(record["proposal"])
            if entry is not None:
                self.stats.duplicates += 1
                return
            out.proposals.append((proposal.command_id.encode(), proposal.to_json()))
            state = KillEntry(
                command_id=proposal.command_id,
                state=EntryState.PROPOSED,
                updated_at=now,
                event_ts=proposal.event_ts,
                anomaly=proposal.anomaly,
            )
            out.entry = state.to_json()
            self.stats.proposals += 1
            log.info(
                "kill %s proposed for %s %s: waiting for approval",
                proposal.command_id,
                proposal.target.scope.value,
                proposal.target.key,
            )
            return
        issued = KillEntry.model_validate(record["issued"])
        self._issued(issued, entry, out)

    def _issued(self, issued: KillEntry, entry: KillEntry | None, out: KillOutputs) -> None:
        if entry is not None and entry.state in (EntryState.ISSUED, EntryState.HALTED):
            self.stats.duplicates += 1
            return
        if entry is not None and entry.state is EntryState.ACK_FIRST and entry.ack is not None:
            self._halted(issued, entry.ack, out)
            return
        out.entry = issued.model_copy(update={"updated_at": self.clock()}).to_json()

    def _on_decision(self, proposal: KillProposal, entry: KillEntry | None, out: KillOutputs) -> None:
        if proposal.status is ProposalStatus.PENDING:
            return  # our own proposal, read back
        if entry is not None and entry.state not in (EntryState.PROPOSED, EntryState.ACK_FIRST):
            self.stats.duplicates += 1
            return
        now = self.clock()
        if proposal.status is ProposalStatus.DENIED:
            self.stats.denied += 1
            log.info("kill %s denied by %s", proposal.command_id, proposal.decided_by)
            out.entry = KillEntry(
                command_id=proposal.command_id, state=EntryState.DENIED, updated_at=now, anomaly=proposal.anomaly
            ).to_json()
            return
        if proposal.command is None:
            raise KeyError("an approved proposal without its command")
        self.stats.approved += 1
        log.info("kill %s approved by %s", proposal.command_id, proposal.decided_by)
        issued = KillEntry(
            command_id=proposal.command_id,
            state=EntryState.ISSUED,
            updated_at=now,
            event_ts=proposal.event_ts,
            command=proposal.command,
            anomaly=proposal.anomaly,
        )
        self._issued(issued, entry, out)

    def _on_ack(self, ack: KillAck, entry: KillEntry | None, out: KillOutputs) -> None:
        if entry is None or entry.state is EntryState.PROPOSED:
            # before its command's record (another topic, another pace): kept until that arrives
            first = KillEntry(command_id=ack.command_id, state=EntryState.ACK_FIRST, updated_at=self.clock(), ack=ack)
            if entry is not None:
                first = entry.model_copy(update={"state": EntryState.ACK_FIRST, "ack": ack})
            out.entry = first.to_json()
            return
        if entry.state is not EntryState.ISSUED:
            self.stats.duplicates += 1
            return
        self._halted(entry, ack, out)

    def _halted(self, entry: KillEntry, ack: KillAck, out: KillOutputs) -> None:
        """Close the loop: time to halt, the anomaly's resolution, and the escalation's if there was one."""
        command = entry.command
        if command is None:
            raise KeyError("an issued entry without its command")
        now = self.clock()
        event_ts = entry.event_ts if entry.event_ts is not None else command.issued_at
        times: dict[str, Any] = {
            "event_ts": format_ts(event_ts),
            "issued_at": format_ts(command.issued_at),
            "halted_at": format_ts(ack.halted_at),
            "event_to_command_s": round(command.issued_at - event_ts, 3),
            "command_to_halt_s": round(ack.halted_at - command.issued_at, 3),
            "time_to_halt_s": round(ack.halted_at - event_ts, 3),
        }
        self.stats.acks += 1
        self.stats.time_to_halt_s.append(ack.halted_at - event_ts)
        log.info(
            "kill %s halted by %s: time to halt %.3fs (event -> command %.3fs, command -> halt %.3fs)",
            command.command_id,
            ack.halted_by,
            times["time_to_halt_s"],
            times["event_to_command_s"],
            times["command_to_halt_s"],
        )
        out.entry = entry.model_copy(update={"state": EntryState.HALTED, "updated_at": now, "ack": ack}).to_json()
        if entry.anomaly:
            firing = Anomaly.model_validate(entry.anomaly)
            resolved = firing.model_copy(
                update={
                    "status": AnomalyStatus.RESOLVED,
                    "detected_at": now,
                    "action": Action.NONE,
                    "summary": f"Resolved: halted by {ack.halted_by} {times['time_to_halt_s']:.3f}s after the "
                    f"triggering event. Was: {firing.summary}",
                    "evidence": {
                        **firing.evidence,
                        "resolution": "halted by the kill switch",
                        "kill_command_id": command.command_id,
                        "kill_mode": command.mode.value,
                        "halted_by": ack.halted_by,
                        **times,
                    },
                }
            )
            out.anomalies.append((resolved.anomaly_id.encode(), resolved.to_json()))
        if entry.escalated:
            escalation = self._escalation(entry, now).model_copy(
                update={
                    "status": AnomalyStatus.RESOLVED,
                    "action": Action.NONE,
                    "summary": f"Resolved: kill {command.command_id} acknowledged late by {ack.halted_by}",
                }
            )
            out.anomalies.append((escalation.anomaly_id.encode(), escalation.to_json()))

    # -- the deadline ----------------------------------------------------------------------------
    def overdue(self, entries: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, KillOutputs]]:
        """For every issued command past its ack deadline and not escalated yet: the escalation
        anomaly and the entry marked escalated."""
        now = self.clock()
        found = []
        for key, raw in entries:
            if b'"issued"' not in raw or b'"escalated":true' in raw:
                continue  # cheap pre-filter: the table holds mostly settled entries
            try:
                entry = KillEntry.model_validate_json(raw)
            except ValidationError:
                continue
            command = entry.command
            if entry.state is not EntryState.ISSUED or entry.escalated or command is None:
                continue
            if now < command.issued_at + self.ack_deadline_s:
                continue
            out = KillOutputs(entry=entry.model_copy(update={"escalated": True, "updated_at": now}).to_json())
            anomaly = self._escalation(entry, now)
            out.anomalies.append((anomaly.anomaly_id.encode(), anomaly.to_json()))
            self.stats.escalations += 1
            log.error("kill %s: %s", command.command_id, anomaly.summary)
            found.append((key, out))
        return found

    def _escalation(self, entry: KillEntry, now: float) -> Anomaly:
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
            scope=dict(firing.scope)
            if firing
            else {k: v for k, v in target.model_dump(exclude={"scope"}).items() if v},
            metric="kill_ack_wait_s",
            unit="seconds",
            observed=round(waited, 3),
            threshold=self.ack_deadline_s,
            action=Action.ALERT,
            summary=f"No listener acknowledged kill {command.command_id} of {target.scope.value} {target.key} within "
            f"{self.ack_deadline_s:g}s: it may still be running — halt it by hand",
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

    def finished(self, entries: Iterable[tuple[bytes, bytes]], keep_s: float) -> list[bytes]:
        """Keys of entries settled (halted, denied, or a lone ack) more than ``keep_s`` ago: past
        any redelivery, they can leave the table."""
        now = self.clock()
        done = []
        for key, raw in entries:
            try:
                entry = KillEntry.model_validate_json(raw)
            except ValidationError:
                done.append(key)
                continue
            settled = entry.state in (EntryState.HALTED, EntryState.DENIED, EntryState.ACK_FIRST)
            stale_issue = entry.state in (EntryState.ISSUED, EntryState.PROPOSED)
            if (settled or stale_issue) and now - entry.updated_at > keep_s:
                done.append(key)
        return done

    def describe(self) -> str:
        s = self.stats
        p50, p99 = s.percentile(0.5), s.percentile(0.99)
        halt = (
            f"time to halt p50 {p50:.3f}s p99 {p99:.3f}s over {len(s.time_to_halt_s)}"
            if p50 is not None
            else "no halt yet"
        )
        return (
            f"kill switch: {s.commands} commands, {s.proposals} proposals ({s.approved} approved, {s.denied} denied), "
            f"{s.acks} acks, {s.escalations} escalated, {s.duplicates} duplicates, {s.stale} stale, "
            f"{s.unsigned} without key, {s.invalid} invalid; {halt}"
        )
