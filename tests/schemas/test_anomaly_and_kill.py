from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from schemas.anomaly import Anomaly, AnomalyStatus, Severity, anomaly_id_for
from schemas.killswitch import KillAck, KillCommand, KillMode, KillScope, KillTarget
from schemas.pricing import ModelPricer

NOW = 1_793_613_600.0


def test_anomaly_id_is_deterministic_and_scope_order_free() -> None:
    a = anomaly_id_for("runaway_task", {"team": "t", "root_task_id": "r"}, NOW)
    b = anomaly_id_for("runaway_task", {"root_task_id": "r", "team": "t"}, NOW)
    assert a == b and a.startswith("runaway_task-") and len(a) <= 255
    assert a != anomaly_id_for("runaway_task", {"team": "t", "root_task_id": "r"}, NOW + 1)


def test_anomaly_wire_form_uses_rfc3339_and_schema_name() -> None:
    a = Anomaly(
        anomaly_id="x",
        detector="d",
        status=AnomalyStatus.FIRING,
        severity=Severity.WARNING,
        ts=NOW,
        detected_at=NOW,
        scope={"workflow": "w"},
        metric="m",
        unit="usd",
        observed=1.0,
        summary="s",
        config_version="v",
    )
    wire = orjson.loads(a.to_json())
    assert wire["schema"] == "burnguard.anomaly/1"
    assert wire["ts"] == "2026-11-02T10:00:00.000Z"
    assert Anomaly.model_validate(wire) == a


def _command(expires: float = NOW + 60) -> KillCommand:
    return KillCommand(
        command_id="c1",
        anomaly_id="a1",
        target=KillTarget(scope=KillScope.TASK, root_task_id="r1"),
        reason="runaway",
        issued_at=NOW,
        expires_at=expires,
        mode=KillMode.AUTONOMOUS,
    )


def test_kill_command_signature_verification() -> None:
    key, old = b"k" * 32, b"o" * 32
    signed = _command().signed(key)
    assert signed.verify([key], NOW) is None
    assert signed.verify([old, key], NOW) is None  # rotation: any accepted key
    assert signed.verify([old], NOW) == "bad signature"
    assert _command().verify([key], NOW) == "unsigned"
    assert signed.verify([key], NOW + 61) == "expired"
    tampered = signed.model_copy(update={"reason": "something else"})
    assert tampered.verify([key], NOW) == "bad signature"
    wire = orjson.loads(orjson.dumps(signed.model_dump(mode="json", by_alias=True)))
    assert KillCommand.model_validate(wire).verify([key], NOW) is None
    forged = signed.model_copy(update={"signature": "é" * 64})  # not even hex: refused, not a crash
    assert forged.verify([key], NOW) == "bad signature"


def test_pricing_from_tokens_and_unknown_models() -> None:
    pricer = ModelPricer()
    cost = pricer.price("gpt-4o-mini", "openai", 1_000_000, 0)
    assert cost == pytest.approx(0.15, rel=0.5)
    assert pricer.price("no-such-model-xyz", "acme", 10, 10) is None
    assert pricer.price(None, None, 10, 10) is None


def _anomaly_wire() -> dict[str, object]:
    anomaly = Anomaly(anomaly_id="x", detector="d", status=AnomalyStatus.FIRING, severity=Severity.WARNING, ts=NOW,
                      detected_at=NOW, scope={"workflow": "w"}, metric="m", unit="usd", observed=1.0, expected=0.5,
                      threshold=0.8, score=1.25, summary="s", config_version="v")  # fmt: skip
    wire: dict[str, object] = orjson.loads(anomaly.to_json())
    return wire


@pytest.mark.parametrize(
    ("field", "value"),
    [("observed", "1e3"), ("observed", True), ("expected", " 7 "), ("threshold", False), ("score", "2"),
     ("ts", True), ("detected_at", "1793613600"), ("severity", "CRITICAL"), ("status", "Firing"),
     ("scope", {"workflow": 5})],
)  # fmt: skip
def test_anomalies_read_from_a_topic_are_not_coerced(field: str, value: object) -> None:
    wire = _anomaly_wire()
    assert Anomaly.model_validate_json(orjson.dumps(wire)).observed == 1.0
    with pytest.raises(ValidationError) as info:
        Anomaly.model_validate_json(orjson.dumps(wire | {field: value}))
    assert {str(e["loc"][0]) for e in info.value.errors()} == {field}


@pytest.mark.parametrize(
    ("field", "value"),
    [("issued_at", True), ("expires_at", "1793613660"), ("mode", "AUTONOMOUS"), ("command_id", 7),
     ("target", {"scope": "TASK", "root_task_id": "r1"}), ("target", {"scope": "task", "root_task_id": 1})],
)  # fmt: skip
def test_kill_commands_and_acks_are_not_coerced(field: str, value: object) -> None:
    wire = orjson.loads(orjson.dumps(_command().model_dump(mode="json", by_alias=True)))
    with pytest.raises(ValidationError) as info:
        KillCommand.model_validate_json(orjson.dumps(wire | {field: value}))
    assert {str(e["loc"][0]) for e in info.value.errors()} == {field}
    ack = {"command_id": "c1", "halted_at": "2026-11-02T10:00:00.000Z", "halted_by": "h/1/a"}
    assert KillAck.model_validate_json(orjson.dumps(ack)).halted_at == NOW
    for bad in (True, "1793613600", None):
        with pytest.raises(ValidationError):
            KillAck.model_validate_json(orjson.dumps(ack | {"halted_at": bad}))
