"""Tests of the built-in fleet simulator: determinism, contract shape, realism, JSONL output."""

from __future__ import annotations

import gzip
import io
import itertools
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from burnguard.simulator import (
    DEFAULT_INCIDENTS,
    DEFAULT_WORKFLOWS,
    FleetSimulator,
    format_ts,
    write_jsonl,
)
from burnguard.simulator.profiles import CODE_FIX, activity, workflow_profile
from schemas.events import CostEvent
from tests.paths import REAL_TRACE

Event = dict[str, Any]
TRACE = REAL_TRACE
CATEGORIES = {
    "model",
    "embedding",
    "retrieval",
    "tool",
    "guardrail",
    "compute",
    "observability",
    "human_review",
}
OUTCOMES = {"success", "failure", "escalated", "cancelled", "killed"}
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_events() -> None:
    first = list(FleetSimulator(seed=11, hours=4.0, incidents=()).events())
    second = list(FleetSimulator(seed=11, hours=4.0, incidents=()).events())
    assert len(first) > 1_000
    assert first == second


def test_events_can_be_iterated_twice_with_the_same_result() -> None:
    sim = FleetSimulator(seed=5, hours=2.0, incidents=())
    assert list(sim.events()) == list(sim.events())


def test_different_seed_gives_different_events() -> None:
    a = list(FleetSimulator(seed=1, hours=3.0, incidents=()).events())
    b = list(FleetSimulator(seed=2, hours=3.0, incidents=()).events())
    assert [e["ts"] for e in a[:200]] != [e["ts"] for e in b[:200]]


def test_incident_ground_truth_is_deterministic_and_known_before_iterating() -> None:
    a, b = FleetSimulator(seed=7), FleetSimulator(seed=7)
    assert [i.kind for i in a.incidents] == list(DEFAULT_INCIDENTS)
    assert a.incidents == b.incidents
    assert FleetSimulator(seed=8).incidents != a.incidents


