"""Money budgets per calendar period and Google SRE multiwindow burn-rate alerts on them.

The *burn rate* of a window is the spend in that window divided by the budget's share of it,
``amount_usd x window / period length``: 1.0 spends exactly the budget by the end of the period,
14.4 spends a 30-day budget in about two days. An alert holds when the burn rate of a long AND a
short window both exceed a factor (the short window makes it clear quickly once the burn stops).
Starting from no spend, a constant burn ``b`` pages after ``60 x 14.4 / b`` minutes (43 min at
20x, 9 min at 100x); a burn of 2x only ever opens a ticket, after 36 h.

Spend is kept per minute for 6 h and per hour for 3 days (:class:`SpendRing`, 432 numbers), so
memory and snapshots stay small whatever the traffic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from detectors.base import Signal
from detectors.config_file import suggest
from schemas.anomaly import Severity
from schemas.timefmt import format_ts

__all__ = [
    "BURN_RULES",
    "SPENT_ALERTS",
    "BudgetTracker",
    "MoneyBudget",
    "SpendRing",
    "period_bounds",
]

#: (long window s, short window s, burn-rate factor, severity), most severe first.
BURN_RULES: tuple[tuple[int, int, float, Severity], ...] = (
    (3600, 300, 14.4, Severity.CRITICAL),
    (21600, 1800, 6.0, Severity.CRITICAL),
    (259200, 21600, 1.0, Severity.WARNING),
)
#: (fraction of the period's amount, severity), highest first.
SPENT_ALERTS: tuple[tuple[float, Severity], ...] = (
    (1.0, Severity.CRITICAL),
    (0.9, Severity.WARNING),
    (0.7, Severity.INFO),
)
_MATCH_ORDER = ("tenant", "team", "workflow")
_ADVERB = {"day": "daily", "week": "weekly", "month": "monthly"}


class MoneyBudget(BaseModel):
    """``amount_usd`` may be spent per calendar ``period`` (UTC) by the events that ``match``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    match: dict[str, Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(min_length=1)
    period: Literal["day", "week", "month"] = "month"
    amount_usd: float = Field(gt=0.0, allow_inf_nan=False)

    @field_validator("match")
    @classmethod
    def _known_keys(cls, match: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(match) - set(_MATCH_ORDER))
        if unknown:
            said = ", ".join(f"{k!r}{suggest(k, _MATCH_ORDER)}" for k in unknown)
            raise ValueError(f"unknown match key {said}; a budget matches on tenant, team, workflow")
        return match

    @property
    def scope(self) -> dict[str, str]:
        """The anomaly scope of this budget's findings: its match, keys in canonical order."""
        return {k: self.match[k] for k in _MATCH_ORDER if k in self.match}


def period_bounds(ts: float, period: str) -> tuple[float, float]:
    """``[start, end)`` in epoch s of the UTC calendar day, ISO week (from Monday) or month of ``ts``.

    >>> [format_ts(x) for x in period_bounds(1793613600.0, "month")]
    ['2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z']
    >>> [format_ts(x) for x in period_bounds(1793613600.0, "week")]
    ['2026-11-02T00:00:00.000Z', '2026-11-09T00:00:00.000Z']
    """
    day = datetime.fromtimestamp(ts, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown budget period {period!r}")
    return start.timestamp(), end.timestamp()


class SpendRing:
    """Spend (USD) per minute over the last 6 h and per hour over the last 3 days, in two rings.

    >>> ring = SpendRing()
    >>> for minute in range(120):
    ...     ring.add(1793613600.0 + 60 * minute, 0.5)
    >>> ring.total(300), ring.total(3600), ring.total(259200)
    (2.5, 30.0, 60.0)
    """

    MINUTES = 360
    HOURS = 72
    __slots__ = ("cur_hour", "cur_min", "hour", "minute")

    def __init__(self) -> None:
        self.minute = [0.0] * self.MINUTES
        self.hour = [0.0] * self.HOURS
        self.cur_min = -1
        self.cur_hour = -1

    def advance(self, ts: float) -> None:
        """Move the rings forward to ``ts``, forgetting what fell out of them."""
        m, h = int(ts // 60), int(ts // 3600)
        if m > self.cur_min:
            _clear(self.minute, self.cur_min, m)
            self.cur_min = m
        if h > self.cur_hour:
            _clear(self.hour, self.cur_hour, h)
            self.cur_hour = h

    def add(self, ts: float, usd: float) -> None:
        m = int(ts // 60)
        if m > self.cur_min:
            self.advance(ts)
        if m > self.cur_min - self.MINUTES:
            self.minute[m % self.MINUTES] += usd
        h = int(ts // 3600)
        if h > self.cur_hour - self.HOURS:
            self.hour[h % self.HOURS] += usd

    def total(self, window_s: float) -> float:
        """Spend of the last ``window_s`` seconds, current minute (or hour, beyond 6 h) included."""
        if window_s <= self.MINUTES * 60:
            ring, cur, k = self.minute, self.cur_min, int(window_s // 60)
        else:
            ring, cur, k = self.hour, self.cur_hour, min(self.HOURS, int(window_s // 3600))
        size = len(ring)
        return sum(ring[(cur - i) % size] for i in range(k))

    def to_dict(self) -> dict[str, Any]:
        return {"m": list(self.minute), "h": list(self.hour), "cm": self.cur_min, "ch": self.cur_hour}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpendRing:
        ring = cls()
        ring.minute, ring.hour = [float(x) for x in data["m"]], [float(x) for x in data["h"]]
        ring.cur_min, ring.cur_hour = int(data["cm"]), int(data["ch"])
        return ring


def _clear(ring: list[float], cur: int, new: int) -> None:
    if cur < 0 or new - cur >= len(ring):
        ring[:] = [0.0] * len(ring)
    else:
        for i in range(cur + 1, new + 1):
            ring[i % len(ring)] = 0.0


class BudgetTracker:
    """One budget's spend in its current calendar period and its verdicts (money in USD)."""

    __slots__ = ("budget", "end", "spent", "start")

    def __init__(self, budget: MoneyBudget) -> None:
        self.budget = budget
        self.start = self.end = 0.0
        self.spent = 0.0

    def add(self, ts: float, usd: float) -> None:
        if ts >= self.end:
            self.roll(ts)
        if ts >= self.start:  # a late event of the previous period is not this period's money
            self.spent += usd

    def roll(self, now: float) -> None:
        """Start a new calendar period when ``now`` has left the current one."""
        if now >= self.end:
            self.start, self.end = period_bounds(now, self.budget.period)
            self.spent = 0.0

    def burn(self, ring: SpendRing, window_s: float) -> float:
        """Burn rate of the last ``window_s`` seconds (1.0 = on budget)."""
        if not self.end:
            return 0.0
        return ring.total(window_s) * (self.end - self.start) / (self.budget.amount_usd * window_s)

    def overspend(self, ring: SpendRing, window_s: float, now: float) -> float:
        """USD the period is projected to end over its amount at the last ``window_s``' spend rate."""
        rate = ring.total(window_s) / window_s
        projected = self.spent + rate * max(0.0, self.end - now)
        return round(max(0.0, projected - self.budget.amount_usd), 2)

    def verdicts(self, ring: SpendRing, detector: str, now: float) -> list[Signal]:
        """The multiwindow burn alert and the spent-fraction alert that hold now (0, 1 or 2)."""
        b = self.budget
        out: list[Signal] = []
        burns = {w: self.burn(ring, w) for w in (300, 1800, 3600, 21600, 259200)}
        fraction = self.spent / b.amount_usd
        common = {"budget": b.name, "period": b.period, "amount_usd": b.amount_usd,
                  "spent_usd": round(self.spent, 6), "spent_fraction": round(fraction, 4),
                  "period_start": format_ts(self.start) if self.end else None}
        for long_s, short_s, factor, severity in BURN_RULES:
            burn_long, burn_short = burns[long_s], burns[short_s]
            if burn_long > factor and burn_short > factor:
                stake = self.overspend(ring, long_s, now)
                out.append(Signal(
                    detector=detector, scope=b.scope, ts=now, severity=severity, metric="budget_burn_rate",
                    unit="x", observed=burn_long, expected=1.0, threshold=factor, score=burn_long / factor,
                    summary=f"budget {b.name}: burning {burn_long:.1f}x its {_ADVERB[b.period]} rate over "
                    f"the last {_span(long_s)} ({burn_short:.1f}x over {_span(short_s)}; "
                    f"alert above {factor:g}x), "
                    f"${self.spent:,.2f} of ${b.amount_usd:,.2f} spent this {b.period}",
                    evidence={**common, "usd_at_stake": stake, "rule": f"{_span(long_s)}/{_span(short_s)}>{factor:g}",
                              "burn_rates": {_span(w): round(x, 4) for w, x in burns.items()}},
                ))
                break
        for at, severity in SPENT_ALERTS:
            if fraction >= at:
                out.append(Signal(
                    detector=detector, scope=b.scope, ts=now, severity=severity,
                    metric="budget_spent_fraction", unit="fraction", observed=fraction, threshold=at,
                    score=fraction / at,
                    summary=f"budget {b.name}: {fraction:.0%} of the {b.period}'s ${b.amount_usd:,.2f} spent "
                    f"(${self.spent:,.2f}; alert at {at:.0%})",
                    evidence={**common, "usd_at_stake": self.overspend(ring, 21600, now)},
                ))
                break
        return out

    def to_dict(self) -> dict[str, float]:
        return {"start": self.start, "end": self.end, "spent": self.spent}

    def load(self, data: dict[str, Any]) -> None:
        self.start, self.end, self.spent = float(data["start"]), float(data["end"]), float(data["spent"])


def _span(seconds: float) -> str:
    """``300`` -> ``5m``, ``3600`` -> ``1h``, ``259200`` -> ``3d``."""
    if seconds % 86400 == 0:
        return f"{seconds // 86400:g}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600:g}h"
    return f"{seconds // 60:g}m"
