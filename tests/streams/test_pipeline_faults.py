"""Faults inside the worker, on the real broker: a record too large to forward, and an output the
broker refuses. Neither may leave a hole behind a committed offset (issue 9, item 1)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import TopicPartition

from streams.feed import encode_event
from streams.stage import EXIT_STAGE_FAILED
from tests.factory import T0, event, task_events
from tests.streams.conftest import Names, produce, read_until, values

pytestmark = pytest.mark.kafka

TASKS = 40


def fleet() -> list[dict[str, Any]]:
    """``TASKS`` tasks of four $0.01 steps each, a minute apart in event time."""
    evs: list[dict[str, Any]] = []
    for i in range(TASKS):
        evs += task_events(f"t-{i}", T0 + 60 * i, steps=4, cost_per_step=0.01, workflow="faults")
    return evs


async def set_topic_limit(bootstrap: str, topic: str, max_bytes: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(max_bytes)})
        await admin.alter_configs([resource])
    finally:
        await admin.close()


async def committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    return offsets[tp].offset if tp in offsets else -1


def summaries_cover(expected: dict[str, float]) -> Any:
    def done(records: list[Any]) -> bool:
        return {orjson.loads(r.value)["root_task_id"] for r in records} >= set(expected)

    return done


async def test_oversized_records_are_dead_lettered_and_nothing_after_them_is_lost(
    names: Names, start_worker: Any
) -> None:
    evs = fleet()
    # a valid-looking step with a 1,000,000-character name, and a 900 KB invalid one, mid-stream and
    # keyed like their neighbours, so that their partitions' batches go on after them
    huge_name = event("step", "t-15", T0 + 60 * 15 + 7, workflow="faults", category="tool", cost_usd=0.5)
    huge_name["name"] = "x" * 1_000_000
    huge_invalid = event("step", "t-25", T0 + 60 * 25 + 7, workflow="faults", category="tool", cost_usd=-1.0)
    huge_invalid["padding"] = "y" * 900_000
    records = [encode_event(e) for e in evs]
    big = [encode_event(huge_name), encode_event(huge_invalid)]
    records.insert(len(records) // 3, big[0])
    records.insert(2 * len(records) // 3, big[1])
    await names.create_topics()
    worker = start_worker(names.env())
    placed = await produce(names.bootstrap, names.events, records)
    where = {value: meta for (_, value), meta in zip(records, placed, strict=True)}

    expected = {f"t-{i}": 0.04 for i in range(TASKS)}
    got = values(
        await read_until(names.bootstrap, names.summaries, summaries_cover(expected), timeout_s=90, worker=worker)
    )
    costs = {s["root_task_id"]: s["cost_usd"] for s in got}
    assert costs == pytest.approx(expected)  # nothing lost after the big records, and they count $0

    dead = await read_until(names.bootstrap, names.dlq, lambda rs: len(rs) >= 2, worker=worker)
    assert len(dead) == 2
    for record in dead:
        assert len(record.value) < 64 * 1024  # a dead letter always fits
        letter = orjson.loads(record.value)
        original = next(v for v in (b for _, b in big) if hashlib.sha256(v).hexdigest() == letter["value_sha256"])
        assert letter["value_bytes"] == len(original) and letter["value_truncated"] is True
        assert original.startswith(base64.b64decode(letter["value_b64"]))
        assert "bytes, more than the 262144 a cost event may have" in letter["reason"]
        assert (letter["topic"], letter["partition"], letter["offset"]) == (
            names.events,
            where[original].partition,
            where[original].offset,
        )
    log = worker.log.read_text(errors="replace")
    assert "Traceback" not in log and "crashed" not in log.lower() and "cannot go on" not in log
    print(f"records {len(records)} (2 oversized), task summaries {len(got)}, dead letters {len(dead)}, lost 0")


async def test_an_output_the_broker_refuses_stops_the_worker_with_nothing_committed_past_it(
    names: Names, start_worker: Any
) -> None:
    await names.create_topics()
    # the internal topic takes records of at most 4 KB: the ingest cannot forward the 6 KB event below
    await set_topic_limit(names.bootstrap, names.internal, 4096)
    evs = fleet()
    wide = event("step", "t-20", T0 + 60 * 20 + 7, workflow="faults", category="tool", cost_usd=0.25)
    wide["attributes"] = {f"note-{i}": "z" * 750 for i in range(8)}  # valid, about 6.2 KB
    records = [encode_event(e) for e in evs]
    records.insert(len(records) // 2, encode_event(wide))
    worker = start_worker(names.env())
    placed = await produce(names.bootstrap, names.events, records)
    meta = placed[len(records) // 2]

    for _ in range(240):
        if not worker.alive():
            break
        await asyncio.sleep(0.5)
    assert worker.proc.returncode == EXIT_STAGE_FAILED, f"the worker did not stop:\n{worker.tail()}"
    log = worker.log.read_text(errors="replace")
    assert "stage ingest cannot go on" in log, log[-3000:]
    tp = TopicPartition(names.events, meta.partition)
    assert await committed(names.bootstrap, names.app_id, tp) <= meta.offset  # no hole behind a commit

    # the operator raises the limit; the restarted worker processes everything, the wide event once
    await set_topic_limit(names.bootstrap, names.internal, 1_048_588)
    again = start_worker(names.env())
    expected = {f"t-{i}": 0.04 for i in range(TASKS)} | {"t-20": 0.29}
    got = values(
        await read_until(names.bootstrap, names.summaries, summaries_cover(expected), timeout_s=120, worker=again)
    )
    assert {s["root_task_id"]: s["cost_usd"] for s in got} == pytest.approx(expected)
    print(f"worker exit {worker.proc.returncode} at {tp.topic}/{tp.partition}@{meta.offset}; after restart "
          f"{len(got)} task summaries, lost 0")