def test_a_workflow_is_the_same_whatever_else_runs(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    """doc-qa hosts no incident: alone and clean, it yields exactly its events of the full fleet."""
    _, events = fleet
    alone = list(FleetSimulator(seed=7, incidents=(), workflows=[workflow_profile("doc-qa")]).events())
    assert alone == [e for e in events if e["workflow"] == "doc-qa"]


# --- stream shape ----------------------------------------------------------------------------


def test_default_fleet_size_and_mix(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    sim, events = fleet
    assert 100_000 <= len(events) <= 250_000
    assert abs(sim.approx_event_count() - len(events)) / len(events) < 0.2
    assert len({e["tenant"] for e in events}) == 3
    assert len({e["team"] for e in events}) == 6
    assert len({e["workflow"] for e in events}) == len(DEFAULT_WORKFLOWS) == 10
    assert {e["category"] for e in events if e["kind"] == "step"} == CATEGORIES


def test_events_sorted_and_ids_unique(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    _, events = fleet
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(events))
    assert len({e["event_id"] for e in events}) == len(events)
    assert all(len(e["event_id"]) <= 128 for e in events)


def test_every_event_has_the_contract_fields(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    _, events = fleet
    for e in events:
        assert e["schema"] == "burnguard.cost_event/1"
        assert isinstance(e["ts"], float)
        assert e["ts"] == round(e["ts"], 3)
        for key in ("event_id", "tenant", "team", "workflow", "agent", "task_id", "root_task_id"):
            assert isinstance(e[key], str) and e[key], (key, e)
        assert e["kind"] in ("task_started", "step", "task_finished")
        if e["task_id"] != e["root_task_id"]:
            assert e["parent_task_id"]
        if e["kind"] == "step":
            assert e["category"] in CATEGORIES
            assert e["cost_usd"] >= 0.0
            assert e["attempt"] >= 1
            assert e["status"] in ("ok", "error")
            if e["category"] in ("model", "embedding"):
                assert e["name"] and e["provider"]
                assert e["input_tokens"] >= e.get("cached_input_tokens", 0) >= 0
                assert e["output_tokens"] >= 0
        elif e["kind"] == "task_finished":
            assert e["outcome"] in OUTCOMES
        else:
            assert e.get("budget_usd", 1.0) > 0


def test_events_validate_against_the_contract_model(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    _, events = fleet
    for e in events[::50]:
        parsed = CostEvent.model_validate(e)
        assert parsed.event_id == e["event_id"]


def test_profile_features_appear(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    _, events = fleet
    reviews = [e["cost_usd"] for e in events if e.get("category") == "human_review"]
    assert reviews and all(2.0 <= c <= 12.0 for c in reviews)
    assert any("budget_usd" in e for e in events if e["kind"] == "task_started")
    assert any("value_usd" in e for e in events if e["kind"] == "task_finished")
    outcomes = Counter(e["outcome"] for e in events if e["kind"] == "task_finished")
    assert outcomes["success"] > 0.7 * sum(outcomes.values())
    assert outcomes["failure"] > 0 and outcomes["escalated"] > 0
    normal_subs = Counter(
        e["root_task_id"]
        for e in events
        if e["kind"] == "task_started" and "parent_task_id" in e and e["workflow"] == "research-assistant"
    )
    assert 1 <= sorted(normal_subs.values())[len(normal_subs) // 2] <= 3


def test_baseline_error_share_is_a_few_percent() -> None:
    events = list(FleetSimulator(seed=3, hours=12.0, incidents=()).events())
    steps = [e for e in events if e["kind"] == "step" and e["category"] in ("model", "tool")]
    share = sum(e["status"] == "error" for e in steps) / len(steps)
    assert 0.01 <= share <= 0.05
    retries = [e for e in steps if e["attempt"] > 1]
    assert retries and max(e["attempt"] for e in retries) >= 3


def test_daily_rhythm(fleet: tuple[FleetSimulator, list[Event]]) -> None:
    _, events = fleet
    p = workflow_profile("support-triage")
    hours = Counter(
        int((e["ts"] / 3600 + p.utc_offset_hours) % 24)
        for e in events
        if e["workflow"] == p.name and e["kind"] == "task_started"
    )
    business = sum(hours[h] for h in range(10, 16)) / 6
    night = sum(hours[h] for h in range(0, 5)) / 5
    assert business > 4 * night
    assert activity(1793620800.0 + 3 * 3600, p.utc_offset_hours, p.night_share) == 1.0


def test_scale_multiplies_the_task_count() -> None:
    def roots(scale: float) -> int:
        sim = FleetSimulator(seed=4, hours=3.0, start_ts=1793577600.0 + 15 * 3600, scale=scale, incidents=())
        return sum(1 for e in sim.events() if e["kind"] == "task_started" and "parent_task_id" not in e)

    assert 1.6 < roots(2.0) / roots(1.0) < 2.4


def test_clean_fleet_every_task_finishes() -> None:
    sim = FleetSimulator(seed=9, hours=6.0, incidents=())
    assert sim.incidents == []
    events = list(sim.events())
    started = {e["task_id"] for e in events if e["kind"] == "task_started"}
    finished = {e["task_id"] for e in events if e["kind"] == "task_finished"}
    assert started and started == finished


# --- realism against the real mini-swe-agent trace -------------------------------------------


def _profile_stats(events: list[Event]) -> dict[str, float]:
    """Medians of: model-call cost, calls per task, task minutes, task cost; model error share."""
    calls = [e for e in events if e.get("category") == "model"]
    tasks: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        tasks[e["task_id"]].append(e)
    return {
        "call_cost": statistics.median(e["cost_usd"] for e in calls),
        "calls_per_task": statistics.median(
            sum(e.get("category") == "model" for e in t) for t in tasks.values()
        ),
        "task_minutes": statistics.median((t[-1]["ts"] - t[0]["ts"]) / 60 for t in tasks.values()),
        "task_cost": statistics.median(sum(e.get("cost_usd", 0.0) for e in t) for t in tasks.values()),
        "error_share": sum(e["status"] == "error" for e in calls) / len(calls),
    }


def test_coding_agent_is_realistic() -> None:
    assert TRACE.exists(), f"missing {TRACE}: put ../shared beside the repository or set BURNGUARD_SHARED"
    with gzip.open(TRACE, "rb") as fh:
        real = [orjson.loads(line) for line in fh]
    for e in real:
        e["ts"] = datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
    simulated = list(FleetSimulator(seed=3, hours=16.0, incidents=(), workflows=[CODE_FIX]).events())
    real_stats, sim_stats = _profile_stats(real), _profile_stats(simulated)
    for key, real_value in real_stats.items():
        assert real_value / 3 <= sim_stats[key] <= real_value * 3, (key, real_value, sim_stats[key])


# --- output ----------------------------------------------------------------------------------


def test_format_ts() -> None:
    assert format_ts(1793577600.0) == "2026-11-02T00:00:00.000Z"
    assert format_ts(1793577600.25) == "2026-11-02T00:00:00.250Z"
    assert format_ts(1793577659.9996) == "2026-11-02T00:01:00.000Z"


def test_write_jsonl_round_trips(tmp_path: Path) -> None:
    events = list(FleetSimulator(seed=2, hours=1.0, incidents=()).events())
    buffer = io.BytesIO()
    assert write_jsonl(events, buffer) == len(events)
    text = io.StringIO()
    write_jsonl(events[:10], text)
    assert text.getvalue().encode() == b"".join(buffer.getvalue().splitlines(keepends=True)[:10])
    path = tmp_path / "events.jsonl.gz"
    write_jsonl(iter(events), path)
    with gzip.open(path, "rb") as fh:
        lines = fh.read().splitlines()
    assert lines == buffer.getvalue().splitlines()
    for original, line in zip(events, lines, strict=True):
        written = orjson.loads(line)
        assert RFC3339_MS.match(written["ts"])
        assert datetime.fromisoformat(written.pop("ts")).timestamp() == original["ts"]
        assert written == {k: v for k, v in original.items() if k != "ts"}
    assert isinstance(events[0]["ts"], float)  # writing must not change the caller's events
