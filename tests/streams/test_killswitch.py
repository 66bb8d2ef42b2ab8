"""The kill loop's logic without a broker: issue, propose, decide, ack, escalate — idempotently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.config import BurnguardConfig
from detectors.kill_policy import kill_command_id
from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity
from schemas.killswitch import KillAck, KillCommand, KillMode
from schemas.timefmt import parse_ts
from streams.killswitch import KillLoop
from streams.killswitch_keys import KillKeys, KillKeysError, load_kill_keys, may_act, require_signing_key
from streams.killswitch_proposals import DecisionError, check_decidable
from streams.killswitch_records import ESCALATION_DETECTOR, KillOutputs, KillProposal, ProposalStatus, escalation_id
from tests.factory import T0

KEYS = KillKeys((b"k-new", b"k-old"))
NOW = T0 + 3600.0
TARGET = {"scope": "task", "tenant": "acme", "team": "t", "workflow": "support", "root_task_id": "r1"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def anomaly(proposed: bool = False, **changes: Any) -> Anomaly:
    evidence: dict[str, Any] = {"kill_target": TARGET, "kill_command_id": kill_command_id("task_budget-1", TARGET)}
    if proposed:
        evidence["kill_proposed"] = True
    base = Anomaly(
        anomaly_id="task_budget-1",
        detector="task_budget",
        status=AnomalyStatus.FIRING,
        severity=Severity.CRITICAL,
        ts=NOW - 2.0,
        detected_at=NOW - 0.5,
        scope={k: v for k, v in TARGET.items() if k != "scope"},
        metric="task_cost_usd",
        unit="USD",
        observed=0.56,
        action=Action.ALERT if proposed else Action.KILL,
        summary="support task r1 spent $0.56 of its $0.50 budget",
        evidence=evidence,
        config_version="t-1",
    )
    return base.model_copy(update=changes)


def loop(clock: Clock, keys: KillKeys | None = KEYS) -> KillLoop:
    return KillLoop(keys, expiry_s=600, proposal_ttl_s=3600, ack_deadline_s=30, clock=clock)


def ack_bytes(command_id: str, halted_at: float) -> bytes:
    return (
        KillAck(command_id=command_id, halted_at=halted_at, halted_by="host/1").model_dump_json(by_alias=True).encode()
    )


def track(kl: KillLoop, table: dict[bytes, bytes], kind: Any, key: bytes, value: bytes) -> KillOutputs:
    out = kl.on_record(kind, value, table.get(key))
    if out.entry is not None:
        table[key] = out.entry
    return out


def test_a_kill_becomes_one_signed_command_and_an_issued_record() -> None:
    kl = loop(Clock(NOW))
    out = kl.on_anomaly(anomaly().to_json())
    ((key, value),) = out.commands
    command = KillCommand.model_validate_json(value)
    assert key == b"r1" and command.target.key == "r1" and command.mode is KillMode.AUTONOMOUS
    assert command.command_id == kill_command_id("task_budget-1", TARGET)
    assert (command.issued_at, command.expires_at) == (NOW, NOW + 600)
    assert command.verify([b"k-new"], NOW) is None and command.verify([b"k-old"], NOW) == "bad signature"
    assert [k for k, _ in out.internal] == [command.command_id.encode()]
    # the same anomaly again (redelivered): the same command id
    again = KillCommand.model_validate_json(kl.on_anomaly(anomaly().to_json()).commands[0][1])
    assert again.command_id == command.command_id


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        anomaly(status=AnomalyStatus.RESOLVED).to_json(),
        anomaly(action=Action.ALERT, evidence={}).to_json(),
        anomaly(evidence={"kill_target": {"scope": "galaxy"}, "kill_command_id": "k"}).to_json(),
    ],
)
def test_anything_else_on_the_anomalies_topic_sends_nothing(value: bytes) -> None:
    out = loop(Clock(NOW)).on_anomaly(value)
    assert out.commands == [] and out.internal == []


def test_a_stale_kill_or_one_without_a_key_sends_nothing() -> None:
    kl = loop(Clock(NOW + 601))
    assert kl.on_anomaly(anomaly().to_json()).commands == [] and kl.stats.stale == 1
    keyless = loop(Clock(NOW), keys=None)
    assert keyless.on_anomaly(anomaly().to_json()).commands == [] and keyless.stats.unsigned == 1


def test_an_ack_resolves_the_anomaly_with_the_time_to_halt_once() -> None:
    clock = Clock(NOW)
    kl = loop(clock)
    table: dict[bytes, bytes] = {}
    issued = kl.on_anomaly(anomaly().to_json())
    ((key, record),) = issued.internal
    assert track(kl, table, "internal", key, record).anomalies == []
    assert track(kl, table, "internal", key, record).entry is None  # redelivered: nothing changes
    clock.now = NOW + 1.5
    out = track(kl, table, "ack", key, ack_bytes(key.decode(), NOW + 1.25))
    ((anomaly_key, value),) = out.anomalies
    resolved = orjson.loads(value)
    assert anomaly_key == b"task_budget-1" and resolved["status"] == "resolved" and resolved["action"] == "none"
    ev = resolved["evidence"]
    assert (ev["event_to_command_s"], ev["command_to_halt_s"], ev["time_to_halt_s"]) == (2.0, 1.25, 3.25)
    assert ev["halted_by"] == "host/1" and ev["kill_mode"] == "autonomous"
    assert track(kl, table, "ack", key, ack_bytes(key.decode(), NOW + 1.3)).anomalies == []  # a second ack
    assert kl.stats.acks == 1 and kl.stats.percentile(0.5) == pytest.approx(3.25)
    clock.now = NOW + 100
    assert kl.overdue(table.items()) == []  # acknowledged: never escalated


def test_an_ack_before_its_issued_record_still_closes_the_loop() -> None:
    kl = loop(Clock(NOW))
    table: dict[bytes, bytes] = {}
    ((key, record),) = kl.on_anomaly(anomaly().to_json()).internal
    assert track(kl, table, "ack", key, ack_bytes(key.decode(), NOW + 0.5)).anomalies == []
    out = track(kl, table, "internal", key, record)
    assert [orjson.loads(v)["status"] for _, v in out.anomalies] == ["resolved"]


def test_silence_past_the_deadline_escalates_once_and_a_late_ack_resolves_both() -> None:
    clock = Clock(NOW)
    kl = loop(clock)
    table: dict[bytes, bytes] = {}
    ((key, record),) = kl.on_anomaly(anomaly().to_json()).internal
    track(kl, table, "internal", key, record)
    clock.now = NOW + 29
    assert kl.overdue(table.items()) == []
    clock.now = NOW + 31
    ((found_key, out),) = kl.overdue(table.items())
    assert out.entry is not None
    table[found_key] = out.entry
    ((esc_key, value),) = out.anomalies
    escalation = orjson.loads(value)
    assert esc_key.decode() == escalation_id(key.decode()) == escalation["anomaly_id"]
    assert (escalation["detector"], escalation["severity"], escalation["status"]) == (
        ESCALATION_DETECTOR,
        "critical",
        "firing",
    )
    assert escalation["scope"]["root_task_id"] == "r1" and escalation["observed"] == pytest.approx(31.0)
    # raised when the deadline passed (wall clock), outside the detectors' event-time range
    assert parse_ts(escalation["ts"]) == pytest.approx(NOW + 31)
    assert kl.overdue(table.items()) == []  # once
    late = track(kl, table, "ack", key, ack_bytes(key.decode(), NOW + 40))
    assert [(orjson.loads(v)["anomaly_id"], orjson.loads(v)["status"]) for _, v in late.anomalies] == [
        ("task_budget-1", "resolved"),
        (escalation["anomaly_id"], "resolved"),
    ]


def _proposal_flow(kl: KillLoop, table: dict[bytes, bytes]) -> tuple[bytes, KillProposal]:
    ((key, record),) = kl.on_anomaly(anomaly(proposed=True).to_json()).internal
    assert kl.on_anomaly(anomaly(proposed=True).to_json()).commands == []
    out = track(kl, table, "internal", key, record)
    ((pkey, pvalue),) = out.proposals
    assert track(kl, table, "internal", key, record).proposals == []  # redelivered: proposed once
    proposal = KillProposal.model_validate_json(pvalue)
    assert pkey == key and proposal.status is ProposalStatus.PENDING
    assert track(kl, table, "proposal", key, pvalue).entry is None  # its own proposal, read back
    return key, proposal


def test_an_approved_proposal_is_tracked_like_an_issued_command() -> None:
    clock = Clock(NOW)
    kl = loop(clock)
    table: dict[bytes, bytes] = {}
    key, proposal = _proposal_flow(kl, table)
    command = proposal.unsigned_command(KillMode.APPROVED, NOW + 5, 600).signed(KEYS.signing)
    decision = proposal.model_copy(
        update={"status": ProposalStatus.APPROVED, "decided_at": NOW + 5, "decided_by": "al", "command": command}
    )
    track(kl, table, "proposal", key, decision.to_json())
    clock.now = NOW + 36
    ((_, out),) = kl.overdue(table.items())  # approved at +5, deadline 30 s
    assert orjson.loads(out.anomalies[0][1])["evidence"]["kill_mode"] == "approved"


def test_a_denied_proposal_is_never_tracked_nor_decided_again() -> None:
    clock = Clock(NOW)
    kl = loop(clock)
    table: dict[bytes, bytes] = {}
    key, proposal = _proposal_flow(kl, table)
    denied = proposal.model_copy(update={"status": ProposalStatus.DENIED, "decided_at": NOW + 5, "decided_by": "bo"})
    track(kl, table, "proposal", key, denied.to_json())
    clock.now = NOW + 100
    assert kl.overdue(table.items()) == [] and kl.stats.denied == 1
    with pytest.raises(DecisionError, match="already denied by bo"):
        check_decidable(denied, key.decode(), NOW + 6)


def test_decisions_are_refused_for_unknown_and_expired_proposals() -> None:
    kl = loop(Clock(NOW))
    table: dict[bytes, bytes] = {}
    _, proposal = _proposal_flow(kl, table)
    assert check_decidable(proposal, proposal.command_id, NOW + 10) is proposal
    with pytest.raises(DecisionError, match="no kill proposal kill-x"):
        check_decidable(None, "kill-x", NOW)
    with pytest.raises(DecisionError, match="expired at"):
        check_decidable(proposal, proposal.command_id, NOW + 3600)


def test_bad_records_on_the_tracked_topics_are_counted_not_fatal() -> None:
    kl = loop(Clock(NOW))
    for kind in ("internal", "ack", "proposal"):
        assert kl.on_record(kind, b"\xff garbage", None).entry is None
    assert kl.stats.invalid == 3


def test_settled_entries_leave_the_table_after_keep_s() -> None:
    clock = Clock(NOW)
    kl = loop(clock)
    table: dict[bytes, bytes] = {}
    ((key, record),) = kl.on_anomaly(anomaly().to_json()).internal
    track(kl, table, "internal", key, record)
    track(kl, table, "ack", key, ack_bytes(key.decode(), NOW + 1))
    assert kl.finished(table.items(), keep_s=60) == []
    clock.now = NOW + 61
    assert kl.finished(table.items(), keep_s=60) == [key]


# -- keys -----------------------------------------------------------------------------------------
def test_keys_from_a_file_rotate_and_never_show(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# rotated 2026-11\nnew-one\n\nold-one\n", encoding="utf-8")
    keys = load_kill_keys({"BURNGUARD_KILL_KEYS_FILE": str(path)})
    assert keys is not None and keys.all == (b"new-one", b"old-one") and keys.signing == b"new-one"
    assert "new-one" not in repr(keys) and "old-one" not in f"{keys}"
    with pytest.raises(KillKeysError, match="cannot read"):
        load_kill_keys({"BURNGUARD_KILL_KEYS_FILE": str(tmp_path / "missing")})
    path.write_text("# nothing\n")
    with pytest.raises(KillKeysError, match="holds no key"):
        load_kill_keys({"BURNGUARD_KILL_KEYS_FILE": str(path)})


def test_a_worker_that_may_act_needs_a_key() -> None:
    advise = BurnguardConfig()
    act_somewhere = BurnguardConfig.model_validate({"overrides": [{"match": {"workflow": "w"}, "autonomy": "act"}]})
    assert not may_act(advise, None) and may_act(act_somewhere, None)
    assert may_act(advise, "act") and not may_act(act_somewhere, "approve")
    assert require_signing_key(advise, None, {}) is None
    with pytest.raises(KillKeysError, match="BURNGUARD_KILL_KEYS"):
        require_signing_key(act_somewhere, None, {})
    assert require_signing_key(act_somewhere, None, {"BURNGUARD_KILL_KEYS": "k"}) == KillKeys((b"k",))
