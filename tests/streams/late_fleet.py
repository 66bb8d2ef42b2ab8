"""A fleet whose sub-agents report after their root task finished (beside conftest, which stays
under 400 lines): the late-spend tests' input."""

from __future__ import annotations

from typing import Any

from burnguard.simulator.fleet import FleetSimulator


def with_late_subagents(events: list[dict[str, Any]], every: int = 3) -> tuple[list[dict[str, Any]], int]:
    """``events`` plus, for every ``every``-th root task that finishes, a sub-agent that starts one
    second after the root's ``task_finished`` and reports a tool step of $0.01–0.20 up to 90 s
    later; ordered by event time. Returns the events and how many late steps were added."""
    extra: list[dict[str, Any]] = []
    finished = [
        e for e in events if e["kind"] == "task_finished" and e["task_id"] == e.get("root_task_id", e["task_id"])
    ]
    for n, fin in enumerate(finished[::every]):
        root, ts = fin["task_id"], fin["ts"]
        base: dict[str, Any] = {k: fin[k] for k in ("tenant", "team", "workflow") if k in fin}
        sub: dict[str, Any] = {
            **base,
            "agent": "late-helper",
            "task_id": f"{root}-late",
            "root_task_id": root,
            "parent_task_id": root,
        }
        extra += [
            {**sub, "event_id": f"{root}-late#0", "ts": round(ts + 1.0, 3), "kind": "task_started"},
            {
                **sub,
                "event_id": f"{root}-late#1",
                "ts": round(ts + 2.0 + n % 88, 3),
                "kind": "step",
                "category": "tool",
                "name": "late-report",
                "cost_usd": round(0.01 + (n % 20) * 0.01, 2),
            },
            {
                **sub,
                "event_id": f"{root}-late#2",
                "ts": round(ts + 3.0 + n % 88, 3),
                "kind": "task_finished",
                "outcome": "success",
            },
        ]
    return sorted(events + extra, key=lambda e: e["ts"]), len(extra) // 3


def late_fleet(seed: int = 5, hours: float = 4.0) -> tuple[list[dict[str, Any]], int]:
    """``hours`` of the demo fleet at a quarter of its traffic, without incidents, with late
    sub-agents (:func:`with_late_subagents`)."""
    events = list(FleetSimulator(seed=seed, hours=hours, scale=0.25, incidents=()).events())
    return with_late_subagents(events)
