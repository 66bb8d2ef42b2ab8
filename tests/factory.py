"""Building contract-format events in tests without hand-writing JSON."""

from __future__ import annotations

import itertools
from typing import Any

T0 = 1_793_606_400.0  # 2026-11-02T08:00:00Z
_ids = itertools.count()


def event(
    kind: str, task: str, ts: float, *, workflow: str = "wf", team: str = "team-a", **fields: Any
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "event_id": f"e{next(_ids)}",
        "ts": ts,
        "kind": kind,
        "tenant": fields.pop("tenant", "acme"),
        "team": team,
        "workflow": workflow,
        "task_id": task,
    }
    ev.update(fields)
    return ev


def task_events(
    task: str,
    start: float,
    *,
    steps: int = 10,
    cost_per_step: float = 0.01,
    every_s: float = 5.0,
    outcome: str = "success",
    finish: bool = True,
    **fields: Any,
) -> list[dict[str, Any]]:
    """A root task: start, ``steps`` model calls ``every_s`` apart, and (optionally) its finish."""
    evs = [event("task_started", task, start, **fields)]
    step_fields = {k: v for k, v in fields.items() if k != "budget_usd"}
    for i in range(steps):
        evs.append(
            event(
                "step",
                task,
                start + (i + 1) * every_s,
                category="model",
                name="gpt-4o-mini",
                input_tokens=1000,
                output_tokens=100,
                cost_usd=cost_per_step,
                **step_fields,
            )
        )
    if finish:
        evs.append(
            event("task_finished", task, start + (steps + 1) * every_s, outcome=outcome, **step_fields)
        )
    return evs
