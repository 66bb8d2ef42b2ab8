"""Faust topics and tables of raw bytes: every value burnguard puts on Kafka is JSON it writes and
parses itself, never a Faust codec's (and never pickle)."""

from __future__ import annotations

from typing import Any

import faust

__all__ = ["raw_table", "raw_topic"]


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


def raw_table(app: faust.App, name: str, partitions: int, help: str) -> Any:
    """A changelogged table of bytes, written with ``use_partitioner=True`` (outside a single event's
    processing, so its partition follows the key as the producer partitions it).

    ``key_type``/``value_type`` bytes select the "raw" codec in the changelog and in its recovery: a
    table's serializers come from them, not from a schema; without them Faust writes and reads JSON.
    """
    return app.Table(
        name,
        default=None,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
        help=help,
    )
