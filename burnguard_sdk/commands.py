"""Kill commands (``burnguard.kill/1``) and acks (``burnguard.kill_ack/1``) as an agent reads and writes them.

These mirror ``schemas.killswitch`` field for field without its orjson dependency: the signature is
HMAC-SHA256 over the canonical JSON of every field except ``signature`` (keys sorted, no spaces,
UTF-8, ``None`` left out, times as RFC 3339 UTC with milliseconds), and :func:`canonical_json`
produces those bytes with the stdlib. A test checks them against the server's on generated commands.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from burnguard_sdk._timefmt import format_ts, parse_ts
from burnguard_sdk.keys import KillKeys

__all__ = [
    "KILL_ACK_SCHEMA",
    "KILL_SCHEMA",
    "KillAck",
    "KillCommand",
    "KillMode",
    "KillScope",
    "KillTarget",
    "canonical_json",
]

KILL_SCHEMA: Final = "burnguard.kill/1"
KILL_ACK_SCHEMA: Final = "burnguard.kill_ack/1"


class KillScope(StrEnum):
    TASK = "task"
    AGENT = "agent"
    WORKFLOW = "workflow"


class KillMode(StrEnum):
    AUTONOMOUS = "autonomous"
    APPROVED = "approved"


#: The ids a target may name, in the order they are compared.
TARGET_IDS: Final = ("tenant", "team", "workflow", "agent", "task_id", "root_task_id")


class KillTarget(BaseModel):
    """What to halt: ``scope`` plus the ids that name it (``root_task_id`` for a task, ...)."""

    model_config = ConfigDict(extra="forbid")

    scope: KillScope
    tenant: str | None = None
    team: str | None = None
    workflow: str | None = None
    agent: str | None = None
    task_id: str | None = None
    root_task_id: str | None = None

    @property
    def key(self) -> str:
        """The Kafka key of a command for this target: the target's own id."""
        if self.scope is KillScope.TASK:
            return self.root_task_id or self.task_id or ""
        if self.scope is KillScope.AGENT:
            return self.agent or ""
        return self.workflow or ""

    def ids(self) -> dict[str, str]:
        """The ids this target names (those that are set)."""
        return {name: value for name in TARGET_IDS if (value := getattr(self, name)) is not None}


def canonical_json(payload: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8 (not ``\\u`` escapes): the bytes a kill command's signature covers.

    The server writes them with orjson (``OPT_SORT_KEYS``); this is the same text from the stdlib:
    strings and keys through :func:`json.dumps` (``ensure_ascii=False``), floats spelled as orjson
    spells them (shortest round-trip digits, ``1e-7`` rather than Python's ``1e-07``).

    >>> canonical_json({"b": "é", "a": [1, 2.5, 1e-07, 6.1e-05, None, True]})
    b'{"a":[1,2.5,1e-7,0.000061,null,true],"b":"\\xc3\\xa9"}'
    """
    return _encode(payload).encode()


def _encode(value: Any) -> str:
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{_string(k)}:{_encode(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, float):
        return _float(value)
    if value is None or isinstance(value, bool | int):
        return json.dumps(value)
    if isinstance(value, str):
        return _string(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _string(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"JSON object keys must be strings, not {type(text).__name__}")
    return json.dumps(text, ensure_ascii=False)


def _float(value: float) -> str:
    """orjson's spelling of a finite float: Python's shortest repr, but exponents without padding
    (``1e-7``, ``1e+16``) and plain decimals down to 1e-5 (``0.00001``)."""
    if not math.isfinite(value):
        raise ValueError("NaN and infinity are not JSON")
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if power == -5:
        sign, digits = ("-", mantissa[1:]) if mantissa.startswith("-") else ("", mantissa)
        return f"{sign}0.0000{digits.replace('.', '')}"
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


class KillCommand(BaseModel):
    """A signed order to halt a target; ``signature`` is hex HMAC-SHA256 of :meth:`signing_payload`."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["burnguard.kill/1"] = Field(default=KILL_SCHEMA, alias="schema")
    command_id: str = Field(min_length=1, max_length=128)
    anomaly_id: str = Field(min_length=1, max_length=128)
    target: KillTarget
    reason: str = Field(max_length=2000)
    issued_at: float
    expires_at: float
    mode: KillMode
    signature: str | None = None

    @field_validator("issued_at", "expires_at", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> float:
        return parse_ts(value)

    @field_serializer("issued_at", "expires_at")
    def _format_time(self, value: float) -> str:
        return format_ts(value)

    def signing_payload(self) -> bytes:
        body = self.model_dump(mode="json", by_alias=True, exclude={"signature"}, exclude_none=True)
        return canonical_json(body)

    def signed(self, keys: KillKeys) -> KillCommand:
        """A copy signed with the first (current) key of ``keys``."""
        mac = keys.sign(self.signing_payload())
        return self.model_copy(update={"signature": mac})

    def verify(self, keys: KillKeys, now: float) -> str | None:
        """``None`` when signed by any of ``keys`` (rotation) and unexpired at ``now``, else why not."""
        if not self.signature:
            return "unsigned"
        if not keys.verify(self.signing_payload(), self.signature):
            return "bad signature"
        if now >= self.expires_at:
            return "expired"
        return None


class KillAck(BaseModel):
    """A listener's answer on ``burnguard.killswitch.acks`` once its work has halted."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["burnguard.kill_ack/1"] = Field(default=KILL_ACK_SCHEMA, alias="schema")
    command_id: str = Field(min_length=1, max_length=128)
    halted_at: float
    halted_by: str = Field(min_length=1, max_length=256, description="listener identity: host/pid/agent")
    target: KillTarget | None = None

    @field_validator("halted_at", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> float:
        return parse_ts(value)

    @field_serializer("halted_at")
    def _format_time(self, value: float) -> str:
        return format_ts(value)

    def to_json(self) -> bytes:
        return canonical_json(self.model_dump(mode="json", by_alias=True, exclude_none=True))
