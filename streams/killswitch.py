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

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from schemas.anomaly import Action, Anomaly, AnomalyStatus
from schemas.killswitch import KillAck, KillMode, KillTarget
from schemas.timefmt import format_ts
from streams.killswitch_keys import KillKeys
from streams.killswitch_records import (
    EntryState,
    KillEntry,
    KillOutputs,
    KillProposal,
    KillStats,
    ProposalStatus,
    escalation_anomaly,
)

__all__ = ["KillLoop"]

log = logging.getLogger("burnguard.killswitch")


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
        if value is not None and b'"kill_command_id"' not in value:
            return out  # the detect agent's hot path: most anomalies are no kill, and are not parsed again
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
            escalation = escalation_anomaly(entry, now, self.ack_deadline_s).model_copy(
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
            anomaly = escalation_anomaly(entry, now, self.ack_deadline_s)
            out.anomalies.append((anomaly.anomaly_id.encode(), anomaly.to_json()))
            self.stats.escalations += 1
            log.error("kill %s: %s", command.command_id, anomaly.summary)
            found.append((key, out))
        return found

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
