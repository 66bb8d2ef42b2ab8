"""Tenant and team spend in whole minutes of event time: what their burn-rate detectors are fed.

A tenant's or team's :class:`~detectors.burn_rate.BurnRateDetector` judges its spend per bucket
(``bucket_s``, a whole number of minutes) and its money budgets on spend per minute
(:class:`~detectors.budgets.SpendRing`). Neither needs each event: per workflow and whole minute,
the sum, the largest step and the time of the last spend give the same buckets, the same rings and
the same budget periods. :class:`SpendMinutes` collects these :data:`MinuteSpend` records and, at
each event-time tick ``T``, releases the minutes that ended by ``T + lateness`` (every event before
them has been seen). ``burnguard replay`` feeds them to its own tenant and team detectors before
they tick (:func:`feed_minutes`); in the Kafka worker each partition's engine sees only its own
workflows, so it hands them to the roll-up stage (:mod:`streams.rollup`), which gathers every
partition's before it ticks the same detectors.

The feeding order is canonical — ``(minute, tenant, team, workflow)`` — so the floating-point sums
come out bit-identical whichever partition held which workflow. Exact when ``bucket_s`` is a whole
number of minutes (the default 300 s is): a bucket then never splits a minute. A *late* event, whose
minute was already released, counts in the first minute not yet released.

>>> minutes = SpendMinutes()
>>> minutes.add(125.0, ("acme", "search", "triage"), 0.5)
>>> minutes.add(130.0, ("acme", "search", "triage"), 2.0)
>>> minutes.add(190.0, ("acme", "ops", "audit"), 1.0)
>>> [m[:7] for m in minutes.release(180.0)]  # minutes ending by t=180 s
[(120.0, 'acme', 'search', 'triage', 2.5, 2.0, 130.0)]
>>> minutes.add(150.0, ("acme", "search", "triage"), 4.0)  # late: its minute is gone
>>> [m[:7] for m in minutes.release(240.0)]
[(180.0, 'acme', 'ops', 'audit', 1.0, 1.0, 190.0), (180.0, 'acme', 'search', 'triage', 4.0, 4.0, 180.0)]

A minute also carries what :mod:`detectors.young_runaway` needs from the workflow: its tasks that
finished normally in that minute, as sums of their log machine cost (``[n, sum, sum of squares,
largest USD]``), and the reports of its young tasks (:meth:`SpendMinutes.add_report`); a minute
with no spend, only those, is not fed to the burn rates.

>>> minutes.add_finished(250.0, ("acme", "ops", "audit"), 1.0)
>>> minutes.add_report(251.0, ("acme", "ops", "audit"), ["r1", 0.5, 3, 0, 0])
>>> minutes.release(300.0)
[(240.0, 'acme', 'ops', 'audit', 0.0, 0.0, 240.0, [1, 0.0, 0.0, 1.0], [[251.0, 'r1', 0.5, 3, 0, 0]])]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from detectors.base import Detector
from detectors.burn_rate import BurnRateDetector
from detectors.pooled import log_cost

__all__ = ["MINUTE_S", "MinuteSpend", "RolledUpTick", "SpendMinutes", "feed_minutes", "parse_minutes"]

MINUTE_S = 60.0
#: ``(minute start, tenant, team, workflow, spend USD, largest step USD, last spend time, finished
#: normal tasks [n, sum log USD, sum log² USD, largest USD], young-task reports)``, times in epoch s
MinuteSpend = tuple[float, str, str, str, float, float, float, list[Any], list[list[Any]]]


class RolledUpTick(NamedTuple):
    """What one engine's tick at ``tick`` released: every minute in ``[since, until)`` of its
    workflows (``since`` is ``-inf`` on its first tick), as :data:`MinuteSpend` s."""

    tick: float
    since: float
    until: float
    minutes: list[MinuteSpend]


class SpendMinutes:
    """Spend per (whole minute, workflow) not yet released to the tenant and team detectors."""

    __slots__ = ("_open", "released_to")

    def __init__(self) -> None:
        #: (tenant, team, workflow) -> minute -> [spend, largest step, last spend time, finished, reports]
        self._open: dict[tuple[str, ...], dict[float, list[Any]]] = {}
        #: every minute before this one (epoch s, a whole minute) has been released
        self.released_to = -math.inf

    def add(self, ts: float, workflow: tuple[str, str, str], usd: float) -> None:
        """``usd`` spent at event time ``ts`` by ``(tenant, team, workflow)``."""
        minute = ts - ts % MINUTE_S
        if minute < self.released_to:  # late: it counts now, in the first open minute
            minute = ts = self.released_to
        minutes = self._open.get(workflow)
        if minutes is None:
            minutes = self._open[workflow] = {}
        entry = minutes.get(minute)
        if entry is None:
            minutes[minute] = [usd, usd, ts, [0, 0.0, 0.0, 0.0], []]
            return
        entry[0] += usd
        if usd > entry[1]:
            entry[1] = usd
        if ts > entry[2]:
            entry[2] = ts

    def _entry(self, ts: float, workflow: tuple[str, str, str]) -> tuple[float, list[Any]]:
        minute = ts - ts % MINUTE_S
        if minute < self.released_to:
            minute = ts = self.released_to
        minutes = self._open.get(workflow)
        if minutes is None:
            minutes = self._open[workflow] = {}
        entry = minutes.get(minute)
        if entry is None:  # no spend (yet): "last spend" starts at the minute, which any spend passes
            entry = minutes[minute] = [0.0, 0.0, minute, [0, 0.0, 0.0, 0.0], []]
        return ts, entry

    def add_finished(self, ts: float, workflow: tuple[str, str, str], usd: float) -> None:
        """A task of ``workflow`` that cost ``usd`` (machine spend) finished normally at ``ts``."""
        _, entry = self._entry(ts, workflow)
        stats = entry[3]
        lg = log_cost(usd)
        stats[0] += 1
        stats[1] += lg
        stats[2] += lg * lg
        if usd > stats[3]:
            stats[3] = usd

    def add_report(self, ts: float, workflow: tuple[str, str, str], report: list[Any]) -> None:
        """A young task's report at ``ts`` (:data:`detectors.young_runaway.Report` without its time)."""
        ts, entry = self._entry(ts, workflow)
        entry[4].append([ts, *report])

    def release(self, until: float) -> list[MinuteSpend]:
        """The minutes that ended by ``until`` (epoch s), in feeding order; they leave the collection."""
        cutoff = until - until % MINUTE_S
        if cutoff <= self.released_to:
            return []
        self.released_to = cutoff
        out: list[MinuteSpend] = []
        for workflow in list(self._open):
            minutes = self._open[workflow]
            tenant, team, name = workflow
            for minute in [m for m in minutes if m < cutoff]:
                usd, top, last, finished, reports = minutes.pop(minute)
                out.append((minute, tenant, team, name, usd, top, last, finished, reports))
            if not minutes:
                del self._open[workflow]
        out.sort(key=lambda m: m[:4])
        return out

    def __len__(self) -> int:
        return sum(len(m) for m in self._open.values())

    def snapshot(self, everything: bool = True) -> dict[str, Any]:
        """Plain data for :meth:`restore`; without ``everything``, only the release mark (the Kafka
        worker checkpoints each workflow's minutes with that workflow: :meth:`rows_of`)."""
        return {
            "to": None if self.released_to == -math.inf else self.released_to,
            "open": [row for w in self._open for row in self.rows_of(w)] if everything else [],
        }

    def rows_of(self, workflow: tuple[str, ...]) -> list[list[Any]]:
        """The open minutes of one ``(tenant, team, workflow)``, as rows of :meth:`snapshot`'s ``open``."""
        return [[m, *workflow, *v] for m, v in self._open.get(workflow, {}).items()]

    def restore(self, data: dict[str, Any] | None) -> None:
        self._open = {}
        self.released_to = -math.inf
        if not data:
            return
        self.released_to = -math.inf if data["to"] is None else float(data["to"])
        for m in parse_minutes(data["open"]):
            self._open.setdefault(m[1:4], {})[m[0]] = [m[4], m[5], m[6], m[7], m[8]]


