"""Faust topics and tables of raw bytes: every value burnguard puts on Kafka is JSON it writes and
parses itself, never a Faust codec's (and never pickle)."""

from __future__ import annotations

from typing import Any

import faust

from streams.topics import partition_for_key

__all__ = ["KeyPartitionedTable", "raw_table", "raw_topic"]


def raw_topic(app: faust.App, name: str, partitions: int) -> faust.TopicT:
    """A topic whose keys and values pass through as bytes."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=False,
    )


class KeyPartitionedTable(faust.Table):
    """A table whose changelog partition is a function of the key alone: Kafka's default
    partitioner over the table's ``partitions`` (:func:`streams.topics.partition_for_key`).

    Faust's ``use_partitioner`` asks the producer's partitioner instead, before sending, and aiokafka
    answers ``TypeError: 'NoneType' object is not iterable`` while the producer's metadata lacks the
    changelog topic (a fresh producer knows no topic until a refresh; one that has waited for a
    new topic drops every topic it was not asked to wait for). A send with its partition set
    waits for the topic's metadata instead (``tests/streams/test_raw_table.py``).
    """

    def partition_for_key(self, key: Any) -> int:
        if self.partitions is None:  # raw_table always sets them
            raise TypeError(f"table {self.name} has no partition count")
        return partition_for_key(key, self.partitions)


def raw_table(app: faust.App, name: str, partitions: int, help: str) -> Any:
    """A changelogged table of bytes keyed by bytes, writable outside a single event's processing;
    an entry lives on the changelog partition of its key (:class:`KeyPartitionedTable`), the one
    the producer's default partitioner would choose.

    ``key_type``/``value_type`` bytes select the "raw" codec in the changelog and in its recovery: a
    table's serializers come from them, not from a schema; without them Faust writes and reads JSON.
    """
    table = KeyPartitionedTable(
        app,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
        help=help,
    )
    return app.tables.add(table)
