"""The ``burnguard.task_summary/1`` record the worker publishes when a root task finishes."""

from __future__ import annotations

from typing import Any

from detectors.ledger import BUDGET_LINES, TaskState
from schemas.timefmt import format_ts

__all__ = ["TASK_SUMMARY_SCHEMA", "task_summary"]

TASK_SUMMARY_SCHEMA = "burnguard.task_summary/1"


def task_summary(task: TaskState) -> dict[str, Any]:
    """The ``burnguard.task_summary/1`` record of a finished root task: money in USD (sub-agents
    included, split into the budget lines), times RFC 3339 UTC, ``duration_s`` in seconds."""
    return {
        "schema": TASK_SUMMARY_SCHEMA,
        "root_task_id": task.root_task_id,
        "scope": {"tenant": task.tenant, "team": task.team, "workflow": task.workflow},
        "agent": task.agent,
        "outcome": task.outcome,
        "cost_usd": round(task.cost_usd, 9),
        "lines": {name: round(task.lines[i], 9) for i, name in enumerate(BUDGET_LINES)},
        "budget_usd": task.budget_usd,
        "value_usd": task.value_usd,
        "started_at": format_ts(task.started_ts),
        "finished_at": format_ts(task.last_ts),
        "duration_s": round(task.duration_s, 3),
        "steps": task.steps,
        "model_calls": task.model_calls,
        "unpriced_steps": task.unpriced_steps,
        "errors": task.errors,
        "retries": task.retries,
        "subagents": task.subagents,
        "killed": task.killed,
    }
