"""The records the worker publishes on the task-summaries topic about a root task's money.

``burnguard.task_summary/1`` (key: the root task id) when a root task finishes, and
``burnguard.task_late_spend/1`` (key: ``["<root_task_id>","<event_id>"]``) for each step of it
that arrives after that: a sub-agent reporting after its root finished. Late spend is still the
root's spend; it gets a record of its own, under a key of its own, so that a consumer reading the
topic as a table (latest value per key) keeps the summary *and* every late step, and the sum of
``cost_usd`` over the keys is the fleet's spend. A redelivered step repeats its record under the
same key.
"""

from __future__ import annotations

from typing import Any

import orjson

from detectors.ledger import BUDGET_LINES, TaskState, budget_line
from schemas.events import CostEvent
from schemas.timefmt import format_ts

__all__ = ["TASK_LATE_SPEND_SCHEMA", "TASK_SUMMARY_SCHEMA", "late_spend", "late_spend_record", "task_summary"]

TASK_SUMMARY_SCHEMA = "burnguard.task_summary/1"
TASK_LATE_SPEND_SCHEMA = "burnguard.task_late_spend/1"


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


def late_spend(event: CostEvent) -> tuple[bytes, dict[str, Any]]:
    """``(key, record)`` of a step that arrived after its root task finished: ``cost_usd`` in USD
    (0 when unpriced, with ``unpriced`` true), ``line`` the budget line it counts in, ``ts`` its
    event time (RFC 3339 UTC).

    >>> from schemas.events import CostEvent
    >>> ev = CostEvent.model_validate({"event_id": "e9", "ts": 1793613600, "kind": "step", "team": "t",
    ...     "workflow": "w", "task_id": "sub", "root_task_id": "r1", "category": "tool", "cost_usd": 0.25})
    >>> key, record = late_spend(ev)
    >>> key, record["cost_usd"], record["line"]
    (b'["r1","e9"]', 0.25, 'tool')
    """
    record = {
        "schema": TASK_LATE_SPEND_SCHEMA,
        "root_task_id": event.root,
        "task_id": event.task_id,
        "event_id": event.event_id,
        "scope": {"tenant": event.tenant, "team": event.team, "workflow": event.workflow},
        "agent": event.agent,
        "ts": format_ts(event.ts),
        "cost_usd": round(event.cost_usd or 0.0, 9),
        "line": BUDGET_LINES[budget_line(event)],
        "unpriced": event.cost_usd is None,
    }
    return orjson.dumps([event.root, event.event_id]), record


def late_spend_record(event: CostEvent) -> tuple[bytes, bytes]:
    """:func:`late_spend` as it goes on the topic: ``(key, JSON bytes)``."""
    key, record = late_spend(event)
    return key, orjson.dumps(record)
