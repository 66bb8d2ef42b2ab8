"""Learned spend rate per tenant, team and workflow, with its daily rhythm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from detectors.base import Signal
from detectors.budgets import MoneyBudget
from detectors.burn_rate import BurnRateDetector, BurnRateParams, Level
from schemas.anomaly import AnomalyStatus, Severity
from schemas.events import CostEvent
from tests.detectors.factory_b import T0, Drive, firing, fold, real_trace_anomalies, step

HOUR, DAY = 3600.0, 86400.0
WF = {"tenant": "acme", "team": "team-a", "workflow": "wf"}


def spend(start: float, end: float, usd_per_hour: float | Callable[[float], float]) -> list[dict[str, Any]]:
    """A step every 20 s from ``start`` to ``end`` at ``usd_per_hour`` (a number or a function of time)."""
    rate = usd_per_hour if callable(usd_per_hour) else (lambda _t: float(usd_per_hour))
    n = int((end - start) // 20)
    return [step(f"s{int(t // HOUR)}", t, rate(t) / 180) for t in (start + 20 * m for m in range(n))]


def office_hours(t: float) -> float:
    """$40/h from 08:00 to 18:00 UTC, $2/h at night."""
    return 40.0 if 8 <= int(t // HOUR) % 24 < 18 else 2.0


def detector(level: Level = "workflow", **params: Any) -> BurnRateDetector:
    return BurnRateDetector(BurnRateParams(**params), level)


def run(events: list[dict[str, Any]], det: BurnRateDetector | None = None) -> list[Signal]:
    drive = Drive(det or detector())
    return drive.feed(events) + drive.tick_to(max(e["ts"] for e in events) + 600)


def test_silent_until_min_samples_buckets_are_learned() -> None:
    # the first bucket is partial and never learned: 1.5 h give 17 learned buckets, fewer than 24
    early = T0 + 1.5 * HOUR
    assert run(spend(T0, early, 12.0) + spend(early, early + 900, 132.0)) == []
    later = T0 + 2.5 * HOUR
    assert firing(run(spend(T0, later, 12.0) + spend(later, later + 900, 132.0)))


def test_a_10x_quarter_hour_is_critical_a_5x_half_hour_a_warning_never_kill_eligible() -> None:
    base = spend(T0, T0 + 2.5 * HOUR, 12.0)
    spike = T0 + 2.5 * HOUR
    found = firing(run(base + spend(spike, spike + 900, 132.0)))
    assert [(s.severity, s.kill_eligible, s.scope) for s in found] == [(Severity.CRITICAL, False, WF)]
    sig = found[0]
    assert sig.ts == spike + 600  # the second bucket: the first alone did not move the hour enough
    assert sig.metric == "burn_usd_per_hour" and sig.unit == "USD/h"
    assert sig.observed == pytest.approx(132.0) and sig.expected == pytest.approx(12.0)
    assert sig.threshold == pytest.approx(48.0) and sig.score == pytest.approx(132.0 / 48.0)
    assert sig.summary == (
        "wf spending $132.00/h over the 5 min from 12:35 UTC "
        "(11.0x the $12.00/h usual at 12:00 UTC; last hour $29.87/h)"
    )
    assert sig.evidence["baseline"] == "hour_of_day" and sig.evidence["spend_usd"] == pytest.approx(11.0)
    # the last hour judged bucket by bucket without its largest step (14 of 15 equal steps):
    # (10 x $11.20/h + 2 x $123.20/h) / 12 = $29.87/h
    long_rate = (10 * 12.0 + 2 * 132.0) * 14 / 15 / 12
    # at stake: the last hour's excess over its expected $12/h, from 12:40 UTC to midnight (11 h 20 min)
    assert sig.evidence["usd_at_stake"] == pytest.approx((long_rate - 12.0) * (11 + 1 / 3), abs=0.01)
    warn = firing(run(base + spend(spike, spike + 1800, 60.0)))
    assert [s.severity for s in warn] == [Severity.WARNING]


def test_a_5_minute_blip_or_one_expensive_step_is_not_a_burn() -> None:
    spike = T0 + 2.5 * HOUR
    blip = spend(spike, spike + 300, 132.0)  # 11x for 5 min: the hour rises by less than 2x
    assert run(spend(T0, spike, 12.0) + blip + spend(spike + 300, spike + HOUR, 12.0)) == []
    review = [step("r", spike + 30, 20.0, category="human_review", name="escalation")]  # $240/h alone
    assert run(spend(T0, spike + HOUR, 12.0) + review) == []


def metered(start: float, end: float, usd: Callable[[float], float]) -> list[dict[str, Any]]:
    """One record every 5 min (a batch job's or a cloud bill's line), ``usd(t)`` each, 10 s into its bucket."""
    return [step(f"m{m}", start + 300 * m + 10, usd(start + 300 * m)) for m in range(int((end - start) // 300))]


def test_a_metered_stream_of_one_record_per_bucket_is_not_blind_to_a_10x_spike() -> None:
    spike = T0 + 30 * HOUR
    normal = [1.0, 1.2, 0.8, 1.1, 0.9, 1.0]  # $12/h give or take

    def usd(t: float) -> float:
        return normal[int(t // 300) % len(normal)] * (10.0 if spike <= t < spike + 1800 else 1.0)

    found = firing(run(metered(T0, spike + 3 * HOUR, usd)))
    assert [s.severity for s in found] == [Severity.CRITICAL]
    assert spike < found[0].ts <= spike + 900  # within 15 min of the onset
    assert found[0].evidence["metered"] and found[0].evidence["largest_step_share_usual"] == pytest.approx(1.0)
    # the same stream without the spike: nothing (its one record per bucket is its normal shape)
    assert firing(run(metered(T0, spike + 3 * HOUR, lambda t: normal[int(t // 300) % len(normal)]))) == []


def test_a_lucky_draw_of_tasks_is_not_a_flood_but_a_sustained_one_is() -> None:
    cycle = [6, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]  # tasks per bucket

    def tasks(first: int, counts: list[int]) -> list[dict[str, Any]]:
        out = []
        for b, n in enumerate(counts):  # each task: five $0.10 calls within its bucket
            t0 = T0 + 300 * (first + b)
            out += [step(f"t{first + b}-{k}", t0 + 10 * k + c, 0.1) for k in range(n) for c in range(5)]
        return sorted(out, key=lambda e: e["ts"])

    quiet = tasks(0, cycle * 24)  # two days where one bucket in 24 holds six tasks ($36/h, 12x the mean)
    assert run(quiet) == []
    alone = detector(long_factor=1.0, min_sigmas=0.0, min_excess_usd_per_hour=0.0)
    assert firing(run(quiet, alone))  # the 5-min rule alone would fire
    flood = quiet + tasks(len(cycle) * 24, [5] * 6)  # then 5 tasks in every bucket for half an hour
    found = firing(run(flood))
    assert found and all(s.ts > T0 + 2 * DAY for s in found)


@pytest.mark.parametrize(
    ("level", "scope"), [("tenant", {"tenant": "acme"}), ("team", {"tenant": "acme", "team": "team-a"})]
)
def test_the_scope_follows_the_level(level: Level, scope: dict[str, str]) -> None:
    spike = T0 + 2.5 * HOUR
    found = firing(run(spend(T0, spike, 12.0) + spend(spike, spike + 900, 132.0), detector(level)))
    assert [s.scope for s in found] == [scope] and found[0].summary.startswith(f"{list(scope.values())[-1]} ")


def test_small_money_is_never_an_anomaly() -> None:
    spike = T0 + 2.5 * HOUR
    assert run(spend(T0, spike, 0.2) + spend(spike, spike + 1800, 4.0)) == []  # 20x, but $4/h < $5/h


def test_one_hot_bucket_that_moves_the_hour_by_less_than_the_material_excess_is_not_a_burn() -> None:
    spike = T0 + 2.5 * HOUR  # $0.50/h, then $50/h for 5 min: 100x the bucket, the hour +$4.13/h
    events = spend(T0, spike, 0.5) + spend(spike, spike + 300, 50.0) + spend(spike + 300, spike + HOUR, 0.5)
    assert run(events) == []
    assert firing(run(events, detector(min_excess_usd_per_hour=0.0)))  # without the floor it would fire


def test_knows_a_busy_day_from_a_busy_night() -> None:
    drive = Drive(detector())
    learning = drive.feed(spend(T0, T0 + 2 * DAY - 2 * HOUR, office_hours))  # Mon 10:00 .. Wed 08:00
    assert firing(learning) == []
    assert firing(drive.feed(spend(T0 + 2 * DAY - 2 * HOUR, T0 + 2 * DAY + 14 * HOUR, office_hours))) == []
    night = T0 + 2 * DAY + 17 * HOUR  # Thursday 03:00: a night at office-hours spend
    # the first 5 min move the hour by $3.17/h; the second make it $6.33/h over the $2/h expected,
    # more than the $5/h it takes to be material (min_excess_usd_per_hour)
    found = firing(drive.feed(spend(night, night + 900, 40.0)))
    assert found and found[0].severity is Severity.CRITICAL and found[0].ts == night + 600
    assert found[0].expected == pytest.approx(2.0) and found[0].evidence["baseline"] == "hour_of_day"
    assert "usual at 03:00 UTC" in found[0].summary


def test_a_silence_longer_than_idle_learn_s_teaches_nothing() -> None:
    last, back = T0, T0 + 60 * HOUR  # 60 h without a cent, a weekend
    events = spend(last - 3 * HOUR, last, 12.0) + spend(back, back + HOUR, 12.0)
    assert firing(run(events)) == []
    learns_the_weekend = firing(run(events, detector(idle_learn_s=1e9)))
    assert learns_the_weekend and (learns_the_weekend[0].expected or 0.0) < 2.0


def test_does_not_learn_from_its_own_anomalies() -> None:
    spike = T0 + 2.5 * HOUR
    events = spend(T0, spike, 12.0)
    for k in range(6):  # six quarter-hour spikes at 11x, each followed by 1.5 normal hours
        start = spike + k * 6300
        events += spend(start, start + 900, 132.0) + spend(start + 900, start + 6300, 12.0)
    found = firing(run(events, detector(fallback_after_s=0)))  # judge unseen hours from the start
    assert len(found) == 6
    assert found[-1].expected == pytest.approx(found[0].expected, rel=0.01)


def test_a_first_morning_after_quiet_nights_is_not_a_flood() -> None:
    night, morning = T0 - 8 * HOUR, T0  # midnight to 08:00 quiet, then the working day starts
    events = spend(night, morning, 1.0) + spend(morning, morning + 3 * HOUR, 20.0)
    assert firing(run(events)) == []
    assert firing(run(events, detector(fallback_after_s=0)))  # without the rule the morning would page


def test_resolves_when_a_bucket_is_back_to_normal() -> None:
    spike = T0 + 2.5 * HOUR
    back = spike + 900
    found = run(spend(T0, spike, 12.0) + spend(spike, back, 132.0) + spend(back, back + 600, 12.0))
    assert [(s.firing, s.scope) for s in found] == [(True, WF), (False, WF)]
    assert found[1].summary == "wf: spend back to its usual rate"


def test_a_sustained_new_level_is_learned_after_relearn_after_buckets() -> None:
    shift = T0 + 2.5 * HOUR
    events = spend(T0, shift, 12.0) + spend(shift, shift + 6 * HOUR, 60.0)
    adapting = run(events)
    assert [s.firing for s in adapting] == [True, False]  # one episode, closed once learned...
    assert adapting[1].ts - shift >= 36 * 300 and adapting[1].ts < shift + 6 * HOUR  # while it goes on
    stuck = run(events, detector(relearn_after=0))
    assert [s.firing for s in stuck] == [True, False] and stuck[1].ts > shift + 6 * HOUR  # once it stops


def test_on_event_only_adds_money_and_signals_come_from_ticks() -> None:
    det = detector(fallback_after_s=0)
    for raw in spend(T0, T0 + 3 * HOUR, 12.0) + spend(T0 + 3 * HOUR, T0 + 3 * HOUR + 900, 132.0):
        assert det.on_event(CostEvent.model_validate(raw), fold([raw])) is None
    assert [s.severity for s in det.on_tick(T0 + 3 * HOUR + 960, [])] == [Severity.CRITICAL]


def test_disabled_learning_still_watches_budgets() -> None:
    month = MoneyBudget(name="m", match={"workflow": "wf"}, amount_usd=7200.0)
    det = BurnRateDetector(BurnRateParams(enabled=False), "workflow", (month,))
    spike = T0 + 2.5 * HOUR
    found = firing(run(spend(T0, spike, 12.0) + spend(spike, spike + HOUR, 500.0), det))
    assert {s.metric for s in found} == {"budget_burn_rate"}


def test_snapshot_through_json_gives_the_same_next_outputs() -> None:
    spike = T0 + 2.5 * HOUR
    back = spike + 900
    events = spend(T0, spike, 12.0) + spend(spike, back, 132.0) + spend(back, spike + HOUR, 12.0)
    whole = Drive(detector())
    expected = whole.feed(events)
    cut = len(events) - 70  # after the spike closed, while its episode is open
    first = Drive(detector())
    got = first.feed(events[:cut])
    restored = detector()
    restored.restore(orjson.loads(orjson.dumps(first.detector.snapshot())))
    second = Drive(restored)
    second.next_tick = first.next_tick
    got += second.feed(events[cut:])
    view = [(s.firing, s.severity, s.observed, s.expected, s.summary, s.evidence) for s in got]
    assert view == [(s.firing, s.severity, s.observed, s.expected, s.summary, s.evidence) for s in expected]
    assert [s.firing for s in got] == [True, False]


def test_deterministic() -> None:
    night = T0 + DAY + 12 * HOUR
    events = spend(T0, night, office_hours) + spend(night, night + HOUR, 90.0)
    views = [[(s.ts, s.firing, s.severity, s.summary, s.evidence) for s in run(events)] for _ in "xy"]
    assert views[0] == views[1] and views[0]


def test_quiet_on_the_real_fleet() -> None:
    anomalies, _ = real_trace_anomalies()
    assert not [a for a in anomalies if a.detector == "burn_rate" and a.status is AnomalyStatus.FIRING]
