"""The SDK's own wire models (kill commands, acks) take exact types, as the server's do."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from burnguard_sdk import KillAck, KillCommand, KillMode, KillScope, KillTarget

NOW = 1_793_613_600.0


def _wire() -> dict[str, object]:
    command = KillCommand(command_id="c1", anomaly_id="a1", target=KillTarget(scope=KillScope.TASK, root_task_id="r1"),
                          reason="r", issued_at=NOW, expires_at=NOW + 60, mode=KillMode.AUTONOMOUS)  # fmt: skip
    wire: dict[str, object] = json.loads(command.model_dump_json(by_alias=True))
    return wire


@pytest.mark.parametrize(
    ("field", "value"),
    [("issued_at", True), ("expires_at", "1793613660"), ("expires_at", False), ("mode", "Approved"),
     ("command_id", 7), ("signature", 12345), ("target", {"scope": "AGENT", "agent": "a"}),
     ("target", {"scope": "agent", "agent": True})],
)  # fmt: skip
def test_commands_are_not_coerced(field: str, value: object) -> None:
    assert KillCommand.model_validate_json(json.dumps(_wire())).expires_at == NOW + 60
    with pytest.raises(ValidationError) as info:
        KillCommand.model_validate_json(json.dumps(_wire() | {field: value}))
    assert {str(e["loc"][0]) for e in info.value.errors()} == {field}


@pytest.mark.parametrize("halted_at", [True, "1793613600", " 2026-11-02T10:00:00Z"])
def test_acks_are_not_coerced(halted_at: object) -> None:
    ack = {"command_id": "c1", "halted_at": "2026-11-02T10:00:00.000Z", "halted_by": "h/1/a"}
    assert KillAck.model_validate_json(json.dumps(ack)).halted_at == NOW
    with pytest.raises(ValidationError):
        KillAck.model_validate_json(json.dumps(ack | {"halted_at": halted_at}))
