"""The listener survives hostile records and a broker that is not there yet."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import AIOKafkaProducer

from burnguard_sdk import CostReporter, Halted, KillSwitchListener, Reason, Rejection
from tests.burnguard_sdk.conftest import SdkTopics, TcpForwarder, eventually, free_port

pytestmark = pytest.mark.kafka


async def test_hostile_records_are_reported_and_the_listener_goes_on(topics: SdkTopics) -> None:
    rejected: list[Rejection] = []
    valid = topics.signed(topics.command({"root_task_id": "t-hostile"}))
    wire = json.loads(valid.model_dump_json(by_alias=True))
    hostile: list[bytes | None] = [
        None,  # a tombstone
        b"",
        b"[1, 2, 3]",
        b"\xff\xfe not utf-8",
        json.dumps(wire | {"signature": "é" * 64}).encode(),  # non-ASCII signature: no crash in compare_digest
        json.dumps(wire | {"signature": 12345}).encode(),
        json.dumps(wire | {"issued_at": "yesterday"}).encode(),
        json.dumps(wire | {"target": {"scope": "task", "root_task_id": "t-hostile", "extra": "x"}}).encode(),
        json.dumps(wire | {"reason": "x" * 100_000}).encode(),
        json.dumps(wire | {"expires_at": 1e300}).encode(),
    ]
    listener = KillSwitchListener(topics.bootstrap, secrets=[topics.key], topic=topics.killswitch,
                                  acks_topic=topics.acks, on_rejected=rejected.append)  # fmt: skip
    reporter = CostReporter(topics.bootstrap, team="t", workflow="w", topic=topics.events)
    async with listener, reporter:
        assert await listener.wait_ready(30)
        async with reporter.task("t-hostile") as run, listener.guard(run) as guard:
            producer = AIOKafkaProducer(bootstrap_servers=topics.bootstrap, acks="all")
            await producer.start()
            try:
                for value in hostile:
                    await producer.send_and_wait(topics.killswitch, value=value, key=b"t-hostile")
            finally:
                await producer.stop()
            await eventually(lambda: listener.stats["received"] == len(hostile), "every record to be read")
            assert not guard.halted
            await topics.publish(valid)  # still listening: a valid command halts
            await eventually(lambda: guard.halted, "the valid command to halt")
    assert listener.stats["errors"] == 0
    assert sorted(r.reason for r in rejected) == sorted([Reason.MALFORMED] * 9 + [Reason.BAD_SIGNATURE])


async def test_listener_started_before_kafka_answers_catches_up(topics: SdkTopics) -> None:
    forwarder = TcpForwarder(free_port(), topics.bootstrap)
    listener = KillSwitchListener(f"127.0.0.1:{forwarder.port}", secrets=[topics.key], topic=topics.killswitch,
                                  acks_topic=topics.acks)  # fmt: skip
    await listener.start()
    try:
        assert not await listener.wait_ready(1.0)
        command = topics.signed(topics.command({"root_task_id": "t-early-start"}))
        await topics.publish(command)  # issued while this listener could not read anything
        halted = asyncio.Event()
        await forwarder.open()
        assert await listener.wait_ready(60)
        with pytest.raises(Halted):
            async with listener.guard(task_id="t-early-start", on_halt=lambda c: halted.set()):
                pass
        assert halted.is_set()
    finally:
        await listener.stop()
        await forwarder.close()
    assert [a["command_id"] for a in await topics.acks_for()] == [command.command_id]
