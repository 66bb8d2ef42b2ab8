"""The roll-up stage: tenant- and team-level burn rates and money budgets over every partition's spend.

Each detect partition's :class:`~detectors.engine.Engine` holds only its own workflows (the
internal topic is keyed by workflow), while a team's or a tenant's workflows are spread over every
partition. So the detect engines run with ``roll_up``: at each event-time tick ``T`` an engine
releases its workflows' spend of the whole minutes that ended by ``T + lateness``
(:mod:`detectors.scope_spend`) and, after the batch, the detect stage sends every partition of the
roll-up topic one *report* (:func:`spend_reports`): per tick, the minutes of the tenants that hash
to that roll-up partition — an empty list too, which says the minutes are complete. The roll-up
topic is thereby keyed by tenant: one roll-up partition judges all of a tenant's spend.

:class:`RollupState` (one per roll-up partition) counts a detect partition's minutes once: it keeps,
per detect partition, the end of the minutes it has counted (``covered``), so a redelivered or
re-sent report adds nothing, and a report that leaves a gap waits for the one before it. Once
every detect partition has covered the minutes up to a tick's ``T + lateness``, it feeds them, in
canonical order, to its own engine's tenant and team detectors and ticks them at ``T``
(:meth:`~detectors.engine.Engine.tick_rolled_up`): the same minutes, order and ticks as in
``burnguard replay``, hence the same anomalies under the same ids. Its whole state — counted
minutes, pending ticks, the detectors — is one checkpoint per roll-up partition in a changelogged
table, written in the batch that changed it, before the batch is acknowledged.

Pure data and no Faust: :mod:`streams.rollup_stage` moves the records.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from detectors.config import Autonomy, BurnguardConfig
from detectors.engine import Engine
from detectors.scope_spend import MinuteSpend, RolledUpTick, parse_minutes
from streams.state import CHECKPOINT_VERSION, anchor_key, decode_entries, encode_entry
from streams.topics import partition_for_key

__all__ = [
    "REPORT_SCHEMA",
    "RollupPipeline",
    "RollupResult",
    "RollupState",
    "RollupStats",
    "parse_report",
    "rollup_key",
    "spend_reports",
]

log = logging.getLogger("burnguard.streams")
#: the value of a record of the roll-up topic (internal to the worker, not part of the contract)
REPORT_SCHEMA = "burnguard.spend_report/1"
_PREFIX = b"\x00rollup:"


def _num(x: float) -> float | None:
    return None if math.isinf(x) else x


def spend_reports(partition: int, ticks: Sequence[RolledUpTick], partitions: int) -> list[tuple[int, bytes]]:
    """The records detect partition ``partition`` sends after a batch whose engine ticked ``ticks``:
    one per roll-up partition (of ``partitions``), with the minutes of the tenants hashing to it.

    >>> from detectors.scope_spend import RolledUpTick
    >>> minute = (840.0, "acme", "ops", "audit", 1.5, 1.0, 850.0, [1, -0.5, 0.25, 0.6], [[845.0, "r1", 0.3, 4, 0, 0]])
    >>> tick = RolledUpTick(600.0, 840.0, 900.0, [minute])
    >>> [(p, source, [t.minutes for t in ticks]) for p, (source, ticks) in
    ...  ((p, parse_report(v)) for p, v in spend_reports(3, [tick], 2))] == [(0, 3, [[minute]]), (1, 3, [[]])]
    True
    """
    if not ticks:
        return []
    out: list[list[Any]] = [[] for _ in range(partitions)]
    for tick in ticks:
        split: list[list[MinuteSpend]] = [[] for _ in range(partitions)]
        for m in tick.minutes:
            split[partition_for_key(m[1].encode(), partitions)].append(m)
        for r in range(partitions):
            out[r].append([tick.tick, _num(tick.since), tick.until, split[r]])
    return [(r, orjson.dumps({"schema": REPORT_SCHEMA, "from": partition, "ticks": out[r]})) for r in range(partitions)]


def parse_report(value: bytes | None) -> tuple[int, list[RolledUpTick]]:
    """``(detect partition, ticks)`` of a report; ``ValueError`` when it is not one."""
    try:
        obj = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"spend report: not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("schema") != REPORT_SCHEMA or not isinstance(obj.get("ticks"), list):
        raise ValueError(f"spend report: not a {REPORT_SCHEMA} object")
    ticks = []
    for row in obj["ticks"]:
        tick, since, until, minutes = row
        since = -math.inf if since is None else float(since)
        ticks.append(RolledUpTick(float(tick), since, float(until), parse_minutes(minutes)))
    return int(obj["from"]), ticks


def rollup_key(partition: int, partitions: int) -> bytes:
    """The table key of roll-up partition ``partition``'s checkpoint (it hashes to that partition)."""
    return anchor_key(_PREFIX + str(partition).encode(), partition, partitions)


