"""Kill command ``burnguard.kill/1`` and its acknowledgement (CONTRACT §3)."""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_serializer, field_validator

from schemas.timefmt import format_ts, parse_ts

_TIME = WithJsonSchema({"type": "string", "format": "date-time"})

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


class KillTarget(BaseModel):
    """What to halt: ``scope`` plus the ids that name it (e.g. ``root_task_id`` for a task)."""

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


def canonical_json(payload: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes the signature covers."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


class KillCommand(BaseModel):
    """A signed order to halt a target. ``signature`` is hex HMAC-SHA256 of every other field."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["burnguard.kill/1"] = Field(default=KILL_SCHEMA, alias="schema")
    command_id: str = Field(min_length=1, max_length=128)
    anomaly_id: str = Field(min_length=1, max_length=128)
    target: KillTarget
    reason: str = Field(max_length=2000)
    issued_at: Annotated[float, _TIME]
    expires_at: Annotated[float, _TIME]
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

    def signed(self, secret: bytes) -> KillCommand:
        mac = hmac.new(secret, self.signing_payload(), hashlib.sha256).hexdigest()
        return self.model_copy(update={"signature": mac})

    def verify(self, secrets: list[bytes], now: float) -> str | None:
        """``None`` when valid under any of ``secrets`` (key rotation) and unexpired, else why not."""
        if not self.signature:
            return "unsigned"
        payload = self.signing_payload()
        given = self.signature.encode("utf-8", "surrogatepass")  # bytes: compare_digest refuses non-ASCII str
        if not any(
            hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).hexdigest().encode(), given) for key in secrets
        ):
            return "bad signature"
        if now >= self.expires_at:
            return "expired"
        return None


class KillAck(BaseModel):
    """A listener's answer on ``burnguard.killswitch.acks`` after it halted its work."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["burnguard.kill_ack/1"] = Field(default=KILL_ACK_SCHEMA, alias="schema")
    command_id: str = Field(min_length=1, max_length=128)
    halted_at: Annotated[float, _TIME]
    halted_by: str = Field(min_length=1, max_length=256, description="listener identity: host/pid/agent")
    target: KillTarget | None = None

    @field_validator("halted_at", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> float:
        return parse_ts(value)

    @field_serializer("halted_at")
    def _format_time(self, value: float) -> str:
        return format_ts(value)
