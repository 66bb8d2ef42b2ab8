"""A table write never depends on what the producer knows of the table's changelog topic.

The worker's three tables (engine-state, spend-rollup, kill-commands: :func:`streams.raw.raw_table`)
are written outside a single event's processing. Faust's ``use_partitioner`` then asks the
producer's partitioner for the changelog partition (``Channel.as_future_message``, eager
partitioning), and aiokafka's ``AIOKafkaProducer._partition`` runs
``list(cluster.partitions_for_topic(topic))``: ``None``, hence ``TypeError: 'NoneType' object is
not iterable``, whenever the producer's metadata does not hold the changelog — and the table write
is the only path that asks before sending, so nothing ever adds the topic to it. Two ways the
producer lacks it, both real aiokafka behaviour on the real broker:

- the changelog was created after the producer's last metadata refresh: a producer starts knowing
  no topic at all (aiokafka's bootstrap asks for none) and refreshes when forced or every
  ``metadata_max_age_ms``; Faust forces one after creating each changelog at the first assignment,
  and a broker that has not yet published the new topic answers without it;
- the producer has since sent to a topic it had no metadata for: aiokafka then tracks only the
  topics it was asked to wait for, and every refresh after that drops all the others.

Without the fix both raise the ``TypeError`` of the roll-up agent's start-up crash (issue 9 #6).
"""

from __future__ import annotations

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.raw import raw_table
from streams.topics import partition_for_key
from tests.streams.conftest import Names, partitions_of, read_all, wait_until

pytestmark = pytest.mark.kafka
PARTITIONS = 3
KEYS = [f"key-{i}".encode() for i in range(12)]


async def _create(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()

    async def described() -> bool:
        try:
            return len(await partitions_of(bootstrap, [topic])) == PARTITIONS
        except AssertionError:
            return False

    await wait_until(described, f"{topic} described with its partitions", 20)


@pytest.mark.parametrize("how", ["changelog created after the producer started", "producer sent to a new topic"])
async def test_a_table_write_lands_on_its_keys_partition_whatever_the_producer_knows(names: Names, how: str) -> None:
    app = faust.App(
        names.app_id,
        broker=f"kafka://{names.bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        datadir=str(names.data_dir),
        topic_partitions=PARTITIONS,
    )
    table = raw_table(app, "probe", PARTITIONS, "a test table")
    changelog = table.changelog_topic.get_topic_name()
    if how == "producer sent to a new topic":
        await _create(names.bootstrap, changelog)
    await app.producer.start()
    try:
        cluster = app.producer._producer.client.cluster  # type: ignore[attr-defined]
        if how == "changelog created after the producer started":
            await _create(names.bootstrap, changelog)
        else:
            await app.producer._producer.client.force_metadata_update()  # type: ignore[attr-defined]
            assert cluster.partitions_for_topic(changelog) is not None  # known (as after Faust declares it)...
            await _create(names.bootstrap, names.anomalies)
            await (await app.producer.send(names.anomalies, b"k", b"v", None, None, None))
        assert cluster.partitions_for_topic(changelog) is None  # ...and dropped: the state of the crash
        for key in KEYS:
            table[key] = b"value of " + key
        await app.producer.flush()
    finally:
        await app.producer.stop()
    written = await read_all(names.bootstrap, changelog)
    assert sorted((r.key, r.partition) for r in written) == sorted((k, partition_for_key(k, PARTITIONS)) for k in KEYS)
    assert {r.partition for r in written} == set(range(PARTITIONS))  # the keys do spread
    print(f"{how}: {len(written)} table writes on their keys' partitions, none needed the changelog's metadata")
