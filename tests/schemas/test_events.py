from __future__ import annotations

import gzip
import math

import orjson
import pytest
from pydantic import ValidationError

from detectors.engine import describe_validation_error
from schemas.events import Category, CostEvent, EventKind
from schemas.timefmt import format_ts, parse_ts
from tests.paths import REAL_TRACE
from tests.schemas.coerced import COERCED

DATA = REAL_TRACE
BASE = {
    "event_id": "e1",
    "ts": "2026-11-02T10:00:00.250Z",
    "kind": "step",
    "team": "t",
    "workflow": "w",
    "task_id": "task-1",
    "category": "model",
    "cost_usd": 0.01,
}


def _error_fields(data: dict[str, object]) -> set[str]:
    with pytest.raises(ValidationError) as info:
        CostEvent.model_validate(data)
    return {str(err["loc"][0]) if err["loc"] else "" for err in info.value.errors()}


def test_real_trace_lines_all_validate() -> None:
    with gzip.open(DATA) as fh:
        lines = [next(fh) for _ in range(2000)]
    events = [CostEvent.model_validate_json(line) for line in lines]
    assert {e.kind for e in events} >= {EventKind.TASK_STARTED, EventKind.STEP}
    assert all(e.root_task_id for e in events)


def test_defaults_and_time_forms() -> None:
    ev = CostEvent.model_validate(BASE)
    assert ev.tenant == "default" and ev.root_task_id == "task-1" and ev.attempt == 1
    assert ev.ts == pytest.approx(1793613600.25)
    epoch = CostEvent.model_validate({**BASE, "ts": 1793613600.25})
    assert epoch.ts == ev.ts
    assert format_ts(ev.ts) == "2026-11-02T10:00:00.250Z"


def test_unknown_fields_are_ignored_and_schema_alias_read() -> None:
    ev = CostEvent.model_validate({**BASE, "schema": "burnguard.cost_event/1", "surprise": [1, 2]})
    assert ev.category is Category.MODEL
    assert _error_fields({**BASE, "schema": "burnguard.cost_event/2"}) == {"schema"}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"cost_usd": -1}, "cost_usd"),
        ({"cost_usd": math.nan}, "cost_usd"),
        ({"cost_usd": 1e12}, "cost_usd"),
        ({"cost_usd": "cheap"}, "cost_usd"),
        ({"input_tokens": -5}, "input_tokens"),
        ({"attempt": 0}, "attempt"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"team": "t" * 5000}, "team"),
        ({"ts": "2026-11-02T10:00:00"}, "ts"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": 1793613600250}, "ts"),
        ({"ts": math.inf}, "ts"),
        ({"kind": "explode"}, "kind"),
        ({"status": "maybe"}, "status"),
        ({"category": "snacks"}, "category"),
        ({"budget_usd": 0}, "budget_usd"),
        ({"attributes": {"k": [1, 2]}}, "attributes"),
    ],
)
def test_bad_fields_are_named(patch: dict[str, object], field: str) -> None:
    assert field in _error_fields({**BASE, **patch})


@pytest.mark.parametrize("missing", ["event_id", "ts", "kind", "team", "workflow", "task_id"])
def test_required_fields(missing: str) -> None:
    data = {k: v for k, v in BASE.items() if k != missing}
    assert missing in _error_fields(data)


def test_kind_specific_rules_explain_themselves() -> None:
    with pytest.raises(ValidationError, match="needs 'category'"):
        CostEvent.model_validate({k: v for k, v in BASE.items() if k != "category"})
    with pytest.raises(ValidationError, match="needs 'outcome'"):
        CostEvent.model_validate({**BASE, "kind": "task_finished"})


def test_parse_ts_rejects_booleans_and_zoneless() -> None:
    with pytest.raises(ValueError, match="boolean"):
        parse_ts(True)
    with pytest.raises(ValueError, match="no zone"):
        parse_ts("2026-11-02T10:00:00")


def test_json_bytes_round_trip() -> None:
    raw = orjson.dumps(BASE)
    assert CostEvent.model_validate_json(raw) == CostEvent.model_validate(BASE)


@pytest.mark.parametrize(("field", "value"), COERCED, ids=[f"{f}={v!r}" for f, v in COERCED])
def test_numbers_are_never_coerced(field: str, value: object) -> None:
    """A bool, a string or an integral float for an int field is refused, in JSON and in Python,
    and the reason is one clause naming the field (what the dead letter carries)."""
    data = {**BASE, field: value}
    with pytest.raises(ValidationError) as info:
        CostEvent.model_validate_json(orjson.dumps(data))
    reason = describe_validation_error(info.value)
    assert reason.startswith(f"{field}: ") and ";" not in reason, reason
    assert _error_fields(data) == {field}


def test_what_strict_types_still_accept() -> None:
    """An int where a number is expected (JSON has one number type), epoch seconds or RFC 3339 for
    ``ts``, and attribute values of every allowed type, kept as they came."""
    data = {**BASE, "cost_usd": 1, "budget_usd": 2, "value_usd": -3, "attempt": 2, "input_tokens": 0,
            "ts": 1793613600, "attributes": {"s": "1", "b": True, "i": 2, "f": 0.5, "n": None}}  # fmt: skip
    ev = CostEvent.model_validate_json(orjson.dumps(data))
    assert (ev.cost_usd, ev.budget_usd, ev.value_usd, ev.attempt, ev.ts) == (1.0, 2.0, -3.0, 2, 1793613600.0)
    assert isinstance(ev.cost_usd, float)
    assert ev.attributes == {"s": "1", "b": True, "i": 2, "f": 0.5, "n": None}
    assert [type(v) for v in ev.attributes.values()] == [str, bool, int, float, type(None)]
