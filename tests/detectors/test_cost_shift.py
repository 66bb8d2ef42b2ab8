"""CostShiftDetector: warm-up, a 10x shift, hysteresis, cost per success, budget lines, state, real fleet."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from detectors.base import Signal, StateVersionError
from detectors.cost_shift import CostShiftDetector, CostShiftParams
from schemas.anomaly import Severity
from tests.detectors.factory_a import (
    T0,
    drive,
    normal_tasks,
    real_trace_events,
    real_trace_run,
    replay,
    round_trip,
    task_events,
    view,
)

WF_SCOPE = {"tenant": "acme", "team": "team-a", "workflow": "wf"}


def tasks(n: int, at: int, prefix: str, **kw: Any) -> list[dict[str, Any]]:
    """``n`` tasks starting at slot ``at`` (one slot = 5 minutes after T0)."""
    return normal_tasks(n, T0 + at * 300, prefix=prefix, **kw)


def shifted(n: int, at: int, prefix: str = "x") -> list[dict[str, Any]]:
    return tasks(n, at, prefix, step_cost=0.20)  # ten times the normal $0.02 a step


def firing(signals: list[Signal]) -> list[Signal]:
    return [s for s in signals if s.firing]


def test_silent_until_min_samples_reference_tasks_and_a_full_window() -> None:
    det = CostShiftDetector()  # window 20, min_samples 30
    assert drive(det, tasks(29, 0, "n") + shifted(20, 29)) == []  # 29 reference tasks: silent
    assert firing(drive(det, shifted(1, 49, "y")))  # the 30th reference task ends the warm-up


def test_flags_a_10x_shift_warning_then_critical_never_kill_eligible() -> None:
    det = CostShiftDetector()
    assert drive(det, tasks(60, 0, "n")) == []
    signals = drive(det, shifted(20, 60))
    assert signals and all(s.firing for s in signals)
    assert signals[0].severity is Severity.WARNING and signals[-1].severity is Severity.CRITICAL
    assert not any(s.kill_eligible for s in signals)
    assert all(s.scope == WF_SCOPE for s in signals)  # workflow-level: no task in the scope
    last = signals[-1]
    assert last.metric == "task_cost_median_usd" and last.unit == "usd"
    assert last.expected is not None
    assert last.expected == pytest.approx(0.4, rel=0.25)  # reference median of $0.30-0.50 tasks
    assert last.observed == pytest.approx(4.0, rel=0.25)
    assert last.threshold == pytest.approx(2.5 * last.expected, rel=1e-3)
    assert last.score is not None and last.score > 3.0
    assert "$" in last.summary and "wf" in last.summary and "model" in last.summary
    ev = last.evidence
    assert ev["window"] == 20 and 40 <= ev["n"] < 60  # only normal tasks that left the window
    assert ev["lines_usd_per_task"]["recent"]["model"] > 5 * ev["lines_usd_per_task"]["reference"]["model"]
    assert ev["cost_per_success_usd"]["recent"] > 5 * ev["cost_per_success_usd"]["reference"]
    orjson.dumps([s.evidence for s in signals])


def test_resolves_once_with_hysteresis() -> None:
    det = CostShiftDetector()
    drive(det, tasks(60, 0, "n") + shifted(20, 60))
    after = drive(det, tasks(40, 80, "m"))
    resolved = [s for s in after if not s.firing]
    assert len(resolved) == 1 and after[-1] is resolved[0]  # one resolve, nothing after it
    r = resolved[0]
    assert r.scope == WF_SCOPE and "back to" in r.summary
    ratios = [r.evidence["median_usd"]["recent"] / r.evidence["median_usd"]["reference"],
              r.evidence["cost_per_success_usd"]["recent"] / r.evidence["cost_per_success_usd"]["reference"]]
    assert max(ratios) < 0.8 * 2.5


def test_no_resolve_inside_the_hysteresis_band() -> None:
    det = CostShiftDetector(CostShiftParams(factor=2.5, critical_factor=50))
    drive(det, tasks(60, 0, "n") + tasks(20, 60, "x", step_cost=0.06))  # a 3x shift: firing
    band = drive(det, tasks(40, 80, "b", step_cost=0.045))  # 2.25x: under the factor, over 0.8 x factor
    assert all(s.firing for s in band)


def test_cost_per_success_moves_when_success_collapses() -> None:
    det = CostShiftDetector()
    drive(det, tasks(60, 0, "n"))
    failing = [e for i in range(20)
               for e in tasks(1, 60 + i, f"f{i}", outcome="success" if i % 4 == 0 else "failure")]
    signals = firing(drive(det, failing))
    assert signals and signals[-1].metric == "cost_per_success_usd"
    assert signals[-1].severity is Severity.WARNING  # 20 / 5 successes = 4x: over 2.5, under 5
    assert signals[-1].evidence["successes"]["recent"] == 5
    median = signals[-1].evidence["median_usd"]
    assert median["recent"] < 1.5 * median["reference"]  # the money per task did not move


def test_human_review_money_is_not_a_cost_shift() -> None:
    det = CostShiftDetector()
    drive(det, tasks(60, 0, "n"))
    assert drive(det, tasks(30, 60, "r", review_usd=9.0)) == []


def test_does_not_learn_from_its_own_anomalies() -> None:
    det = CostShiftDetector()
    drive(det, tasks(60, 0, "n"))
    signals = drive(det, shifted(120, 60))  # six windows of the shift
    assert signals[-1].firing and signals[-1].severity is Severity.CRITICAL
    assert signals[-1].evidence["median_usd"]["reference"] == signals[0].evidence["median_usd"]["reference"]
    assert signals[-1].evidence["n"] == signals[0].evidence["n"]


def test_a_shift_never_teaches_the_reference_even_after_it_resolved() -> None:
    det = CostShiftDetector()
    first = drive(det, tasks(60, 0, "n") + shifted(20, 60))
    drive(det, tasks(40, 80, "m"))
    again = firing(drive(det, shifted(20, 120, "y")))
    assert again and again[-1].severity is Severity.CRITICAL
    ref0, ref1 = first[-1].evidence, again[-1].evidence
    assert ref1["median_usd"]["reference"] == pytest.approx(ref0["median_usd"]["reference"], rel=0.1)
    assert ref1["cost_per_success_usd"]["reference"] < 1.2 * ref0["cost_per_success_usd"]["reference"]


def test_deterministic() -> None:
    stream = tasks(60, 0, "n") + shifted(20, 60) + tasks(30, 80, "m")
    out = drive(CostShiftDetector(), stream)
    assert out and view(out) == view(drive(CostShiftDetector(), stream))


def test_snapshot_round_trip_mid_shift_gives_identical_next_outputs() -> None:
    det = CostShiftDetector()
    assert firing(drive(det, tasks(60, 0, "n") + shifted(12, 60)))
    copy = round_trip(det, CostShiftDetector(det.params))
    assert copy.snapshot() == det.snapshot()
    rest = shifted(8, 72, "y") + tasks(30, 80, "m")
    out = drive(det, rest)
    assert any(not s.firing for s in out)
    assert view(drive(copy, rest)) == view(out)


def test_quiet_on_the_real_fleet() -> None:
    engine, anomalies = real_trace_run()
    assert [a for a in anomalies if a.detector == "cost_shift"] == []
    # and not for want of trying: django's 231 tasks were compared, window after window
    django = engine.snapshot()["detectors"]["research\x1fswebench-verified\x1fdjango"]["cost_shift"]["state"]
    assert django["ref"]["n"] >= 150 and not django["shifted"]


def test_quiet_on_the_real_fleet_driven_directly() -> None:
    assert replay(real_trace_events(), CostShiftDetector).signals == []


def heavy_tailed(n: int, at: int, prefix: str, seed: int, scale: float = 1.0, gap_s: float = 300.0,
                 ) -> list[dict[str, Any]]:
    """``n`` tasks whose cost is log-normal (median ~$0.40 x ``scale``, a heavy right tail), one every
    ``gap_s`` seconds from slot ``at``: a noisy workflow, every task drawn from the same law."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        steps = max(1, round(20 * rng.lognormvariate(0.0, 0.8)))
        out += task_events(f"{prefix}{i}", T0 + at * 300 + i * gap_s, steps=steps, step_cost=0.02 * scale)
    return out