def parse_minutes(rows: Iterable[Any]) -> list[MinuteSpend]:
    """:data:`MinuteSpend` s from their JSON form (lists); a malformed row raises ``ValueError``."""
    out: list[MinuteSpend] = []
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) not in (7, 9):
            raise ValueError(f"not a minute of spend: {row!r}")
        m, tenant, team, workflow, usd, top, last = row[:7]
        finished, reports = (row[7], row[8]) if len(row) == 9 else ([0, 0.0, 0.0, 0.0], [])  # 7: before 0.11
        if not isinstance(finished, list) or len(finished) != 4 or not isinstance(reports, list):
            raise ValueError(f"not a minute of spend: {row!r}")
        out.append(
            (float(m), str(tenant), str(team), str(workflow), float(usd), float(top), float(last),
             [int(finished[0]), *(float(x) for x in finished[1:])], [list(r) for r in reports])
        )
    return out


def feed_minutes(minutes: Iterable[MinuteSpend], detector_for: Callable[[tuple[str, ...]], Detector]) -> None:
    """Feed each minute to its tenant's and its team's burn-rate detector, in canonical order."""
    for _, tenant, team, _, usd, top, last, *_ in sorted(minutes, key=lambda m: m[:7]):
        if not usd:
            continue  # a minute of finished tasks and reports only
        for key in ((tenant,), (tenant, team)):
            det = detector_for(key)
            if isinstance(det, BurnRateDetector):
                det.add_spend(last, usd, top, {"tenant": tenant, "team": team} if len(key) == 2 else {"tenant": tenant})
