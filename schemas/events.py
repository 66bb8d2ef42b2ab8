"""The cost event, ``burnguard.cost_event/1`` (CONTRACT §1)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from schemas.timefmt import parse_ts

__all__ = [
    "COST_EVENT_SCHEMA",
    "MAX_COST_USD",
    "MISNAMED_COST_FIELDS",
    "Category",
    "CostEvent",
    "EventKind",
    "Outcome",
    "StepStatus",
]

COST_EVENT_SCHEMA: Final = "burnguard.cost_event/1"
#: One event costing more than this is a unit bug (cents or micro-dollars sent as dollars).
MAX_COST_USD = 100_000.0
_MAX_TOKENS = 100_000_000
#: Names producers give a step's cost that the contract does not read (it reads ``cost_usd``). A
#: step carrying one of them and no ``cost_usd`` is still valid (unknown fields are ignored), but
#: the engine counts it and raises one ``misnamed_cost`` notice per name: its money is never $0
#: in silence.
MISNAMED_COST_FIELDS: Final = ("cost", "usd", "price", "costUsd", "total_cost", "cost_usd_total")

_TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
    "description": "event time: RFC 3339 with a zone, or epoch seconds",
}
#: The rules the field table cannot say, as JSON Schema conditionals (for ``burnguard schema export``).
_KIND_RULES: dict[str, Any] = {
    "allOf": [
        {"if": {"properties": {"kind": {"const": "step"}}}, "then": {"required": ["category"]}},
        {"if": {"properties": {"kind": {"const": "task_finished"}}}, "then": {"required": ["outcome"]}},
    ]
}

Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
#: A JSON number as the contract means it: an integer or a decimal, never ``true`` and never a
#: string (``"1e3"``, ``" 7 "``): pydantic's lax mode would read those as 1.0, 1000.0 and 7.0.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
#: A JSON integer: ``3``, never ``3.0``, ``"3"`` or ``true`` (a producer holding a float sends one
#: on some events and not others: rejecting it on the first one is what gets it fixed).
Integer = Annotated[int, Strict()]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
#: A free tag: string, number or bool; ``null`` is read as "no value" (real producers send it).
AttrValue = Annotated[str, StringConstraints(max_length=1024)] | bool | int | float | None


def _carried(value: object) -> bool:
    return value is not None


#: whether the event carries a field it does not read (its value is dropped): see MISNAMED_COST_FIELDS
Carried = SkipJsonSchema[Annotated[bool, BeforeValidator(_carried)]]


class EventKind(StrEnum):
    TASK_STARTED = "task_started"
    STEP = "step"
    TASK_FINISHED = "task_finished"


class Category(StrEnum):
    """What a step's money went to (the event's budget line, before retries are split out)."""

    MODEL = "model"
    EMBEDDING = "embedding"
    RETRIEVAL = "retrieval"
    TOOL = "tool"
    GUARDRAIL = "guardrail"
    COMPUTE = "compute"
    OBSERVABILITY = "observability"
    HUMAN_REVIEW = "human_review"


class StepStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"
    KILLED = "killed"


class CostEvent(BaseModel):
    """One cost event. ``ts`` is held as epoch seconds (float); input may be RFC 3339 or a number.

    ``cost_usd`` stays ``None`` on a model or embedding step that did not carry it: the engine
    prices it from tokens (see :mod:`schemas.pricing`), never counting it as $0.

    Types are exact, in JSON and in Python: a number field takes a number (``1`` or ``0.5``, never
    ``true`` or ``"0.5"``), an integer field an integer (``3``, never ``3.0``), an enum its exact
    string, ``ts`` an RFC 3339 string or epoch seconds (never ``true``). Attribute values keep
    their own type (string, number or bool).
    """

    model_config = ConfigDict(
        extra="ignore", populate_by_name=True, frozen=False, json_schema_extra=_KIND_RULES
    )

    schema_: Literal["burnguard.cost_event/1"] = Field(default=COST_EVENT_SCHEMA, alias="schema")
    event_id: EventId
    ts: Annotated[float, WithJsonSchema(_TIME_SCHEMA)]
    kind: EventKind
    tenant: Name = "default"
    team: Name
    workflow: Name
    agent: Name | None = None
    task_id: Name
    root_task_id: Name | None = None
    parent_task_id: Name | None = None
    category: Category | None = None
    name: Name | None = None
    provider: Name | None = None
    input_tokens: Annotated[Integer, Field(ge=0, le=_MAX_TOKENS)] | None = None
    output_tokens: Annotated[Integer, Field(ge=0, le=_MAX_TOKENS)] | None = None
    cached_input_tokens: Annotated[Integer, Field(ge=0, le=_MAX_TOKENS)] | None = None
    #: USD
    cost_usd: Annotated[Number, Field(ge=0, le=MAX_COST_USD)] | None = None
    attempt: Annotated[Integer, Field(ge=1, le=10_000)] = 1
    status: StepStatus = StepStatus.OK
    #: milliseconds
    duration_ms: Annotated[Integer, Field(ge=0, le=30 * 86_400_000)] | None = None
    #: USD
    budget_usd: Annotated[Number, Field(gt=0, le=10 * MAX_COST_USD)] | None = None
    outcome: Outcome | None = None
    #: USD
    value_usd: Annotated[Number, Field(ge=-10 * MAX_COST_USD, le=10 * MAX_COST_USD)] | None = None
    attributes: (
        Annotated[dict[Annotated[str, StringConstraints(max_length=128)], AttrValue], Field(max_length=64)]
        | None
    ) = None
    # MISNAMED_COST_FIELDS, noticed and never read: not part of the contract, its schema or a dump
    carries_cost: Carried = Field(default=False, alias="cost", exclude=True, repr=False)
    carries_usd: Carried = Field(default=False, alias="usd", exclude=True, repr=False)
    carries_price: Carried = Field(default=False, alias="price", exclude=True, repr=False)
    carries_cost_usd_camel: Carried = Field(default=False, alias="costUsd", exclude=True, repr=False)
    carries_total_cost: Carried = Field(default=False, alias="total_cost", exclude=True, repr=False)
    carries_cost_usd_total: Carried = Field(default=False, alias="cost_usd_total", exclude=True, repr=False)

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_ts(cls, value: Any) -> float:
        return parse_ts(value)

    @model_validator(mode="after")
    def _check_kind(self) -> CostEvent:
        if self.root_task_id is None:
            self.root_task_id = self.task_id
        if self.kind is EventKind.STEP and self.category is None:
            raise ValueError("a 'step' event needs 'category' (model, embedding, retrieval, tool, ...)")
        if self.kind is EventKind.TASK_FINISHED and self.outcome is None:
            raise ValueError("a 'task_finished' event needs 'outcome' (success, failure, ...)")
        return self

    @property
    def root(self) -> str:
        """The root task id (never ``None`` after validation)."""
        return self.root_task_id or self.task_id

    @property
    def misnamed_cost(self) -> tuple[str, ...]:
        """The names of :data:`MISNAMED_COST_FIELDS` this event carries when it has no ``cost_usd``
        (else none): the cost its producer meant to send, which the contract does not read.

        >>> CostEvent.model_validate({"event_id": "e", "ts": 1793613600, "kind": "step", "team": "t",
        ...     "workflow": "w", "task_id": "x", "category": "tool", "cost": 0.2}).misnamed_cost
        ('cost',)
        """
        if self.cost_usd is not None:
            return ()
        carried = (
            self.carries_cost,
            self.carries_usd,
            self.carries_price,
            self.carries_cost_usd_camel,
            self.carries_total_cost,
            self.carries_cost_usd_total,
        )
        return tuple(name for name, present in zip(MISNAMED_COST_FIELDS, carried, strict=True) if present)

    @property
    def is_failed_or_retry(self) -> bool:
        """True when this step's money belongs to the *failures and retries* budget line."""
        return self.status is StepStatus.ERROR or self.attempt > 1
