"""Coerced numbers on the real broker: a worker dead-letters each one with its field named, and none of
them counts as spend (issue 9.4: ``true``, ``"1e3"``, ``" 7 "`` as cost once added $1,008)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from tests.factory import T0, event, task_events
from tests.schemas.coerced import COERCED
from tests.streams.conftest import Names, produce, produce_events, read_until, values

pytestmark = pytest.mark.kafka


async def test_coerced_numbers_reach_the_dlq_with_the_field_named_and_count_nothing(
    names: Names, start_worker: Any
) -> None:
    started = event("task_started", "mixed", T0, workflow="strict")
    valid_step = event("step", "mixed", T0 + 5, workflow="strict", category="tool", cost_usd=0.25)
    coerced = [
        event("step", "mixed", T0 + 10 + i, workflow="strict", category="tool", cost_usd=0.5) | {field: value}
        for i, (field, value) in enumerate(COERCED)
    ]
    finished = event("task_finished", "mixed", T0 + 60, workflow="strict", outcome="success")
    after = task_events("after", T0 + 120, steps=2, cost_per_step=0.01, workflow="strict")

    await names.create_topics()
    worker = start_worker(names.env())
    await produce_events(names.bootstrap, names.events, [started, valid_step])
    placed = await produce(names.bootstrap, names.events, [(b"mixed", orjson.dumps(ev)) for ev in coerced])
    await produce_events(names.bootstrap, names.events, [finished, *after])

    dead = values(await read_until(names.bootstrap, names.dlq, lambda rs: len(rs) >= len(coerced), worker=worker))
    assert len(dead) == len(coerced)
    by_bytes = {base64.b64decode(d["value_b64"]): d for d in dead}
    for ev, (field, value), meta in zip(coerced, COERCED, placed, strict=True):
        letter = by_bytes[orjson.dumps(ev)]
        assert (letter["partition"], letter["offset"]) == (meta.partition, meta.offset)
        assert letter["reason"].startswith(f"{field}: ") and ";" not in letter["reason"], (field, value, letter)

    summaries = values(await read_until(names.bootstrap, names.summaries, lambda rs: len(rs) >= 2, worker=worker))
    by_task = {s["root_task_id"]: s for s in summaries}
    assert by_task["mixed"]["cost_usd"] == pytest.approx(0.25)  # the valid step only: $0 from the coerced lines
    assert by_task["mixed"]["steps"] == 1
    assert by_task["after"]["cost_usd"] == pytest.approx(0.02)
    assert worker.alive()
