"""Spend rate of a tenant, team or workflow against its daily rhythm, and its money budgets.

Learned part: spend per ``bucket_s`` bucket, in USD/hour, against an exponentially weighted mean
per hour-of-day slot (UTC), or the all-hours mean (a day's memory) until the slot has
``min_hour_samples`` buckets; against that fallback only a critical excursion is reported, since on
the first day every hour is new. A bucket fires when, even without the unusual part of its most
expensive step (one big call or one human review is a task's matter, a flood or a loop is many
steps), it exceeds ``factor`` x expected and ``min_usd_per_hour``, *and* the last ``long_window_s``
confirm it, each of their buckets without its largest step too (one $9 review must not confirm
itself): their
rate exceeds ``long_factor`` x what was expected and ``min_sigmas`` standard deviations of their
noise, modelled as compound Poisson (variance = expected spend x a dispersion in USD learned from
quiet buckets). The short window says it is happening now, the long one that it is not a lucky draw
of a few expensive tasks (Google SRE multiwindow alerting).

Whether the largest step is set aside depends on the shape of the stream: the detector learns the
share of a normal bucket's spend that its largest step carries (an exponentially weighted mean over
the buckets it learns from). A stream of steps is judged without its largest one, as one big
legitimate call should not page anybody. A *metered* stream — one record per bucket, a batch job's
or a cloud bill's line every 5 minutes: the largest step usually carries ``metered_share`` (0.9) or
more of the bucket — is judged on its whole spend, since there the one record *is* the spend and a
10x record is a 10x bucket. Until ``min_samples`` buckets are learned, a stream counts as one of steps.

What fires teaches nothing, nor the buckets over the short threshold that led up to it; one the
long window did not confirm is taught once it has left that window. ``relearn_after`` anomalous
buckets in a row are a new level and are learned. Empty buckets count as $0/h while the scope spent
within ``idle_learn_s``; a longer silence (a weekend) teaches nothing.

Budget part: the :class:`~detectors.budgets.MoneyBudget` s the engine matched to this scope
(:mod:`detectors.budgets`). One episode per scope: learned and budget findings on the same scope
share it, and it resolves only when none holds. Signals come from :meth:`on_tick`.

Money at stake (``evidence.usd_at_stake``, USD): for a learned finding, the last long window's excess
over its expected rate continued to the end of the UTC day (at least one more long window); for a
budget finding, the projected overspend by the period's end at the spend rate of the rule's long
window (6 h for a spent-fraction alert).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from pydantic import Field

from detectors.base import Detector, DetectorParams, Signal
from detectors.baseline import EWBaseline
from detectors.budgets import BudgetTracker, MoneyBudget, SpendRing
from detectors.ledger import TaskState
from schemas.anomaly import Severity
from schemas.events import CostEvent
from schemas.timefmt import format_ts

__all__ = ["BurnRateDetector", "BurnRateParams", "Level"]

Level = Literal["tenant", "team", "workflow"]
_LEVEL_KEYS = {"tenant": ("tenant",), "team": ("tenant", "team"), "workflow": ("tenant", "team", "workflow")}
_Candidates = dict[str, tuple[int, Signal | None, dict[str, str]]]


class BurnRateParams(DetectorParams):
    """Rates in USD/hour; ``*_s`` in seconds; ``min_samples`` and ``relearn_after`` in buckets."""

    bucket_s: float = Field(default=300.0, gt=0.0, le=3600.0)
    factor: float = Field(default=4.0, gt=1.0)
    critical_factor: float = Field(default=10.0, gt=1.0)
    min_usd_per_hour: float = Field(default=5.0, ge=0.0)
    min_samples: int = Field(default=24, ge=1)
    min_hour_samples: int = Field(default=6, ge=1)
    fading_factor: float = Field(default=0.1, gt=0.0, le=1.0)
    all_hours_window_s: float = Field(default=86400.0, gt=0.0)
    #: history (seconds of buckets) the all-hours fallback needs before it judges an hour that has no
    #: baseline of its own: on the first day, a morning after quiet nights is not a flood
    fallback_after_s: float = Field(default=86400.0, ge=0.0)
    long_window_s: float = Field(default=3600.0, gt=0.0)
    long_factor: float = Field(default=2.0, ge=1.0)
    min_sigmas: float = Field(default=5.0, ge=0.0)
    #: materiality: the long window's rate must exceed what was expected of it by this much (USD/h)
    min_excess_usd_per_hour: float = Field(default=5.0, ge=0.0)
    relearn_after: int = Field(default=36, ge=0)
    #: a stream whose largest step usually carries this share of a bucket's spend or more is metered
    metered_share: float = Field(default=0.9, gt=0.0, le=1.0)
    idle_learn_s: float = Field(default=43200.0, ge=0.0)


def _key(scope: dict[str, str]) -> str:
    return "|".join(f"{k}={scope[k]}" for k in sorted(scope))


class BurnRateDetector(Detector):
    """Learned findings: ``observed`` = the bucket's rate (USD/h), ``expected`` = usual rate at that
    hour, ``threshold`` = the rate it had to exceed, ``score`` = observed / threshold."""

    name: ClassVar[str] = "burn_rate"
    #: 2: the learned share of the largest step (``share``)
    state_version: ClassVar[int] = 2

    def __init__(
        self, params: BurnRateParams, level: Level = "workflow", budgets: tuple[MoneyBudget, ...] = ()
    ) -> None:
        self.params = params
        self.level = level
        self.budgets = budgets
        slow = min(1.0, params.bucket_s / params.all_hours_window_s)
        self._scope: dict[str, str] = {}
        self._all, self._disp = EWBaseline(slow), EWBaseline(slow)  # USD/h; dispersion in USD
        self._share = EWBaseline(slow)  # the share of a normal bucket's spend its largest step carries
        self._hours: dict[int, EWBaseline] = {}
        self._start = self._end = self._spend = self._top = 0.0  # the open bucket
        self._skip = -1.0  # start of the first bucket: it began before this detector saw money
        self._closed: list[list[float]] = []  # [start, spend, top] of closed buckets, judged at a tick
        self._last_spend_ts = 0.0
        self._recent: list[list[float]] = []  # [rate, expected] of the buckets of the long window
        self._held: list[list[float]] = []  # [start, rate, expected] of hot buckets not yet taught
        self._run: list[list[float]] = []  # [start, rate, expected] of the current anomalous run
        self._rank = -1  # severity rank of the last judged bucket, -1 when normal
        self._ring = SpendRing()
        self._trackers = [BudgetTracker(b) for b in budgets]
        self._open: dict[str, list[Any]] = {}  # scope key -> [severity rank, scope]

    def on_event(self, event: CostEvent, task: TaskState) -> Signal | None:
        cost = event.cost_usd or 0.0
        self.add_spend(event.ts, cost, cost, event)
        return None

    def add_spend(self, ts: float, usd: float, top: float, scope: Any) -> None:
        """``usd`` spent by time ``ts`` (epoch s), ``top`` its largest step: one event, or one minute of
        a workflow (:mod:`detectors.scope_spend`); ``scope`` names the scope (a mapping or an event)."""
        if ts >= self._end:
            if not self._scope:
                keys = _LEVEL_KEYS[self.level]
                self._scope = {k: str(scope[k] if isinstance(scope, dict) else getattr(scope, k)) for k in keys}
            self._roll(ts)
        if usd:
            self._spend += usd
            if top > self._top:
                self._top = top
            if ts > self._last_spend_ts:
                self._last_spend_ts = ts
            if self._trackers:
                self._ring.add(ts, usd)
                for tracker in self._trackers:
                    tracker.add(ts, usd)

    def on_tick(self, now: float, tasks: Iterable[TaskState]) -> list[Signal]:
        if self._end and now >= self._end:
            self._roll(now)
        learned: Signal | None = None
        for start, spend, top in self._closed:
            learned = self._judge(start, spend, top) or learned
        self._closed = []
        candidates: _Candidates = {}
        if self._rank >= 0:
            candidates[_key(self._scope)] = (self._rank, learned, self._scope)
        if self._trackers:
            self._ring.advance(now)
            for tracker in self._trackers:
                tracker.roll(now)
                for sig in tracker.verdicts(self._ring, self.name, now):
                    key = _key(sig.scope)
                    if key not in candidates or sig.severity.rank > candidates[key][0]:
                        candidates[key] = (sig.severity.rank, sig, sig.scope)
        return self._settle(now, candidates)

    def _settle(self, now: float, candidates: _Candidates) -> list[Signal]:
        """Open or escalate an episode per scope; resolve the scopes where nothing holds any more."""
        out: list[Signal] = []
        for key, (rank, sig, scope) in candidates.items():
            if sig is not None and rank > self._open.get(key, (-1,))[0]:
                out.append(sig)
                self._open[key] = [rank, dict(scope)]
        for key in [k for k in self._open if k not in candidates]:
            scope = self._open.pop(key)[1]
            tail = "" if scope == self._scope else " and within its budget"
            out.append(Signal(detector=self.name, scope=scope, ts=now, firing=False, metric="burn_usd_per_hour",
                              unit="USD/h", summary=f"{_label(scope)}: spend back to its usual rate{tail}"))
        return out

    def _roll(self, ts: float) -> None:
        """Close the open bucket (and the empty ones of a gap), open the bucket holding ``ts``."""
        p = self.params
        start = ts - ts % p.bucket_s
        if self._end:
            self._closed.append([self._start, self._spend, self._top])
            gap, quiet_until = self._end, min(start, self._last_spend_ts + p.idle_learn_s)
            while gap < quiet_until:
                self._closed.append([gap, 0.0, 0.0])
                gap += p.bucket_s
        else:
            self._skip = start
        self._start, self._end, self._spend, self._top = start, start + p.bucket_s, 0.0, 0.0

    def _judge(self, start: float, spend: float, top: float) -> Signal | None:
        """Judge one closed bucket: ``spend`` in USD, ``top`` its most expensive step."""
        p = self.params
        idle = not spend and start >= self._last_spend_ts + p.idle_learn_s
        if idle or not p.enabled or start == self._skip:
            self._rank, self._run = -1, []
            return None
        share = self._share.mean if self._share.n >= p.min_samples else 0.0
        metered = share >= p.metered_share  # one record per bucket: that record is the bucket's spend
        rate, trimmed = spend * 3600.0 / p.bucket_s, (spend - (0.0 if metered else top)) * 3600.0 / p.bucket_s
        hour = int(start // 3600) % 24
        slot = self._hours.get(hour)
        own = slot is not None and slot.n >= p.min_hour_samples
        base = slot if own and slot is not None else self._all
        expected, warn_at, rank = base.mean, 0.0, -1

        recent = self._recent
        recent.append([trimmed, expected])  # the long window too: each bucket without its largest step
        if len(recent) > max(1, round(p.long_window_s / p.bucket_s)):
            del recent[0]
        hours = len(recent) * p.bucket_s / 3600.0
        long_rate = sum(r for r, _ in recent) / len(recent)
        long_expected = sum(e for _, e in recent) / len(recent)
        noise = math.sqrt(long_expected * hours * self._disp.mean) / hours  # USD/h over the long window
        long_at = max(
            p.long_factor * long_expected,
            long_expected + p.min_sigmas * noise,
            long_expected + p.min_excess_usd_per_hour,
        )
        hot = anomalous = False  # hot: over the short threshold; anomalous: the long window agrees
        if self._all.n >= p.min_samples:
            warn_at = max(p.factor * expected, p.min_usd_per_hour)
            hot = trimmed > warn_at  # even without its most expensive step
            anomalous = hot and long_rate > long_at
            if anomalous:  # against the all-hours fallback only a critical excursion is reported ...
                rank = 2 if trimmed > p.critical_factor * expected else 1 if own else -1
                if not own and self._all.n * p.bucket_s < p.fallback_after_s:
                    rank = -1  # ... and only once that fallback has seen a whole day, not just quiet nights
        self._rank = rank if rank >= 0 or not anomalous else min(self._rank, 1)
        held = self._held
        if not anomalous:
            self._run = []
            if hot:
                held.append([start, rate, expected])
            else:
                self._learn(start, rate, expected)
                if spend > 0:
                    self._share.update(min(1.0, top / spend))
            while held and held[0][0] <= start - p.long_window_s:
                self._learn(*held.pop(0))
            return None
        if p.relearn_after:
            self._run += [*held, [start, rate, expected]]
            if len(self._run) >= p.relearn_after:
                for bucket in self._run:
                    self._learn(*bucket)
                self._run = []
        held.clear()  # the lead-in of an anomaly is part of it
        if rank < 0:
            return None
        usual = f"usual at {hour:02d}:00 UTC" if own else "usual over all hours"
        why = f"{rate / expected:.1f}x the ${expected:,.2f}/h {usual}" if expected > 0 else f"$0/h {usual}"
        return Signal(
            detector=self.name, scope=dict(self._scope), ts=start + p.bucket_s,
            severity=Severity.CRITICAL if rank == 2 else Severity.WARNING,
            metric="burn_usd_per_hour", unit="USD/h", observed=rate, expected=expected, threshold=warn_at,
            score=rate / warn_at,
            summary=f"{_label(self._scope)} spending ${rate:,.2f}/h over the {p.bucket_s / 60:g} min from "
            f"{format_ts(start)[11:16]} UTC ({why}; last hour ${long_rate:,.2f}/h)",
            evidence={"bucket_start": format_ts(start), "bucket_s": p.bucket_s, "spend_usd": round(spend, 6),
                      "largest_step_usd": round(top, 6), "largest_step_share_usual": round(share, 4),
                      "metered": metered,
                      "baseline": "hour_of_day" if own else "all_hours",
                      "hour_utc": hour, "baseline_buckets": base.n, "long_window_usd_per_hour": round(long_rate, 4),
                      "long_window_expected": round(long_expected, 4), "anomalous_run": len(self._run),
                      "usd_at_stake": _rest_of_day(long_rate - long_expected, start + p.bucket_s, p.long_window_s),
                      "level": self.level},
        )

    def _learn(self, start: float, rate: float, expected: float) -> None:
        hour = int(start // 3600) % 24
        slot = self._hours.get(hour)
        if slot is None:
            slot = self._hours[hour] = EWBaseline(self.params.fading_factor)
        slot.update(rate)
        self._all.update(rate)
        if expected > 0:
            self._disp.update((rate - expected) ** 2 * (self.params.bucket_s / 3600.0) / expected)

    def _get_state(self) -> dict[str, Any]:
        return {
            "scope": self._scope, "all": self._all.to_dict(), "disp": self._disp.to_dict(),
            "share": self._share.to_dict(),
            "hours": {str(h): b.to_dict() for h, b in self._hours.items()},
            "bucket": [self._start, self._end, self._spend, self._top], "skip": self._skip,
            "closed": self._closed, "last_spend_ts": self._last_spend_ts, "recent": self._recent,
            "held": self._held, "run": self._run, "rank": self._rank, "open": self._open,
            "ring": self._ring.to_dict() if self._trackers else None,
            "budgets": {t.budget.name: t.to_dict() for t in self._trackers},
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._scope = dict(state["scope"])
        self._all, self._disp = EWBaseline.from_dict(state["all"]), EWBaseline.from_dict(state["disp"])
        self._share = EWBaseline.from_dict(state["share"])
        self._hours = {int(h): EWBaseline.from_dict(b) for h, b in state["hours"].items()}
        self._start, self._end, self._spend, self._top = (float(x) for x in state["bucket"])
        self._skip, self._last_spend_ts = float(state["skip"]), float(state["last_spend_ts"])
        self._closed = [[float(x) for x in c] for c in state["closed"]]
        self._recent = [[float(x) for x in r] for r in state["recent"]]
        self._held = [[float(x) for x in r] for r in state["held"]]
        self._run = [[float(x) for x in r] for r in state["run"]]
        self._rank = int(state["rank"])
        self._open = {k: [int(r), dict(s)] for k, (r, s) in state["open"].items()}
        self._ring = SpendRing.from_dict(state["ring"]) if state["ring"] else SpendRing()
        for tracker in self._trackers:  # budgets are configuration: a renamed or new one starts afresh
            if tracker.budget.name in state["budgets"]:
                tracker.load(state["budgets"][tracker.budget.name])


def _rest_of_day(excess_usd_per_hour: float, ts: float, min_s: float) -> float:
    """``excess_usd_per_hour`` from ``ts`` to the end of its UTC day (at least ``min_s``), USD.

    >>> _rest_of_day(10.0, 1793613600.0, 3600.0)  # 10:00 UTC: 14 hours left
    140.0
    """
    left = max(86_400.0 - ts % 86_400.0, min_s)
    return round(max(0.0, excess_usd_per_hour) * left / 3600.0, 2)


def _label(scope: dict[str, str]) -> str:
    """The most specific name of a scope, for one-line summaries."""
    for key in ("workflow", "team", "tenant"):
        if key in scope:
            return scope[key]
    return "fleet"
