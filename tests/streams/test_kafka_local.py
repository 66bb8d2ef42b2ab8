"""The project's own Apache Kafka broker (scripts/kafka-local) answers like Kafka, end to end.

Run it with a broker up::

    scripts/kafka-local start
    eval "$(scripts/kafka-local env)"
    .venv/bin/python -m pytest -m kafka tests/streams

Without ``BURNGUARD_KAFKA_BOOTSTRAP`` the test fails (it does not skip): a Kafka test that silently
skips would hide that nothing was tested.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter, defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition

pytestmark = pytest.mark.kafka

PARTITIONS = 3
MESSAGES = 100
KEYS = 10  # agents: every key sends 10 messages, in order


def bootstrap_servers() -> str:
    bootstrap = os.environ.get("BURNGUARD_KAFKA_BOOTSTRAP", "").strip()
    if not bootstrap:
        pytest.fail(
            "BURNGUARD_KAFKA_BOOTSTRAP is not set: start the local Apache Kafka broker with "
            '`scripts/kafka-local start` and then `eval "$(scripts/kafka-local env)"` before running '
            "the kafka tests",
            pytrace=False,
        )
    return bootstrap


def expected_partition(key: bytes) -> int:
    """The Java client's default partitioner for keyed records: murmur2(key) & 0x7fffffff % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


async def wait_for_topic(admin: AIOKafkaAdminClient, topic: str) -> None:
    """Until the topic's metadata shows every partition with a leader."""
    for _ in range(100):
        [described] = await admin.describe_topics([topic])
        partitions = described.get("partitions") or []
        if (
            described.get("error_code") == 0
            and len(partitions) == PARTITIONS
            and all(p["leader"] >= 0 for p in partitions)
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"topic {topic} has no leader for every partition: {described}")


async def test_local_broker_round_trip_with_exact_committed_and_end_offsets() -> None:
    bootstrap = bootstrap_servers()
    topic = f"burnguard-test-{uuid.uuid4().hex[:12]}"
    group = f"burnguard-test-group-{uuid.uuid4().hex[:12]}"
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        async with asyncio.timeout(120):
            # --- a topic of 3 partitions
            response = await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
            errors = {name: code for name, code, *_ in response.topic_errors}
            assert errors == {topic: 0}, f"create_topics: {response}"
            await wait_for_topic(admin, topic)

            # --- 100 keyed messages, 10 per key
            sent: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)  # partition -> in offset order
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
            await producer.start()
            try:
                for i in range(MESSAGES):
                    key = f"agent-{i % KEYS}".encode()
                    value = f"step-{i}".encode()
                    meta = await producer.send_and_wait(topic, value=value, key=key)
                    assert meta.topic == topic
                    assert meta.partition == expected_partition(key), (key, meta)
                    # the broker appends: the n-th record of a partition gets offset n
                    assert meta.offset == len(sent[meta.partition]), (key, meta)
                    sent[meta.partition].append((key, value))
            finally:
                await producer.stop()

            counts = {p: len(sent[p]) for p in range(PARTITIONS)}
            expected = Counter(expected_partition(f"agent-{i % KEYS}".encode()) for i in range(MESSAGES))
            assert counts == {p: expected[p] for p in range(PARTITIONS)}
            # these keys spread over every partition, so each one's offsets are checked below
            assert all(counts.values()), counts

            # --- read them back in a consumer group, commit
            consumer = AIOKafkaConsumer(
                topic,
                bootstrap_servers=bootstrap,
                group_id=group,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                isolation_level="read_committed",
            )
            await consumer.start()
            try:
                received: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
                total = 0
                while total < MESSAGES:
                    batches = await consumer.getmany(timeout_ms=1000)
                    for tp, records in batches.items():
                        for record in records:
                            assert record.key is not None and record.value is not None
                            received[tp.partition].append((record.offset, record.key, record.value))
                            total += 1
                assert total == MESSAGES
                for p in range(PARTITIONS):
                    assert [offset for offset, _, _ in received[p]] == list(range(counts[p]))
                    assert [(k, v) for _, k, v in received[p]] == sent[p]
                assert set(consumer.assignment()) == set(tps)

                await consumer.commit()
                for tp in tps:
                    assert await consumer.committed(tp) == counts[tp.partition]
                    assert await consumer.position(tp) == counts[tp.partition]

                # ListOffsets: earliest 0, latest = number of records, per partition
                assert await consumer.beginning_offsets(tps) == dict.fromkeys(tps, 0)
                assert await consumer.end_offsets(tps) == {tp: counts[tp.partition] for tp in tps}
            finally:
                await consumer.stop()

            # --- the group's committed offsets, as the group coordinator keeps them (OffsetFetch)
            committed = await admin.list_consumer_group_offsets(group)
            assert {tp: meta.offset for tp, meta in committed.items()} == {tp: counts[tp.partition] for tp in tps}

            # a new consumer of the group resumes from the committed offsets: nothing is left to read
            again = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
            await again.start()
            try:
                again.assign(tps)
                for tp in tps:
                    assert await again.position(tp) == counts[tp.partition]
                assert await again.getmany(timeout_ms=1000) == {}
            finally:
                await again.stop()
    finally:
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