@dataclass(slots=True)
class RollupStats:
    reports: int = 0
    #: ticks of reports whose minutes were all counted already (redelivered or sent again)
    duplicates: int = 0
    #: ticks of reports that arrived before an earlier one of the same partition (they waited)
    early: int = 0
    bad_reports: int = 0
    ticks: int = 0
    anomalies: int = 0


class RollupState:
    """One roll-up partition: which minutes of each of the ``sources`` detect partitions it has
    counted, the minutes and ticks waiting for the other partitions, and the engine that judges them."""

    def __init__(self, sources: int, engine: Engine, stats: RollupStats | None = None) -> None:
        self.sources = sources
        self.engine = engine
        self.stats = stats if stats is not None else RollupStats()
        #: detect partition -> every minute of it before this time (epoch s) is counted
        self.covered: dict[int, float] = {}
        #: detect partition -> ticks received before the one they follow
        self.waiting: dict[int, list[RolledUpTick]] = {}
        #: tick time -> the end of the minutes it needs, for ticks not yet run
        self.ticks: dict[float, float] = {}
        self.minutes: list[MinuteSpend] = []
        self.last_tick = -math.inf

    def add(self, source: int, tick: RolledUpTick) -> None:
        """One detect partition's tick (see :func:`spend_reports`), in any order, any number of times."""
        covered = self.covered.get(source, -math.inf)
        if tick.until <= covered:
            self.stats.duplicates += 1
            return
        if tick.since > covered:  # an earlier tick of this partition has not arrived yet
            self.stats.early += 1
            self.waiting.setdefault(source, []).append(tick)
            return
        # since < covered: the partition restarted from an older state and sends minutes again
        self.minutes.extend(m for m in tick.minutes if m[0] >= covered)
        self.covered[source] = tick.until
        if tick.tick > self.last_tick:
            self.ticks[tick.tick] = max(self.ticks.get(tick.tick, -math.inf), tick.until)
        waiting = self.waiting.get(source)
        if waiting:
            self.waiting[source] = []
            for held in sorted(waiting):
                self.add(source, held)
            if not self.waiting[source]:
                del self.waiting[source]

    def complete_to(self) -> float:
        """Every minute before this time is here from every detect partition (``-inf``: not yet)."""
        if len(self.covered) < self.sources:
            return -math.inf
        return min(self.covered.values())

    def run_ticks(self) -> list[Any]:
        """Run every tick whose minutes are complete, in order; the anomalies they raised."""
        out: list[Any] = []
        complete = self.complete_to()
        for tick in sorted(self.ticks):
            until = self.ticks[tick]
            if until > complete:
                break
            del self.ticks[tick]
            due = [m for m in self.minutes if m[0] < until]
            self.minutes = [m for m in self.minutes if m[0] >= until]
            out += self.engine.tick_rolled_up(tick, due)
            self.last_tick = tick
            self.stats.ticks += 1
        self.stats.anomalies += len(out)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "v": CHECKPOINT_VERSION,
            "kind": "rollup",
            "covered": {str(p): c for p, c in self.covered.items()},
            "waiting": {
                str(p): [[t.tick, _num(t.since), t.until, t.minutes] for t in w] for p, w in self.waiting.items()
            },
            "ticks": sorted(self.ticks.items()),
            "minutes": self.minutes,
            "last_tick": _num(self.last_tick),
            "engine": self.engine.snapshot(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.covered = {int(p): float(c) for p, c in data["covered"].items()}
        self.waiting = {
            int(p): [
                RolledUpTick(float(t), -math.inf if s is None else float(s), float(u), parse_minutes(m))
                for t, s, u, m in w
            ]
            for p, w in data["waiting"].items()
        }
        self.ticks = {float(t): float(u) for t, u in data["ticks"]}
        self.minutes = parse_minutes(data["minutes"])
        self.last_tick = -math.inf if data["last_tick"] is None else float(data["last_tick"])
        self.engine.restore(data["engine"])


@dataclass(slots=True)
class RollupResult:
    """What a batch of reports produced: anomalies (key, value), table writes, bad records."""

    anomalies: list[tuple[bytes, bytes]] = field(default_factory=list)
    state: dict[bytes, bytes] = field(default_factory=dict)
    #: (partition, offset, reason) of records that are not reports
    bad: list[tuple[int, int, str]] = field(default_factory=list)


class RollupPipeline:
    """The roll-up agent's work: one :class:`RollupState` per roll-up partition, restored from and
    checkpointed to table entries; ``sources`` detect partitions report to each."""

    def __init__(
        self,
        config: BurnguardConfig,
        *,
        partitions: int,
        sources: int,
        autonomy: Autonomy | str | None = None,
        max_value_bytes: int = 512 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.partitions = partitions
        self.sources = sources
        self.autonomy = autonomy
        self.max_value_bytes = max_value_bytes
        self.clock = clock
        self.stats = RollupStats()
        self.states: dict[int, RollupState] = {}

    def load(self, partition: int, entries: Mapping[bytes, bytes]) -> RollupState:
        """(Re)build a roll-up partition's state from the table's entries (all partitions' may be given)."""
        state = RollupState(self.sources, Engine(self.config, autonomy=self.autonomy, clock=self.clock), self.stats)
        key = rollup_key(partition, self.partitions)
        mine = {k: v for k, v in entries.items() if partition_for_key(k, self.partitions) == partition}
        saved = decode_entries(mine).get(key)
        if saved is not None and saved.get("kind") == "rollup" and saved.get("v") == CHECKPOINT_VERSION:
            state.restore(saved)
        self.states[partition] = state
        return state

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget roll-up partitions this worker no longer owns (their state lives on in the table)."""
        for p in partitions:
            self.states.pop(p, None)

    def process(self, items: Sequence[tuple[int, int, bytes | None]]) -> RollupResult:
        """Fold ``(partition, offset, value)`` records of the roll-up topic (each partition loaded)."""
        result = RollupResult()
        touched: set[int] = set()
        for partition, offset, value in items:
            try:
                source, ticks = parse_report(value)
                if not 0 <= source < self.sources:
                    raise ValueError(f"spend report: from partition {source}, there are {self.sources}")
            except (ValueError, TypeError, KeyError) as exc:
                self.stats.bad_reports += 1
                result.bad.append((partition, offset, str(exc)))
                continue
            self.stats.reports += 1
            state = self.states[partition]
            for tick in ticks:
                state.add(source, tick)
            touched.add(partition)
        for p in sorted(touched):
            for anomaly in self.states[p].run_ticks():
                result.anomalies.append((anomaly.anomaly_id.encode(), anomaly.to_json()))
            value = orjson.dumps(self.states[p].snapshot())
            result.state.update(
                encode_entry(rollup_key(p, self.partitions), value, p, self.partitions, self.max_value_bytes)
            )
        return result