def test_a_material_shift_fires_with_its_money_at_stake_and_test() -> None:
    det = CostShiftDetector()
    drive(det, tasks(60, 0, "n"))
    (first, *_) = firing(drive(det, tasks(20, 60, "x", step_cost=0.06)))  # 3x, one task every 5 min
    ev = first.evidence
    assert ev["tasks_per_day"] == pytest.approx(288, rel=0.01)  # 86,400 s / 300 s
    assert ev["usd_at_stake_per"] == "day" and ev["usd_at_stake"] >= 5.0
    assert ev["test"]["name"] == "mann_whitney_u" and ev["test"]["p_value"] < ev["test"]["alpha"] == 0.001
    assert ev["test"]["statistic"] > 0.75 * 20 * ev["test"]["reference_sample"]  # H0 would give half the pairs


def test_an_immaterial_shift_does_not_fire_even_when_its_ratio_is_large() -> None:
    # cents: a $0.004 task becoming $0.04 (10x) in a workflow of four tasks a day is $0.14/day
    cheap = CostShiftDetector()
    day = 21_600.0  # one task every 6 hours
    assert drive(cheap, normal_tasks(60, T0, prefix="n", gap_s=day, step_cost=0.0002)
                 + normal_tasks(40, T0 + 60 * day, prefix="x", gap_s=day, step_cost=0.002)) == []
    # the same 10x shift at 288 tasks a day is $10/day: it fires
    busy = CostShiftDetector(CostShiftParams(min_usd_per_day=5.0))
    assert firing(drive(busy, normal_tasks(60, T0, prefix="n", step_cost=0.0002)
                        + normal_tasks(40, T0 + 60 * 300, prefix="x", step_cost=0.002)))
    # and a tenant that cares about cents lowers the floor through the overrides
    from detectors.config import BurnguardConfig

    config = BurnguardConfig.model_validate(
        {"overrides": [{"match": {"tenant": "acme"}, "detectors": {"cost_shift": {"min_usd_per_day": 0.1}}}]}
    )
    params = config.resolve("acme", "team-a", "wf").params["cost_shift"]
    assert isinstance(params, CostShiftParams) and params.min_usd_per_day == 0.1
    assert firing(drive(CostShiftDetector(params), normal_tasks(60, T0, prefix="n", gap_s=day, step_cost=0.0002)
                        + normal_tasks(40, T0 + 60 * day, prefix="x", gap_s=day, step_cost=0.002)))


