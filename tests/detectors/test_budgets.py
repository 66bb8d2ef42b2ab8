"""Money budgets: calendar periods, the spend ring, SRE multiwindow burn alerts and spent alerts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from detectors.base import Signal
from detectors.budgets import BudgetTracker, MoneyBudget, SpendRing, period_bounds
from detectors.burn_rate import BurnRateDetector, BurnRateParams
from schemas.anomaly import Severity
from schemas.timefmt import format_ts, parse_ts
from tests.detectors.factory_b import T0, Drive, firing, step

WF = {"tenant": "acme", "team": "team-a", "workflow": "wf"}
NOV = 30 * 24  # hours in November 2026: a $7,200 monthly budget is $10/h


def budget(amount: float, period: str = "month", **match: str) -> MoneyBudget:
    fields = {"name": f"{period}-cap", "match": match or {"team": "team-a"}, "period": period}
    return MoneyBudget.model_validate({**fields, "amount_usd": amount})


def spend(start: float, minutes: int, usd_per_hour: float | Callable[[float], float]) -> list[dict[str, Any]]:
    """One step a minute for ``minutes`` minutes at ``usd_per_hour``."""
    rate = usd_per_hour if callable(usd_per_hour) else (lambda _t: float(usd_per_hour))
    return [step(f"s{int(t // 3600)}", t, rate(t) / 60) for t in (start + 60 * m for m in range(minutes))]


def team_detector(*budgets: MoneyBudget) -> BurnRateDetector:
    return BurnRateDetector(BurnRateParams(), "team", budgets)


def test_a_budget_needs_a_positive_amount_a_known_period_and_known_match_keys() -> None:
    assert budget(10.0).scope == {"team": "team-a"}
    assert MoneyBudget(name="x", match={"workflow": "w", "tenant": "t"}, amount_usd=1).scope == {
        "tenant": "t", "workflow": "w"
    }
    bads: list[dict[str, Any]] = [
        {"amount_usd": 0}, {"period": "year"}, {"match": {"agent": "a"}}, {"match": {}}
    ]
    for bad in bads:
        with pytest.raises(ValidationError):
            MoneyBudget.model_validate({"name": "b", "match": {"team": "t"}, "amount_usd": 5, **bad})


@pytest.mark.parametrize(
    ("at", "period", "start", "end"),
    [
        ("2026-11-02T10:00:00Z", "day", "2026-11-02T00:00:00.000Z", "2026-11-03T00:00:00.000Z"),
        ("2026-11-08T23:59:59Z", "week", "2026-11-02T00:00:00.000Z", "2026-11-09T00:00:00.000Z"),
        ("2026-12-31T23:00:00Z", "month", "2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"),
        ("2028-02-29T12:00:00Z", "month", "2028-02-01T00:00:00.000Z", "2028-03-01T00:00:00.000Z"),
    ],
)
def test_periods_are_utc_calendar_day_iso_week_and_month(at: str, period: str, start: str, end: str) -> None:
    assert [format_ts(x) for x in period_bounds(parse_ts(at), period)] == [start, end]


def test_spend_ring_sums_windows_forgets_old_money_and_round_trips() -> None:
    ring = SpendRing()
    for m in range(600):  # ten hours, $1 a minute
        ring.add(T0 + 60 * m, 1.0)
    assert (ring.total(300), ring.total(3600), ring.total(21600)) == (5.0, 60.0, 360.0)
    assert ring.total(259200) == 600.0  # the hour ring still holds all ten hours
    ring.add(T0 + 60 * 590, 4.0)  # late, but inside the last 6 h: counted
    ring.add(T0 - 7 * 3600, 100.0)  # older than the minute ring: only the 3-day ring takes it
    assert ring.total(3600) == 64.0 and ring.total(259200) == 704.0
    copy = SpendRing.from_dict(orjson.loads(orjson.dumps(ring.to_dict())))
    ring.advance(T0 + 600 * 60 + 30 * 60)
    copy.advance(T0 + 600 * 60 + 30 * 60)
    assert ring.total(3600) == copy.total(3600) == 29.0 + 4.0  # half an hour of silence aged out
    ring.advance(T0 + 4 * 86400)
    assert ring.total(259200) == 0.0


def test_burn_rate_is_spend_over_the_budget_share_of_the_window() -> None:
    tracker, ring = BudgetTracker(budget(7200.0)), SpendRing()  # $10/h in November
    for m in range(60):
        ring.add(T0 + 60 * m, 0.5)  # $30/h
        tracker.add(T0 + 60 * m, 0.5)
    assert tracker.burn(ring, 3600) == pytest.approx(3.0)
    assert tracker.burn(ring, 300) == pytest.approx(3.0)
    assert tracker.spent == pytest.approx(30.0)
    tracker.add(parse_ts("2026-10-31T23:00:00Z"), 99.0)  # a late event of October: not November's money
    assert tracker.spent == pytest.approx(30.0)
    tracker.roll(parse_ts("2026-12-01T00:00:01Z"))
    assert tracker.spent == 0.0 and format_ts(tracker.start) == "2026-12-01T00:00:00.000Z"


def _budget_signals(signals: list[Signal]) -> list[Signal]:
    return [s for s in signals if s.metric.startswith("budget")]


def test_a_burn_at_20x_the_budget_pages_within_minutes() -> None:
    drive = Drive(team_detector(budget(7200.0)))
    found = _budget_signals(drive.feed(spend(T0, 90, 20 * 10.0)))
    page = found[0]
    assert page.severity is Severity.CRITICAL and page.metric == "budget_burn_rate" and not page.kill_eligible
    minutes = (page.ts - T0) / 60
    assert 43 <= minutes <= 46  # 60 x 14.4 / 20 = 43.2 min from a standing start
    assert page.scope == {"team": "team-a"} and page.evidence["budget"] == "month-cap"
    assert page.evidence["rule"] == "1h/5m>14.4" and page.threshold == 14.4
    assert page.observed > 14.4 and "burning 14." in page.summary and "its monthly rate" in page.summary
    # at stake: the projected overspend by the month's end at the last hour's rate (burn rates kept to 4 decimals)
    start, end = period_bounds(page.ts, "month")
    rate = page.evidence["burn_rates"]["1h"] * 7200.0 / (end - start)  # USD/s
    overspend = page.evidence["spent_usd"] + rate * (end - page.ts) - 7200.0
    assert overspend > 0 and page.evidence["usd_at_stake"] == pytest.approx(overspend, rel=1e-4)
    faster = _budget_signals(Drive(team_detector(budget(7200.0))).feed(spend(T0, 30, 100 * 10.0)))
    assert faster and (faster[0].ts - T0) / 60 <= 10


def test_a_burn_at_2x_the_budget_only_opens_a_ticket_after_a_day_and_a_half() -> None:
    drive = Drive(team_detector(budget(7200.0)))
    found = _budget_signals(drive.feed(spend(T0, 3 * 24 * 60, 2 * 10.0)))
    assert [s.severity for s in found] == [Severity.WARNING]
    ticket = found[0]
    assert ticket.evidence["rule"] == "3d/6h>1" and 35.5 <= (ticket.ts - T0) / 3600 <= 36.5
    assert ticket.evidence["burn_rates"]["6h"] == pytest.approx(2.0, rel=0.01)


def test_spent_alerts_fire_at_70_90_and_100_percent_once_per_calendar_period() -> None:
    day = parse_ts("2026-11-03T00:00:00Z")
    events: list[dict[str, Any]] = []
    for d in range(2):  # each day: bursts of $40, $32, $20, $10, $10 over half an hour, 5 h apart
        for k, usd in enumerate((40.0, 32.0, 20.0, 10.0, 10.0)):
            events += spend(day + d * 86400 + 3600 + k * 5 * 3600, 30, usd * 2)
    drive = Drive(team_detector(budget(100.0, "day")))
    found = _budget_signals(drive.feed(events) + drive.tick_to(day + 2 * 86400 + 120))
    firing_only = [(s.firing, s.severity, s.threshold) for s in found]
    one_day = [(True, Severity.INFO, 0.7), (True, Severity.WARNING, 0.9), (True, Severity.CRITICAL, 1.0)]
    assert [f for f in firing_only if f[0]] == one_day * 2
    resolved = [s for s in drive.signals if not s.firing]
    assert len(resolved) == 2 and resolved[0].scope == {"team": "team-a"}
    assert format_ts(resolved[0].ts).startswith("2026-11-04T00:0")  # cleared by the new period
    assert found[2].summary.startswith("budget day-cap: 100% of the day's $100.00 spent ($100.00;")


def test_learned_and_budget_findings_on_one_scope_share_one_episode() -> None:
    wf_budget = MoneyBudget(name="wf-daily", match=WF, period="day", amount_usd=80.0)
    drive = Drive(BurnRateDetector(BurnRateParams(), "workflow", (wf_budget,)))
    # $12/h for 2.5 h ($30), a quarter hour at $132/h ($33, 79 % of the day's $80), then $1/h
    events = spend(T0, 150, 12.0) + spend(T0 + 150 * 60, 15, 132.0) + spend(T0 + 165 * 60, 14 * 60 - 165, 1.0)
    found = drive.feed(events) + drive.tick_to(T0 + 14 * 3600 + 300)
    assert [(s.firing, s.metric, s.severity) for s in found] == [
        (True, "burn_usd_per_hour", Severity.WARNING),  # the learned spike opens the episode...
        (False, "burn_usd_per_hour", Severity.WARNING),  # ...which the 79 % spent keeps open until
    ]  # the new day, although the spend rate was back to normal within minutes
    assert all(s.scope == WF for s in found)
    assert format_ts(found[-1].ts).startswith("2026-11-03T00:0")


def test_budget_state_survives_snapshot_through_json() -> None:
    events = spend(T0, 3 * 60, 300.0)
    whole = Drive(team_detector(budget(7200.0)))
    expected = whole.feed(events)
    first = Drive(team_detector(budget(7200.0)))
    got = first.feed(events[:40])
    restored = team_detector(budget(7200.0))
    restored.restore(orjson.loads(orjson.dumps(first.detector.snapshot())))
    second = Drive(restored)
    second.next_tick = first.next_tick
    got += second.feed(events[40:])
    assert [(s.firing, s.severity, s.observed, s.summary) for s in got] == [
        (s.firing, s.severity, s.observed, s.summary) for s in expected
    ]
    assert firing(got)
    renamed = team_detector(MoneyBudget(name="other", match={"team": "team-a"}, amount_usd=7200.0))
    renamed.restore(orjson.loads(orjson.dumps(first.detector.snapshot())))  # a new budget starts afresh
    assert renamed.snapshot()["state"]["budgets"] == {"other": {"start": 0.0, "end": 0.0, "spent": 0.0}}
