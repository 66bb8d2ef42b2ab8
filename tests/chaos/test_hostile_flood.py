"""A hostile flood through a real worker that is SIGKILLed in the middle of it (issue 9).

The task fleet (about 17,700 valid events, 660 root tasks, four incidents) with some 5 % of hostile
records of 20 kinds mixed in at random places — not JSON, binary, tombstones, wrong types, coerced
numbers, bad times, missing fields, names too long, records of 300 KB and 1 MB — produced to four
partitions while the worker runs; it is SIGKILLed once a third of the tasks are summarised, and
started again. Invariants: every valid event counted exactly once (the task summaries equal
replay's, the anomalies too), every hostile record dead-lettered with its reason at its own
partition and offset, and the worker never stopped by its input.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.feed import encode_event
from streams.settings import StreamSettings
from streams.topics import ensure_topics
from tests.streams.conftest import Names, read_all, values, wait_drained, wait_until
from tests.streams.reference import TASK_FLEET_CONFIG, comparable, reference_run, task_fleet

PARTITIONS = 4


def _step(i: int) -> dict[str, Any]:
    """A valid step of a task of its own, in a real workflow: counted, it would add $0.25."""
    return {
        "event_id": f"hostile-{i}",
        "ts": "2026-11-02T03:00:00Z",
        "kind": "step",
        "tenant": "acme",
        "team": "support",
        "workflow": "support-triage",
        "task_id": f"hostile-task-{i}",
        "category": "tool",
        "cost_usd": 0.25,
    }


def _with(**changes: Any) -> Callable[[int], bytes | None]:
    def make(i: int) -> bytes:
        ev = _step(i)
        for field, value in changes.items():
            if value is _DROP:
                ev.pop(field)
            else:
                ev[field] = value
        return orjson.dumps(ev)

    return make


_DROP = object()
HOSTILE: dict[str, Callable[[int], bytes | None]] = {
    "not JSON": lambda i: b'{"event_id": oops',
    "binary": lambda i: bytes(range(256)) * 2,
    "empty value": lambda i: b"",
    "tombstone": lambda i: None,
    "JSON array": lambda i: b"[1, 2, 3]",
    "JSON number": lambda i: b"42",
    "no team": _with(team=_DROP),
    "empty workflow": _with(workflow=""),
    "negative cost": _with(cost_usd=-1.0),
    "NaN cost": lambda i: orjson.dumps(_step(i)).replace(b'"cost_usd":0.25', b'"cost_usd":NaN'),
    "cost as string": _with(cost_usd="1e3"),
    "cost as bool": _with(cost_usd=True),
    "attempt as string": _with(attempt="3"),
    "unknown kind": _with(kind="explode"),
    "not a time": _with(ts="yesterday"),
    "time without zone": _with(ts="2026-11-02T03:00:00"),
    "step without category": _with(category=_DROP),
    "name of 300 chars": _with(name="n" * 300),
    "300 KB record": _with(attributes={"k": "v"}, padding="p" * 300_000),
    "1 MB name": _with(name="x" * 1_000_000),
}
BIG = {"300 KB record", "1 MB name"}


def hostile_stream(events: list[dict[str, Any]], seed: int = 9) -> tuple[list[tuple[bytes, bytes | None]], list[str]]:
    """The fleet's records with the hostile ones at random places; and each record's kind ("valid" or
    the hostile kind), in the same order."""
    rng = random.Random(seed)
    records: list[tuple[bytes, bytes | None]] = [encode_event(e) for e in events]
    kinds = ["valid"] * len(records)
    n = 0
    for kind, make in HOSTILE.items():
        for _ in range(8 if kind in BIG else 45):
            at = rng.randrange(len(records))
            records.insert(at, (f"hostile-task-{n}".encode(), make(n)))
            kinds.insert(at, kind)
            n += 1
    return records, kinds


async def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> list[Any]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, max_request_size=2_000_000
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in records]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def test_a_worker_killed_in_a_hostile_flood_counts_every_valid_event_once(
    names: Names, start_worker: Any, tmp_path: Path
) -> None:
    config = tmp_path / "burnguard.yaml"
    config.write_text(TASK_FLEET_CONFIG)
    events = task_fleet()
    path = tmp_path / "fleet.jsonl"
    path.write_bytes(b"".join(encode_event(ev)[1] + b"\n" for ev in events))
    expected, summaries = reference_run(path, config)
    cutoff = max(ev["ts"] for ev in events) - 300.0
    records, kinds = hostile_stream(events)

    env = names.env(BURNGUARD_PARTITIONS=str(PARTITIONS), BURNGUARD_WATERMARK_INTERVAL_S="0.5")
    await ensure_topics(StreamSettings.from_env(env))
    worker = start_worker(env, ["--config", str(config)])
    producing = asyncio.create_task(produce_all(names.bootstrap, names.events, records))

    async def a_third_summarised() -> bool:
        return len(await read_all(names.bootstrap, names.summaries)) >= len(summaries) // 3

    await wait_until(a_third_summarised, "a third of the tasks summarised", 180, [worker])
    worker.kill()  # SIGKILL in the middle of the flood
    placed = await producing
    worker = start_worker(env, ["--config", str(config)])

    async def all_summarised() -> bool:
        return {r.key.decode() for r in await read_all(names.bootstrap, names.summaries)} >= set(summaries)

    await wait_until(all_summarised, "a summary of every finished root task", 240, [worker])
    await wait_drained(names.bootstrap, names.app_id, [names.events, names.internal], 120, [worker])

    # every valid event counted exactly once: each summary is replay's (copies after the SIGKILL are
    # identical), and no hostile record opened a task or added a cent
    published = {s["root_task_id"]: s for s in values(await read_all(names.bootstrap, names.summaries))
                 if s.get("schema") == "burnguard.task_summary/1"}
    assert published == summaries
    got = values(await read_all(names.bootstrap, names.anomalies))
    assert comparable(got, cutoff, task_level=True) == comparable(expected, cutoff, task_level=True)
    assert comparable(got, cutoff, task_level=False) == comparable(expected, cutoff, task_level=False)

    # every hostile record dead-lettered, with a reason, at its own place; nothing valid among them
    hostile = {(names.events, m.partition, m.offset): kind for m, kind in zip(placed, kinds, strict=True)
               if kind != "valid"}
    letters: dict[tuple[str, int, int], dict[str, Any]] = {}
    for letter in values(await read_all(names.bootstrap, names.dlq)):
        letters[(letter["topic"], letter["partition"], letter["offset"])] = letter
    assert set(letters) == set(hostile), f"missing {set(hostile) - set(letters)}, extra {set(letters) - set(hostile)}"
    assert all(letter["reason"] for letter in letters.values())
    for place, kind in hostile.items():
        if kind in BIG:
            assert "a cost event may have" in letters[place]["reason"], (kind, letters[place]["reason"])
    assert worker.alive()
    log = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    assert "cannot go on" not in log

    tried = Counter(kinds)
    dead = Counter(hostile[p] for p in letters)
    print(f"\nhostile flood: {len(records)} records, {tried['valid']} valid, {len(hostile)} hostile, 1 SIGKILL")
    for kind in HOSTILE:
        print(f"  {kind:<22} tried {tried[kind]:>3}  dead-lettered {dead[kind]:>3}  lost {tried[kind] - dead[kind]}")
    print(f"  task summaries {len(published)} = replay's; anomalies equal replay's; valid events lost 0")