def test_usd_at_stake_on_a_hand_computed_case() -> None:
    # reference: 60 tasks of 20 steps at $0.02 = $0.40; the window: tasks of 20 steps at $0.10 = $2.00
    det = CostShiftDetector(CostShiftParams(window=5, min_samples=10))
    events = [e for i in range(15) for e in task_events(f"n{i}", T0 + i * 600)]  # one task every 10 min
    events += [e for i in range(5) for e in task_events(f"x{i}", T0 + (15 + i) * 600, step_cost=0.10)]
    signals = firing(drive(det, events))
    assert signals
    ev = signals[-1].evidence
    assert ev["tasks_per_day"] == pytest.approx(144.0)  # 19 gaps of 600 s over 3.17 h: 144 a day
    # the window's mean is $2.00, the reference's $0.40: $1.60 a task x 144 tasks a day
    assert ev["usd_at_stake"] == pytest.approx(1.60 * 144, abs=0.01)


def test_a_noisy_unshifted_workflow_fires_at_about_alpha() -> None:
    # a generous factor test: 1.5x, so the ratio alone would often fire on a heavy tail
    params = CostShiftParams(factor=1.5, critical_factor=50, min_usd_per_day=0.0, alpha=0.01)
    opened = compared = 0
    for seed in range(40):
        det = CostShiftDetector(params)
        signals = drive(det, heavy_tailed(300, 0, f"s{seed}-", seed))
        compared += 300 - params.min_samples - params.window  # one comparison per task after the warm-up
        opened += sum(1 for i, s in enumerate(signals) if s.firing and (i == 0 or not signals[i - 1].firing))
    assert compared > 9_000
    assert opened / compared < 2 * params.alpha  # episodes opened per comparison: about alpha at most
    lax = CostShiftParams(factor=1.5, critical_factor=50, min_usd_per_day=0.0, alpha=0.999)
    ratio_only = sum(len(firing(drive(CostShiftDetector(lax), heavy_tailed(300, 0, f"s{s}-", s)))) for s in range(5))
    assert ratio_only > 0  # the heavy tail does cross the ratio: the test is what keeps it quiet


def test_the_old_snapshot_version_is_refused() -> None:
    det = CostShiftDetector()
    drive(det, tasks(60, 0, "n"))
    snap = det.snapshot()
    assert snap["v"] == 2 and len(snap["state"]["sample"]) == 40 and len(snap["state"]["ends"]) == 60
    old = {"v": 1, "state": {k: v for k, v in snap["state"].items() if k not in ("sample", "ends")}}
    with pytest.raises(StateVersionError):
        CostShiftDetector().restore(old)


def test_the_reference_sample_and_volume_stay_bounded() -> None:
    det = CostShiftDetector(CostShiftParams(reference_size=50))
    drive(det, tasks(300, 0, "n"))
    state = det.snapshot()["state"]
    assert len(state["sample"]) == 50 and len(state["ends"]) == 50
    copy = CostShiftDetector(det.params)
    round_trip(det, copy)
    assert copy.snapshot() == det.snapshot() and copy.tasks_per_day() == det.tasks_per_day()
    assert det.tasks_per_day() == pytest.approx(288, rel=0.05)
