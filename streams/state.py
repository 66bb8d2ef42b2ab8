"""Checkpoints of one partition's :class:`~detectors.engine.Engine`, as entries of a changelogged table.

The detect agent runs one Engine per partition of the workflow-keyed internal topic. After each
batch it writes, for that partition:

- one entry per workflow the batch touched (all of the partition's workflows when an event-time
  tick ran), key = the workflow key (the internal topic's message key, so the table's changelog
  partition is the topic's partition), value = JSON ``{"v", "kind": "workflow", "key", "src",
  "max_ts", "state"}`` where ``state`` is :meth:`Engine.snapshot_workflow` (its detectors and
  baselines, its live tasks, its open episodes) and ``src`` maps each source partition
  (``"topic:partition"``) to the highest source offset folded into that state;
- one shared entry (:meth:`Engine.snapshot_shared`: event time, how far spend is released to the
  roll-up stage, the newest seen event ids), under an *anchor key* chosen to hash to the partition.

A workflow's spend not yet released to its tenant and team (:mod:`detectors.scope_spend`) is in
the workflow's entry, with its ``src``: a crash between two writes of one checkpoint cannot count
a minute twice or lose it. The shared entry is written last, and a restored engine takes its event
time from it alone: a workflow entry that landed before a crash cut its checkpoint short is ahead of
it, and the batch that wrote it is redelivered and folded again from the shared entry's time.

``src`` is what makes redelivery harmless: an event whose source offset is at or below its
workflow's ``src`` was already counted in the state that was restored, and is skipped. A value
larger than ``max_value_bytes`` is split into chunks under anchor keys of the same partition,
so no record exceeds Kafka's message size limit (1 MB by default).

Pure data and no Faust: :mod:`streams.app` moves these entries in and out of the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import orjson

from detectors.engine import Engine
from streams.topics import partition_for_key

__all__ = [
    "CHECKPOINT_VERSION",
    "PartitionState",
    "anchor_key",
    "decode_entries",
    "encode_entry",
    "merge_snapshots",
    "shared_key",
    "workflow_key",
]

log = logging.getLogger("burnguard.streams")
CHECKPOINT_VERSION = 1
WorkflowKey = tuple[str, str, str]
_CHUNK_PREFIX = b"\x00chunk:"
_SHARED_PREFIX = b"\x00partition:"


def workflow_key(tenant: str, team: str, workflow: str) -> bytes:
    """The internal topic's message key and the table key of one workflow's state (UTF-8 JSON).

    >>> workflow_key("acme", "search", "triage")
    b'["acme","search","triage"]'
    """
    return orjson.dumps([tenant, team, workflow])


@lru_cache(maxsize=65_536)
def anchor_key(base: bytes, partition: int, partitions: int) -> bytes:
    """``base`` plus the smallest ``#n`` suffix that the default partitioner sends to ``partition``:
    a table key for data that belongs to a partition rather than to one workflow."""
    n = 0
    while True:
        key = base + b"#" + str(n).encode()
        if partition_for_key(key, partitions) == partition:
            return key
        n += 1


def shared_key(partition: int, partitions: int) -> bytes:
    """The table key of a partition's shared engine state."""
    return anchor_key(_SHARED_PREFIX + str(partition).encode(), partition, partitions)


def encode_entry(key: bytes, value: bytes, partition: int, partitions: int, limit: int) -> dict[bytes, bytes]:
    """The table writes for one value: itself, or a header plus chunks when it exceeds ``limit`` bytes."""
    if len(value) <= limit:
        return {key: value}
    parts = [value[i : i + limit] for i in range(0, len(value), limit)]
    writes = {
        anchor_key(_CHUNK_PREFIX + key + b":" + str(i).encode(), partition, partitions): part
        for i, part in enumerate(parts)
    }
    writes[key] = orjson.dumps({"v": CHECKPOINT_VERSION, "chunks": len(parts), "size": len(value)})
    return writes


def decode_entries(entries: Mapping[bytes, bytes]) -> dict[bytes, dict[str, Any]]:
    """The partition's workflow and shared values by key, chunks joined (as read from the table)."""
    out: dict[bytes, dict[str, Any]] = {}
    for key, value in entries.items():
        if key.startswith(_CHUNK_PREFIX) or not value:
            continue
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.error("checkpoint %r is not JSON, entry ignored: %r", key, value[:100])
            continue
        if not isinstance(obj, dict):
            log.error("checkpoint %r is not a JSON object, entry ignored: %r", key, value[:100])
            continue
        if "chunks" in obj:
            # a chunk key is anchored (``#n`` suffix): find each chunk by its prefix
            prefix = [_CHUNK_PREFIX + key + b":" + str(i).encode() + b"#" for i in range(obj["chunks"])]
            pieces = {p: v for k, v in entries.items() for p in prefix if k.startswith(p)}
            if len(pieces) != obj["chunks"]:
                log.error("checkpoint %r: %d of %d chunks found, entry ignored", key, len(pieces), obj["chunks"])
                continue
            obj = orjson.loads(b"".join(pieces[p] for p in prefix))
        out[key] = obj
    return out


