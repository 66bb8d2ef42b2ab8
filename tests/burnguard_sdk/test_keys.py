"""Kill keys: several at once, from the argument, the environment or a file; never shown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from burnguard_sdk import KillCommand as SdkCommand
from burnguard_sdk import KillKeys, load_kill_keys
from schemas.killswitch import KillCommand, KillMode, KillScope, KillTarget

NOW = 1_793_613_600.0


def _command() -> KillCommand:
    return KillCommand(
        command_id="c1", anomaly_id="a1", target=KillTarget(scope=KillScope.TASK, root_task_id="r1"),
        reason="runaway", issued_at=NOW, expires_at=NOW + 60, mode=KillMode.AUTONOMOUS,
    )  # fmt: skip


def test_keys_from_argument_env_and_file(tmp_path: Path) -> None:
    signed = SdkCommand.model_validate_json(_command().signed(b"old-secret").model_dump_json(by_alias=True))
    assert signed.verify(load_kill_keys(["new-secret", "old-secret"]), NOW) is None  # rotation
    assert signed.verify(load_kill_keys([b"new-secret"]), NOW) == "bad signature"
    env = {"BURNGUARD_KILL_KEYS": " new-secret , old-secret "}
    assert signed.verify(load_kill_keys(env=env), NOW) is None
    path = tmp_path / "keys"
    path.write_text("# rotated 2026-11\nnew-secret\n  old-secret  \n\n")
    assert len(load_kill_keys(env={"BURNGUARD_KILL_KEYS_FILE": str(path)})) == 2
    assert signed.verify(load_kill_keys(env={"BURNGUARD_KILL_KEYS_FILE": str(path)}), NOW) is None
    assert load_kill_keys(env={"BURNGUARD_KILL_KEYS": "é-key"}).verify(b"x", KillKeys(["é-key"]).sign(b"x"))


def test_missing_keys_fail_without_showing_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no kill-switch key"):
        load_kill_keys(env={})
    with pytest.raises(ValueError, match="cannot read BURNGUARD_KILL_KEYS_FILE"):
        load_kill_keys(env={"BURNGUARD_KILL_KEYS_FILE": str(tmp_path / "absent")})


def test_keys_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    keys = KillKeys(["s3cr3t-current", "s3cr3t-old"])
    logging.getLogger("test").info("keys: %r %s", keys, keys)
    assert "s3cr3t" not in repr(keys) + str(keys) + caplog.text
    with pytest.raises(TypeError):
        __import__("pickle").dumps(keys)
