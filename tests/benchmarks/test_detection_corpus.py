"""The benchmark's corpus: runaways spliced into the real trace from its own runs, and metered streams
whose labels sit where their spikes, floods and shifts are."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

import tests.benchmarks._paths  # noqa: F401  (puts benchmarks/ on the path)
from schemas.events import CostEvent
from tests.paths import REAL_TRACE

from detection_corpus import DEMO_SEED, HELD_OUT_SEEDS, TUNING_SEEDS, fleet_shape, metered_events  # isort: skip
from detection_splice import YOUNG_RUNS, completed_before, load_trace, splice_runaways  # isort: skip


@pytest.fixture(scope="module")
def spliced() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    trace = load_trace(REAL_TRACE)
    events, incidents = splice_runaways(trace, TUNING_SEEDS[0], (2, 2, 1))
    return trace, events, incidents


def _steps(events: list[dict[str, Any]], root: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("root_task_id", e["task_id"]) == root and e["kind"] == "step"]


def test_a_splice_repeats_its_runs_own_steps_and_never_finishes(spliced: Any) -> None:
    trace, events, incidents = spliced
    for inc in incidents:
        own = _steps(trace, inc.root_task_id)
        mine = _steps(events, inc.root_task_id)
        assert len(mine) % len(own) == 0 and len(mine) >= 2 * len(own)
        key = ("category", "name", "input_tokens", "output_tokens", "cost_usd", "status")
        pattern = [tuple(e.get(k) for k in key) for e in own]
        assert [tuple(e.get(k) for k in key) for e in mine] == pattern * (len(mine) // len(own))
        assert not any(e["kind"] == "task_finished" and e["task_id"] == inc.root_task_id for e in events)
        assert 45.0 <= inc.cost_without_kill_usd <= 85.0
        assert inc.cost_without_kill_usd == pytest.approx(sum(e.get("cost_usd") or 0.0 for e in mine), rel=1e-6)
        assert inc.start_ts == min(e["ts"] for e in events if e.get("root_task_id") == inc.root_task_id)
        assert inc.kind == "runaway_loop" and inc.scope["root_task_id"] == inc.root_task_id


def test_half_of_the_splices_are_in_young_workflows_counted_from_the_trace(spliced: Any) -> None:
    trace, _events, incidents = spliced
    cohorts = Counter(i.details["cohort"] for i in incidents)
    assert cohorts == {"young": 2, "mature": 2, "unseen": 1}
    trace_workflows = {e["workflow"] for e in trace}
    for inc in incidents:
        wf = inc.scope["workflow"]
        done = completed_before(trace, wf, inc.start_ts)
        if inc.details["cohort"] == "young":
            assert done < YOUNG_RUNS
        elif inc.details["cohort"] == "mature":
            assert done >= YOUNG_RUNS
        else:
            assert wf not in trace_workflows and done == 0


def test_spliced_events_stay_valid_contract_events_sorted_by_time(spliced: Any) -> None:
    _, events, _ = spliced
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(events))
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))
    for e in events[:: max(1, len(events) // 3000)]:
        CostEvent.model_validate(e)


def test_metered_labels_sit_where_the_spend_changes() -> None:
    events, incidents = metered_events(TUNING_SEEDS[0])
    for e in events[::97]:
        CostEvent.model_validate(e)
    steps = [e for e in events if e["kind"] == "step"]
    by = {i.kind: i for i in incidents}
    spike, flood, shift = by["metered_spike"], by["metered_flood"], by["metered_level_shift"]
    normal = [e["cost_usd"] for e in steps if e["ts"] < spike.start_ts]
    inside = [e["cost_usd"] for e in steps if spike.start_ts <= e["ts"] < spike.end_ts]
    after = [e["cost_usd"] for e in steps if e["ts"] >= shift.start_ts]
    med = sorted(normal)[len(normal) // 2]
    assert 3 <= len(inside) <= 6 and min(inside) > 4 * med  # 10x for 15-30 min, one record per 5 min
    assert sorted(after)[len(after) // 2] > 2 * med
    in_flood = [e for e in steps if flood.start_ts <= e["ts"] < flood.end_ts]
    per_hour = len(in_flood) / ((flood.end_ts - flood.start_ts) / 3600)
    assert per_hour > 100  # 12 records an hour outside, 120 inside
    assert sorted(e["cost_usd"] for e in in_flood)[len(in_flood) // 2] < 2 * med  # records of the usual size
    outside = [e for e in steps if spike.end_ts <= e["ts"] < flood.start_ts]
    assert all(e["cost_usd"] < 4 * med for e in outside)
    assert all(i.scope["workflow"] == steps[0]["workflow"] for i in incidents)


def test_the_seeds_keep_the_demo_out_and_the_shapes_vary() -> None:
    assert DEMO_SEED not in TUNING_SEEDS + HELD_OUT_SEEDS
    assert len(TUNING_SEEDS) >= 20 and len(HELD_OUT_SEEDS) >= 6
    assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)
    shapes = [fleet_shape(s) for s in TUNING_SEEDS]
    assert len({(s["hours"], s["scale"]) for s in shapes}) >= 5
    assert any(len(s["workflows"]) < 10 for s in shapes) and any(len(s["incidents"]) > 6 for s in shapes)
