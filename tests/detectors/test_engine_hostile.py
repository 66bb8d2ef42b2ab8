"""Hostile input: whatever bytes arrive, the engine answers with anomalies or a reason, never raises."""

from __future__ import annotations

import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.engine import Engine
from tests.factory import T0
from tests.schemas.coerced import COERCED

VALID: dict[str, Any] = {
    "event_id": "e",
    "ts": T0,
    "kind": "step",
    "team": "t",
    "workflow": "w",
    "task_id": "task",
    "category": "model",
    "name": "gpt-4o-mini",
    "input_tokens": 10,
    "output_tokens": 5,
}
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True),
    st.text(max_size=50),
    st.text(min_size=3000, max_size=3001),
)
hostile_values = st.one_of(
    json_scalars,
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
)
ENGINE = Engine()


def _check(result: tuple[list[Any], str | None]) -> None:
    found, reason = result
    assert isinstance(found, list)
    assert reason is None or (isinstance(reason, str) and reason)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(
        [*VALID, "cost_usd", "attempt", "status", "budget_usd", "outcome", "attributes", "root_task_id"]
    ),
    value=hostile_values,
    n=st.integers(0, 10**9),
)
def test_one_hostile_field_never_raises(field: str, value: Any, n: int) -> None:
    ev = {**VALID, "event_id": f"h{n}", field: value}
    try:
        raw = orjson.dumps(ev)
    except TypeError:
        raw = repr(ev).encode()
    _check(ENGINE.process_bytes(raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(raw: bytes) -> None:
    _check(ENGINE.process_bytes(raw))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*sorted(VALID), "kind", "outcome"]), hostile_values, max_size=12))
def test_random_objects_never_raise(obj: dict[str, Any]) -> None:
    _check(ENGINE.process_obj(obj))


def test_nan_and_negative_costs_are_rejected_with_the_field_named() -> None:
    engine = Engine()
    for bad in (math.nan, -0.5, 1e15):
        _, reason = engine.process_obj({**VALID, "event_id": f"n{bad}", "cost_usd": bad})
        assert reason is not None and "cost_usd" in reason
    assert engine.stats.events == 0


def test_absurd_times_do_not_stall_the_engine() -> None:
    """A far-future event inside the accepted range, second of the stream: it moves no time, the
    others are processed, and it comes back rejected with the reason."""
    engine = Engine()
    for i, ts in enumerate([T0, 4_000_000_000.0, T0 + 10, T0 + 20]):
        _check(engine.process_obj({**VALID, "event_id": f"t{i}", "ts": ts, "cost_usd": 0.01}, tag=i))
    engine.finish()
    assert engine.stats.events == 3 and engine.max_ts == T0 + 20
    [(_, tag, reason)] = engine.take_rejected()
    assert tag == 1 and "ahead of the stream's event time" in reason and "max_ahead_s" in reason


def test_coerced_numbers_are_dead_lettered_and_count_nothing() -> None:
    """The issue's five lines (``true``, ``"1e3"``, ``" 7 "`` as cost, ``"3"`` as attempt ...)
    added $1,008 of spend; with every coerced value of tests.schemas.coerced none counts."""
    engine = Engine()
    tool_step = {**VALID, "category": "tool", "cost_usd": 0.5}
    for i, (name, value) in enumerate(COERCED):
        found, reason = engine.process_bytes(orjson.dumps({**tool_step, "event_id": f"c{i}", name: value}))
        assert found == [] and reason is not None and reason.startswith(f"{name}: "), (name, value, reason)
    assert (engine.stats.events, engine.stats.rejected, engine.stats.spend_usd) == (0, len(COERCED), 0.0)
    assert engine.process_bytes(orjson.dumps({**tool_step, "event_id": "ok", "cost_usd": 1}))[1] is None
    engine.finish()  # a stream's first events wait for others to confirm their time, or for its end
    assert engine.stats.spend_usd == 1.0  # an int is a number
