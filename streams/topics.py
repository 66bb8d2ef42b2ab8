"""The pipeline's topics (CONTRACT §1–2), created with explicit settings before the worker starts.

Creating them here, with the admin client, rather than leaving it to a broker's auto-creation
(one partition, the broker's retention) gives every topic the configured partition count and
retention, and turns an unreachable broker into one clear error instead of a worker that retries
forever.

The internal topic and the state table are co-partitioned by the workflow key, with the same
partitioner as the producer (:func:`partition_for_key`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from streams.settings import StreamSettings

__all__ = [
    "ALERTS_STATE_CONFIG",
    "BrokerUnreachable",
    "TopicSpec",
    "ensure_topics",
    "partition_for_key",
    "topic_specs",
    "unreachable_message",
]

log = logging.getLogger("burnguard.streams")
_TOPIC_ALREADY_EXISTS = 36
#: compacted, and large enough for a storm's snapshot (the producer compresses it)
ALERTS_STATE_CONFIG = {"cleanup.policy": "compact", "max.message.bytes": str(16 * 1024 * 1024)}


class BrokerUnreachable(RuntimeError):
    """The Kafka bootstrap servers did not answer; the message says what to do."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: name, partitions, replication factor and topic-level configuration."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=65_536)  # murmur2 is pure Python; the ingest asks once per event, of few keys
def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition a keyed record goes to: Kafka's default partitioner (murmur2), as in the Java
    client and aiokafka, so the worker knows which table entries belong to which partition.

    >>> partition_for_key(b"agent-1", 3)
    1
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def topic_specs(settings: StreamSettings) -> list[TopicSpec]:
    """Every topic the worker reads or writes (the state table's changelog is Faust's own)."""
    retention = {"retention.ms": str(int(settings.retention_s * 1000)), "cleanup.policy": "delete"}
    p, r = settings.partitions, settings.replication
    return [
        TopicSpec(settings.events_topic, p, r, dict(retention)),
        TopicSpec(settings.internal_topic, p, r, dict(retention)),
        TopicSpec(settings.rollup_topic, p, r, dict(retention)),
        TopicSpec(settings.anomalies_topic, p, r, dict(retention)),
        TopicSpec(settings.summaries_topic, p, r, dict(retention)),
        # dead letters are kept longer: someone has to look at them
        TopicSpec(settings.dlq_topic, p, r, {**retention, "retention.ms": str(int(4 * settings.retention_s * 1000))}),
        # the alerting stage (streams.alerter): notifications that could not be delivered, and its
        # state (one compacted record per consumer group: the latest snapshot is all that matters)
        TopicSpec(
            settings.alerts_dlq_topic, 1, r, {**retention, "retention.ms": str(int(4 * settings.retention_s * 1000))}
        ),
        TopicSpec(settings.alerts_state_topic, 1, r, ALERTS_STATE_CONFIG),
        # the kill switch: commands and acks as a log; the proposals compacted (the latest state of
        # each command id); the internal topic feeds the outstanding-commands table, partitioned like
        # the acks and the proposals (same key, same count) so one worker holds all of a command
        TopicSpec(settings.killswitch_topic, p, r, dict(retention)),
        TopicSpec(settings.kill_acks_topic, p, r, dict(retention)),
        TopicSpec(settings.kill_proposals_topic, p, r, {"cleanup.policy": "compact"}),
        TopicSpec(settings.kill_internal_topic, p, r, dict(retention)),
        # silences (streams.silences_topic): compacted, the latest record of each silence id; one
        # partition, so every alerter reads them in the order they were written
        TopicSpec(settings.silences_topic, 1, r, {"cleanup.policy": "compact"}),
    ]


def unreachable_message(settings: StreamSettings, exc: BaseException) -> str:
    """What to say when the broker does not answer: where, why, and what to do."""
    return (
        f"cannot reach Kafka at {settings.bootstrap} ({type(exc).__name__}: {exc}). Start a broker "
        '(scripts/kafka-local start; eval "$(scripts/kafka-local env)") or point BURNGUARD_KAFKA_BOOTSTRAP '
        "/ --bootstrap at a running one, and check the security settings."
    )


async def ensure_topics(settings: StreamSettings, timeout_s: float = 20.0) -> dict[str, int]:
    """Create the missing topics; return every topic's partition count.

    Raises :class:`BrokerUnreachable` when the broker does not answer within ``timeout_s``, and
    ``RuntimeError`` when an existing internal topic has a partition count other than configured
    (the state table would no longer line up with it).
    """
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout_s * 1000), **settings.aiokafka_kwargs())
    try:
        try:
            await asyncio.wait_for(admin.start(), timeout_s)
        except (TimeoutError, KafkaError, OSError) as exc:
            raise BrokerUnreachable(unreachable_message(settings, exc)) from None
        specs = topic_specs(settings)
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            response = await admin.create_topics(
                [NewTopic(s.name, s.partitions, s.replication, topic_configs=s.config) for s in missing]
            )
            for name, code, *rest in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"creating topic {name} failed: error {code} {rest}")
            log.info("created topics %s", ", ".join(s.name for s in missing))
        counts = await _partition_counts(admin, [s.name for s in specs], timeout_s)
        keyed_alike = (settings.kill_internal_topic, settings.kill_acks_topic, settings.kill_proposals_topic)
        for name in (settings.internal_topic, settings.rollup_topic, *keyed_alike):
            internal = counts.get(name)
            if internal is not None and internal != settings.partitions:
                raise RuntimeError(
                    f"topic {name} has {internal} partitions, the settings say {settings.partitions}: "
                    "the worker's state is partitioned like it, so keep BURNGUARD_PARTITIONS equal to it "
                    "(or start a new app id with new topic names)"
                )
        return counts
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float) -> dict[str, int]:
    """Partition count of each topic once every partition has a leader: a topic created a moment
    ago may still be described with no partitions at all."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts: dict[str, int] = {}
        ready = True
        for described in await admin.describe_topics(topics):
            partitions = described.get("partitions") or []
            counts[described["topic"]] = len(partitions)
            ready = ready and described.get("error_code") == 0 and bool(partitions)
            ready = ready and all(p.get("leader", -1) >= 0 for p in partitions)
        if ready or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.2)
