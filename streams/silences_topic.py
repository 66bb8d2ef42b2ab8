"""The silences topic: the compacted record of every silence, what every ``burnguard alerter`` obeys.

Key = silence id, value = the silence's JSON (:class:`~alerting.silences.Silence`); the latest record
of an id is that silence. ``burnguard silence add`` writes a new id, ``silence expire`` rewrites the
id with ``ends_at`` = now, so compaction keeps one record per silence. The alerter reads the topic
from the beginning when it starts, before it takes in any anomaly, then follows it
(:class:`SilenceFeed`): a silence added on any machine is obeyed by every alerter within about a
second (:data:`FOLLOW_POLL_S`), without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from alerting.silences import Silence, SilenceStore
from schemas.timefmt import format_ts
from streams.compacted import records_to_end, table_reader
from streams.settings import StreamSettings

__all__ = ["FOLLOW_POLL_S", "SilenceFeed", "publish_silence", "read_silences"]

log = logging.getLogger("burnguard.alerter")

#: the longest the alerter waits for a new silence record before polling again (seconds)
FOLLOW_POLL_S = 0.5


def _decode(value: bytes | None, where: str) -> Silence | None:
    if value is None:
        return None  # a tombstone: the id is gone
    try:
        return Silence.model_validate_json(value)
    except ValidationError as exc:
        log.warning("silences topic %s: a record that is not a silence, ignored (%s)", where, exc.errors()[0]["msg"])
        return None


async def _partitions(settings: StreamSettings, timeout_s: float, *, create: bool = False) -> list[TopicPartition]:
    """The topic's partitions (none before it exists, unless ``create``: then it is created as the
    worker would). :class:`~streams.topics.BrokerUnreachable` when the broker does not answer."""
    from streams.topics import BrokerUnreachable, topic_specs, unreachable_message

    topic = settings.silences_topic
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout_s * 1000), **settings.aiokafka_kwargs())
    try:
        try:
            await asyncio.wait_for(admin.start(), timeout_s)
        except (TimeoutError, KafkaError, OSError) as exc:
            raise BrokerUnreachable(unreachable_message(settings, exc)) from None
        if create and topic not in set(await admin.list_topics()):
            (spec,) = [s for s in topic_specs(settings) if s.name == topic]
            await admin.create_topics(
                [NewTopic(spec.name, spec.partitions, spec.replication, topic_configs=spec.config)]
            )
        for _ in range(50):  # a topic created a moment ago may be described with no partitions yet
            described = await admin.describe_topics([topic])
            tps = [TopicPartition(topic, p["partition"]) for d in described for p in d.get("partitions") or ()]
            if tps or not create:
                return tps
            await asyncio.sleep(0.1)
        return []
    finally:
        await admin.close()


async def _read_to_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition], timeout_s: float) -> dict[str, Silence]:
    """Every silence on ``tps`` (assigned to ``consumer`` at the beginning), up to the current end."""
    found: dict[str, Silence] = {}
    async for record in records_to_end(consumer, tps, timeout_s):
        silence = _decode(record.value, f"{record.partition}@{record.offset}")
        if silence is not None:
            found[silence.silence_id] = silence
        elif record.value is None and record.key is not None:
            found.pop(record.key.decode(errors="replace"), None)
    return found


async def read_silences(settings: StreamSettings, timeout_s: float = 20.0) -> dict[str, Silence]:
    """The latest record of every silence on the topic, read to its current end (``{}`` before the
    topic exists)."""
    tps = await _partitions(settings, timeout_s)
    if not tps:
        return {}
    async with table_reader(settings, tps, timeout_s) as consumer:
        return await _read_to_end(consumer, tps, timeout_s)


async def publish_silence(settings: StreamSettings, silence: Silence) -> None:
    """Write ``silence`` (new, or its new state) and wait for the broker's acknowledgement; the
    topic is created first if no worker or alerter has done it."""
    await _partitions(settings, 20.0, create=True)
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **settings.aiokafka_kwargs())
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.silences_topic, key=silence.silence_id.encode(), value=silence.model_dump_json().encode()
        )
    finally:
        await producer.stop()


class SilenceFeed:
    """The alerter's follower of the silences topic: :meth:`start` reads it from the beginning into
    ``store``; :meth:`follow` applies each new record until stopped. No consumer group: every
    alerter, active member or standby, reads every record."""

    def __init__(self, settings: StreamSettings, store: SilenceStore) -> None:
        self.settings = settings
        self.store = store
        self.consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.aiokafka_kwargs())
        self._tps: list[TopicPartition] = []

    async def start(self, timeout_s: float = 20.0) -> None:
        self._tps = await _partitions(self.settings, timeout_s, create=True)
        await self.consumer.start()
        if not self._tps:
            return
        self.consumer.assign(self._tps)
        await self.consumer.seek_to_beginning(*self._tps)
        now = time.time()
        for silence in (await _read_to_end(self.consumer, self._tps, timeout_s)).values():
            self.store.apply(silence)
        active = [s for s in self.store.remote.values() if s.active(now)]
        log.info("silences: %d in force from %s", len(active), self.settings.silences_topic)

    async def follow(self, stop: asyncio.Event) -> None:
        """Apply each new silence record as it arrives, until ``stop`` is set."""
        while not stop.is_set() and self._tps:
            try:
                batches = await self.consumer.getmany(timeout_ms=int(FOLLOW_POLL_S * 1000))
            except KafkaError as exc:  # the broker is away: the silences known stay in force meanwhile
                log.warning("silences topic not read (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(1.0)
                continue
            for tp, batch in batches.items():
                for record in batch:
                    silence = _decode(record.value, f"{tp.partition}@{record.offset}")
                    if silence is None:
                        if record.value is None and record.key is not None:
                            self.store.remote.pop(record.key.decode(errors="replace"), None)
                        continue
                    self.store.apply(silence)
                    state = "in force" if silence.active(time.time()) else "ended"
                    log.info(
                        "silence %s %s: %s until %s (by %s)",
                        silence.silence_id,
                        state,
                        silence.conditions(),
                        format_ts(silence.ends_at),
                        silence.created_by or "unknown",
                    )

    async def stop(self) -> None:
        await self.consumer.stop()
