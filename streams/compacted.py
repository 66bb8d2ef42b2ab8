"""Reading a compacted topic as a table: every record from the beginning up to the end offsets of
the moment, the way ``burnguard kill list`` reads proposals and ``burnguard silence list`` (and the
alerter, at start) reads silences."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from streams.settings import StreamSettings

__all__ = ["records_to_end", "table_reader"]


@asynccontextmanager
async def table_reader(
    settings: StreamSettings, tps: Sequence[TopicPartition], timeout_s: float
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of no group, assigned ``tps`` at their beginning; stopped on exit."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, request_timeout_ms=int(timeout_s * 1000), **settings.aiokafka_kwargs()
    )
    await consumer.start()
    try:
        consumer.assign(list(tps))
        await consumer.seek_to_beginning(*tps)
        yield consumer
    finally:
        await consumer.stop()


async def records_to_end(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition], timeout_s: float
) -> AsyncIterator[ConsumerRecord]:
    """Every record of ``tps`` from the consumer's positions up to the end offsets at the call, in
    offset order per partition; :class:`TimeoutError` after ``timeout_s`` seconds."""
    ends = await consumer.end_offsets(list(tps))
    deadline = time.monotonic() + timeout_s
    while any([await consumer.position(tp) < ends[tp] for tp in tps]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {tps[0].topic} took more than {timeout_s:g}s")
        for tp, batch in (await consumer.getmany(*tps, timeout_ms=500)).items():
            for record in batch:
                if record.offset < ends[tp]:
                    yield record
