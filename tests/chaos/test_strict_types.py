"""Chaos: a flood of coerced numbers (every kind of tests.schemas.coerced) mixed with valid events
through a real worker. Every coerced line is dead-lettered with a reason naming its field; the valid
events' spend is replay's, task by task; nothing valid is lost."""

from __future__ import annotations

import base64
import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.factory import T0, event, task_events
from tests.schemas.coerced import COERCED, kind_of
from tests.streams.conftest import Names, WorkerProcess, produce, read_until, values
from tests.streams.reference import reference_run

TASKS = 200
COPIES = 20  # of each coerced (field, value): 26 x 20 = 520 coerced lines
CONFIG = 'version: "chaos-strict-1"\ndefaults:\n  autonomy: observe\n'


def mixed_stream(rng: random.Random) -> tuple[list[tuple[bytes, bytes]], list[tuple[str, Any, bytes]], float]:
    """Valid tasks with the coerced lines spread among their steps (after the start, before the finish).

    Returns the records (key, value) in the order produced, the coerced ones as (field, value, bytes)
    and the valid steps' spend in USD.
    """
    per_task: list[list[tuple[bytes, bytes]]] = []
    coerced: list[tuple[str, Any, bytes]] = []
    valid_usd = 0.0
    pool = [kv for kv in COERCED for _ in range(COPIES)]
    rng.shuffle(pool)
    for i in range(TASKS):
        task = f"chaos-{i}"
        start = T0 + 30 * i
        cost = round(rng.uniform(0.001, 0.05), 4)
        valid_usd += 6 * cost
        evs = task_events(task, start, steps=6, cost_per_step=cost, workflow="strict")
        records = [(task.encode(), orjson.dumps(ev)) for ev in evs]
        share, pool = pool[: len(pool) // (TASKS - i)], pool[len(pool) // (TASKS - i) :]
        for field, value in share:
            bad = event("step", task, start + rng.uniform(1, 30), workflow="strict", category="tool", cost_usd=0.75)
            raw = orjson.dumps(bad | {field: value})
            coerced.append((field, value, raw))
            records.insert(rng.randint(1, len(records) - 1), (task.encode(), raw))  # after start, before finish
        per_task.append(records)
    assert not pool
    stream: list[tuple[bytes, bytes]] = []
    while any(per_task):  # interleave the tasks, each one's records in order
        stream.append(rng.choice([r for r in per_task if r]).pop(0))
    return stream, coerced, valid_usd


async def test_coerced_numbers_flood(names: Names, start_worker: Any, tmp_path: Path) -> None:
    rng = random.Random(94)
    stream, coerced, valid_usd = mixed_stream(rng)
    config = tmp_path / "burnguard.yaml"
    config.write_text(CONFIG)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(value + b"\n" for _, value in stream))
    _, expected = reference_run(path, config)  # replay's task summaries of the same lines
    assert len(expected) == TASKS

    await names.create_topics()
    worker: WorkerProcess = start_worker(names.env(), ["--config", str(config)])
    await produce(names.bootstrap, names.events, stream)
    dead = values(await read_until(names.bootstrap, names.dlq, lambda rs: len(rs) >= len(coerced), 90, worker))
    summaries = values(await read_until(names.bootstrap, names.summaries, lambda rs: len(rs) >= TASKS, 90, worker))

    letters = {base64.b64decode(d["value_b64"]): d["reason"] for d in dead}
    named = Counter(kind_of(f, v) for f, v, raw in coerced if letters.get(raw, "").startswith(f"{f}: "))
    tried = Counter(kind_of(f, v) for f, v, _ in coerced)
    got = {s["root_task_id"]: s["cost_usd"] for s in summaries}
    want = {root: s["cost_usd"] for root, s in expected.items()}
    valid = len(stream) - len(coerced)
    print(f"\nstrict types chaos: {len(stream)} records, {valid} valid, {len(coerced)} coerced "
          f"({len(COERCED)} kinds x {COPIES})")  # fmt: skip
    for kind in sorted(tried):
        print(f"  {kind:>15}: tried {tried[kind]:4d}, dead-lettered naming the field {named[kind]:4d}")
    print(f"  dead letters {len(dead)}, task summaries {len(got)}/{TASKS}, spend ${sum(got.values()):.4f} "
          f"(replay ${sum(want.values()):.4f}, valid steps ${valid_usd:.4f}), "
          f"lost {TASKS - len(set(got) & set(want))}")  # fmt: skip

    assert len(dead) == len(coerced) and named == tried
    assert all(";" not in reason for reason in letters.values())  # one clause each
    assert set(got) == set(want)
    for root, cost in want.items():
        assert got[root] == pytest.approx(cost, abs=1e-9), root
    assert sum(got.values()) == pytest.approx(valid_usd) == sum(want.values())  # $0 from the coerced lines
    assert all(s["steps"] == 6 for s in summaries)  # every valid step counted, no coerced one
    assert worker.alive()
