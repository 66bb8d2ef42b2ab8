"""The SDK's stdlib canonical JSON is byte for byte the server's (orjson) on generated commands."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from burnguard_sdk import KillCommand as SdkCommand
from burnguard_sdk import KillKeys, canonical_json
from schemas.killswitch import KillCommand, KillMode, KillScope, KillTarget
from schemas.killswitch import canonical_json as server_canonical_json

KEY = b"k" * 32
# every character orjson can encode: no lone surrogates (the server cannot sign those at all)
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
ids = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
times = st.floats(min_value=946_684_800.0, max_value=4_102_444_799.0, allow_nan=False)
targets = st.builds(
    KillTarget,
    scope=st.sampled_from(list(KillScope)),
    tenant=st.none() | text, team=st.none() | text, workflow=st.none() | text,
    agent=st.none() | text, task_id=st.none() | text, root_task_id=st.none() | text,
)  # fmt: skip
commands = st.builds(
    KillCommand,
    command_id=ids, anomaly_id=ids, target=targets, reason=text, issued_at=times, expires_at=times,
    mode=st.sampled_from(list(KillMode)),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(commands, st.booleans())
def test_canonical_bytes_equal_the_servers(command: KillCommand, exclude_none: bool) -> None:
    signed = command.signed(KEY)
    wire = signed.model_dump_json(by_alias=True, exclude_none=exclude_none)
    mine = SdkCommand.model_validate_json(wire)
    assert mine.signing_payload() == signed.signing_payload()
    assert mine.signature == signed.signature
    # expiry as both sides read it from the wire (times travel with millisecond precision)
    server_view = KillCommand.model_validate_json(wire)
    for now in (command.issued_at, command.expires_at, server_view.expires_at):
        assert mine.verify(KillKeys([KEY]), now) == server_view.verify([KEY], now)
    # and the other way round: a command the SDK signs verifies on the server
    theirs = KillCommand.model_validate_json(mine.model_copy(update={"signature": None}).signed(KillKeys([KEY]))
                                             .model_dump_json(by_alias=True))  # fmt: skip
    assert theirs.signature == signed.signature


@settings(max_examples=300, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=20,
))  # fmt: skip
def test_canonical_json_matches_orjson_on_json_values(value: object) -> None:
    """Floats, unicode, control characters, nesting: the same bytes as orjson with sorted keys."""
    assert canonical_json({"v": value}) == server_canonical_json({"v": value})


def test_times_given_as_epoch_numbers_or_other_offsets_sign_the_same() -> None:
    base = KillCommand(
        command_id="c", anomaly_id="a", target=KillTarget(scope=KillScope.TASK, root_task_id="r"),
        reason="ünïcode \u2028 \x00 \U0001f525", issued_at=1_793_613_600.123456, expires_at=1_793_613_660.9999,
        mode=KillMode.APPROVED,
    ).signed(KEY)  # fmt: skip
    wire = json.loads(base.model_dump_json(by_alias=True))
    for issued in (1_793_613_600.123456, "2026-11-02T12:00:00.123+02:00", "2026-11-02T10:00:00.123999Z"):
        variant = wire | {"issued_at": issued, "unknown_field": 1}
        raw = orjson.dumps(variant)
        server = KillCommand.model_validate_json(raw)
        assert SdkCommand.model_validate_json(raw).signing_payload() == server.signing_payload()
        assert SdkCommand.model_validate_json(raw).verify(KillKeys([KEY]), 1_793_613_600.0) is None


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_is_spelled_like_orjson(value: float) -> None:
    assert canonical_json({"x": value}) == orjson.dumps({"x": value})