def merge_snapshots(shared: dict[str, Any] | None, parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One :meth:`Engine.snapshot` (for :meth:`Engine.restore`) from a shared part and workflow parts."""
    merged: dict[str, Any] = {
        "v": 1,
        "config_version": "",
        "max_ts": 0.0,
        "next_tick": 0.0,
        "tasks": [],
        "detectors": {},
        "episodes": [],
        "seen": [],
        "finished": [],
        "unpriced": [],
        "kills": {},
    }
    if shared is not None:
        merged.update(shared)
        merged["detectors"] = dict(shared["detectors"])
        merged["tasks"] = list(shared["tasks"])
        merged["episodes"] = list(shared["episodes"])
    minutes = dict(merged.get("minutes") or {"to": None})
    minutes["open"] = list(minutes.get("open") or ())
    for part in parts:
        merged["detectors"].update(part["detectors"])
        merged["tasks"].extend(part["tasks"])
        merged["episodes"].extend(part["episodes"])
        merged["kills"].update(part.get("kills", {}))
        minutes["open"].extend(part.get("minutes", ()))
    merged["minutes"] = minutes
    return merged


class PartitionState:
    """One partition's Engine plus what its checkpoint needs: the source offsets folded into each
    workflow's state, and which workflows changed since the last checkpoint."""

    def __init__(self, partition: int, partitions: int, engine: Engine) -> None:
        self.partition = partition
        self.partitions = partitions
        self.engine = engine
        #: per workflow: "topic:partition" of the source -> highest source offset in the state
        self.src: dict[WorkflowKey, dict[str, int]] = {}
        self.dirty: set[WorkflowKey] = set()
        self._tick_at_checkpoint = engine.next_tick

    # -- redelivery ----------------------------------------------------------------------------
    def seen_offset(self, key: WorkflowKey, source: str, offset: int) -> bool:
        """True when the event at ``source``/``offset`` is already folded into ``key``'s state."""
        done = self.src.get(key)
        return done is not None and offset <= done.get(source, -1)

    def folded(self, key: WorkflowKey, source: str, offset: int) -> None:
        """Record that the event at ``source``/``offset`` is now part of ``key``'s state."""
        done = self.src.setdefault(key, {})
        if offset > done.get(source, -1):
            done[source] = offset
        self.dirty.add(key)

    @property
    def ticked(self) -> bool:
        """True when an event-time tick ran since the last checkpoint (it may have changed any workflow)."""
        return self.engine.next_tick != self._tick_at_checkpoint

    # -- checkpoint ----------------------------------------------------------------------------
    def checkpoint(self, dedup_keep: int, limit: int) -> dict[bytes, bytes]:
        """The table writes that bring the partition's entries up to date; clears ``dirty``."""
        engine = self.engine
        if engine.next_tick != self._tick_at_checkpoint:
            # a tick may have changed any workflow (expired tasks, stale or burn-rate episodes)
            self.dirty.update(self.src)
            self._tick_at_checkpoint = engine.next_tick
        writes: dict[bytes, bytes] = {}
        p, n = self.partition, self.partitions
        for key in sorted(self.dirty):
            value = orjson.dumps(
                {
                    "v": CHECKPOINT_VERSION,
                    "kind": "workflow",
                    "key": list(key),
                    "src": self.src.get(key, {}),
                    "max_ts": engine.max_ts,
                    "state": engine.snapshot_workflow(key),
                }
            )
            writes.update(encode_entry(workflow_key(*key), value, p, n, limit))
        shared = orjson.dumps(
            {"v": CHECKPOINT_VERSION, "kind": "partition", "state": engine.snapshot_shared(keep_ids=dedup_keep)}
        )
        writes.update(encode_entry(shared_key(p, n), shared, p, n, limit))
        self.dirty.clear()
        return writes

    @classmethod
    def restore(
        cls, partition: int, partitions: int, entries: Mapping[bytes, bytes], make_engine: Callable[[], Engine]
    ) -> PartitionState:
        """Rebuild from the table entries of this partition (entries of other partitions are ignored)."""
        mine = {k: v for k, v in entries.items() if partition_for_key(k, partitions) == partition}
        values = decode_entries(mine)
        engine = make_engine()
        state = cls(partition, partitions, engine)
        shared_value = values.pop(shared_key(partition, partitions), None)
        parts = []
        max_ts = 0.0
        for obj in values.values():
            if obj.get("kind") != "workflow" or obj.get("v") != CHECKPOINT_VERSION:
                continue
            key = (str(obj["key"][0]), str(obj["key"][1]), str(obj["key"][2]))
            state.src[key] = {str(s): int(o) for s, o in obj["src"].items()}
            parts.append(obj["state"])
            max_ts = max(max_ts, float(obj.get("max_ts", 0.0)))
        shared = shared_value["state"] if shared_value is not None else None
        if shared is not None or parts:
            snapshot = merge_snapshots(shared, parts)
            if shared is None:  # no shared entry (none was ever written): the workflows' time is all there is
                snapshot["max_ts"] = max(snapshot["max_ts"], max_ts)
            # else the shared entry's event time, with its next tick and release mark: a workflow
            # entry ahead of it is from a checkpoint cut short by a crash, whose batch comes again;
            # at that entry's time, every tick up to it would run before the batch's records are
            # folded again, and they would come late (their spend counted twice by the roll-up)
            engine.restore(snapshot)
        state._tick_at_checkpoint = engine.next_tick
        return state
