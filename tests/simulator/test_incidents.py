"""Tests of the injected incidents: placement and ground truth against the simulated stream."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from burnguard.simulator import DEFAULT_WORKFLOWS, INCIDENT_KINDS, FleetSimulator, Incident

Event = dict[str, Any]


def _by_kind(sim: FleetSimulator) -> dict[str, Incident]:
    return {incident.kind: incident for incident in sim.incidents}


def _root_tasks(events: list[Event], workflow: str) -> dict[str, dict[str, Any]]:
    """Per root task of ``workflow``: start ts, finish ts (or None) and the tree's total cost."""
    tasks: dict[str, dict[str, Any]] = defaultdict(lambda: {"start": None, "end": None, "cost": 0.0})
    for e in events:
        if e["workflow"] != workflow:
            continue
        task = tasks[e["root_task_id"]]
        task["cost"] += e.get("cost_usd", 0.0)
        if e["task_id"] == e["root_task_id"]:
            if e["kind"] == "task_started":
                task["start"] = e["ts"]
            elif e["kind"] == "task_finished":
                task["end"] = e["ts"]
    return tasks


# --- incidents -------------------------------------------------------------------------------


def test_incident_placement(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, _ = fleet
    assert sorted(i.kind for i in sim.incidents) == sorted(INCIDENT_KINDS)
    for incident in sim.incidents:
        assert incident.start_ts >= sim.start_ts + 12 * 3600
        assert incident.start_ts < incident.end_ts <= sim.end_ts + 3600
        assert incident.scope["workflow"] in {wf.name for wf in DEFAULT_WORKFLOWS}
        if incident.kind in ("runaway_loop", "subagent_explosion", "zombie_task"):
            assert incident.scope["root_task_id"] == incident.root_task_id
            assert incident.cost_without_kill_usd is not None
    by_workflow: dict[str, list[Incident]] = defaultdict(list)
    for incident in sim.incidents:
        by_workflow[incident.workflow].append(incident)
    for same in by_workflow.values():
        same.sort(key=lambda i: i.start_ts)
        assert all(a.end_ts <= b.start_ts for a, b in itertools.pairwise(same))


def test_incident_subset_and_bad_arguments() -> None:
    sim = FleetSimulator(seed=7, incidents=("traffic_flood",))
    assert [i.kind for i in sim.incidents] == ["traffic_flood"]
    with pytest.raises(ValueError, match="unknown incident kind"):
        FleetSimulator(incidents=("meteor_strike",))
    with pytest.raises(ValueError, match="simulated hours"):
        FleetSimulator(hours=10.0, incidents=("routing_regression",))
    with pytest.raises(ValueError):
        FleetSimulator(scale=0.0)


def test_task_incident_costs_match_the_stream(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, events = fleet
    for incident in sim.incidents:
        if incident.root_task_id is None:
            continue
        mine = [e for e in events if e["root_task_id"] == incident.root_task_id]
        assert sum(e.get("cost_usd", 0.0) for e in mine) == pytest.approx(
            incident.cost_without_kill_usd, abs=1e-4
        )
        assert mine[0]["ts"] == incident.start_ts and mine[-1]["ts"] == incident.end_ts


def test_runaway_loop(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, events = fleet
    incident = _by_kind(sim)["runaway_loop"]
    assert incident.cost_without_kill_usd is not None and incident.cost_without_kill_usd >= 100.0
    loop_start = incident.details["loop_start_ts"]
    assert incident.start_ts < loop_start < incident.start_ts + 600
    calls = [
        e
        for e in events
        if e["root_task_id"] == incident.root_task_id
        and e.get("category") == "model"
        and e["ts"] > loop_start
    ]
    assert calls[-1]["ts"] - calls[0]["ts"] >= 3600
    assert statistics.median(b["ts"] - a["ts"] for a, b in itertools.pairwise(calls)) < 15.0
    prompts = [e["input_tokens"] for e in calls[:120]]
    assert sum(b > a for a, b in itertools.pairwise(prompts)) > 0.9 * (len(prompts) - 1)
    normal = [
        t["cost"] for rid, t in _root_tasks(events, incident.workflow).items() if rid != incident.root_task_id
    ]
    assert incident.cost_without_kill_usd > 20 * max(normal)


def test_zombie_task(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, events = fleet
    incident = _by_kind(sim)["zombie_task"]
    compute = [
        e for e in events if e["root_task_id"] == incident.root_task_id and e.get("category") == "compute"
    ]
    assert compute[-1]["ts"] - compute[0]["ts"] >= 6 * 3600
    assert incident.start_ts < incident.details["idle_start_ts"] < compute[0]["ts"]
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(compute)]
    assert all(55.0 <= g <= 65.0 for g in gaps)
    assert all(e["cost_usd"] < 0.05 for e in compute)


def test_subagent_explosion(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, events = fleet
    incident = _by_kind(sim)["subagent_explosion"]
    subs = [
        e
        for e in events
        if e["root_task_id"] == incident.root_task_id
        and e["kind"] == "task_started"
        and "parent_task_id" in e
    ]
    assert len(subs) >= 40
    parents = {e["task_id"]: e["parent_task_id"] for e in subs}

    def depth(task_id: str) -> int:
        return 1 + depth(parents[task_id]) if task_id in parents else 0

    assert max(depth(t) for t in parents) >= 3
    others = Counter(
        e["root_task_id"]
        for e in events
        if e["kind"] == "task_started"
        and "parent_task_id" in e
        and e["root_task_id"] != incident.root_task_id
    )
    assert max(others.values()) <= 3


def test_routing_regression(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, events = fleet
    incident = _by_kind(sim)["routing_regression"]
    tasks = _root_tasks(events, incident.workflow).values()
    before = [t["cost"] for t in tasks if t["end"] is not None and t["end"] < incident.start_ts]
    after = [t["cost"] for t in tasks if t["start"] >= incident.start_ts]
    assert len(before) >= 30 and len(after) >= 30
    assert statistics.fmean(after) >= 5 * statistics.fmean(before)
    models_after = {
        e["name"]
        for e in events
        if e["workflow"] == incident.workflow
        and e.get("category") == "model"
        and e["ts"] >= incident.start_ts
    }
    assert models_after == {incident.details["to_model"]}


def test_traffic_flood(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, events = fleet
    incident = _by_kind(sim)["traffic_flood"]
    starts = [
        e["ts"]
        for e in events
        if e["workflow"] == incident.workflow and e["kind"] == "task_started" and "parent_task_id" not in e
    ]
    window_h = (incident.end_ts - incident.start_ts) / 3600
    during = sum(incident.start_ts <= t < incident.end_ts for t in starts) / window_h
    day_before = incident.start_ts - 86400  # same hours of the previous day: same daily rhythm
    before = sum(day_before - 3600 <= t < day_before + 7200 for t in starts) / 3.0
    assert during >= 8 * before


def test_retry_storm(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, events = fleet
    incident = _by_kind(sim)["retry_storm"]
    target = incident.details["target"]
    calls = [e for e in events if e["workflow"] == incident.workflow and e.get("name") == target]
    inside = [e for e in calls if incident.start_ts <= e["ts"] < incident.end_ts]
    outside = [e for e in calls if not incident.start_ts - 600 <= e["ts"] < incident.end_ts + 600]
    assert 0.4 <= sum(e["status"] == "error" for e in inside) / len(inside) <= 0.8
    assert sum(e["status"] == "error" for e in outside) / len(outside) < 0.05
    assert max(e["attempt"] for e in inside) == 5
    assert 1 < incident.end_ts - incident.start_ts <= 2 * 3600 + 1
    tasks = _root_tasks(events, incident.workflow).values()
    hit = [t for t in tasks if incident.start_ts <= t["start"] < incident.end_ts]
    assert hit and all(t["end"] is not None for t in hit)


def test_only_the_never_ending_incident_tasks_stay_open(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, events = fleet
    started = {e["task_id"] for e in events if e["kind"] == "task_started"}
    finished = {e["task_id"] for e in events if e["kind"] == "task_finished"}
    incidents = _by_kind(sim)
    assert started - finished == {
        incidents["runaway_loop"].root_task_id,
        incidents["zombie_task"].root_task_id,
    }
    assert finished <= started


def test_consumers_cannot_change_the_incident_tasks_of_a_later_run() -> None:
    research = [wf for wf in DEFAULT_WORKFLOWS if wf.name == "research-assistant"]
    sim = FleetSimulator(seed=7, hours=16.0, incidents=("subagent_explosion",), workflows=research)
    first = list(sim.events())
    snapshot = orjson.dumps(first)
    assert any(e["root_task_id"] == sim.incidents[0].root_task_id for e in first)
    for e in first:
        e["ts"] = "changed"
        e.get("attributes", {}).clear()
    assert orjson.dumps(list(sim.events())) == snapshot
