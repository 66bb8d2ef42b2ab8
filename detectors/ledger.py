"""Per-root-task cost roll-up: every cost attributed to the task that caused it.

A sub-agent's events carry the root's ``root_task_id``, so the root's :class:`TaskState` holds the
money of the whole tree, split into the seven budget lines.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, fields
from sys import intern
from typing import Any

from schemas.events import Category, CostEvent, EventKind, StepStatus

__all__ = ["BUDGET_LINES", "RecentIds", "TaskState", "budget_line"]

#: The seven budget lines of a task, in a fixed order (``TaskState.lines`` is indexed by it).
BUDGET_LINES = ("model", "retrieval", "tool", "compute", "observability", "human_review", "failures_retries")
_LINE_OF = {
    Category.MODEL: 0,
    Category.EMBEDDING: 0,
    Category.GUARDRAIL: 0,  # guardrail checks are model calls in practice
    Category.RETRIEVAL: 1,
    Category.TOOL: 2,
    Category.COMPUTE: 3,
    Category.OBSERVABILITY: 4,
    Category.HUMAN_REVIEW: 5,
}
FAILURES_RETRIES = 6
_REVIEW_LINE = BUDGET_LINES.index("human_review")
# enum members looked up once: attribute access on an enum class costs ~0.2 µs per event on the hot path
_STEP, _STARTED, _MODEL, _ERROR = EventKind.STEP, EventKind.TASK_STARTED, Category.MODEL, StepStatus.ERROR


def budget_line(event: CostEvent) -> int:
    """Index into :data:`BUDGET_LINES` of a step's money: failed and retried attempts are waste."""
    if event.status is _ERROR or event.attempt > 1:
        return FAILURES_RETRIES
    return _LINE_OF[event.category] if event.category is not None else FAILURES_RETRIES


@dataclass(slots=True)
class TaskState:
    """The running totals of one root task and all its sub-agents. Money in USD, times epoch s."""

    root_task_id: str
    tenant: str
    team: str
    workflow: str
    agent: str | None
    started_ts: float
    last_ts: float
    last_cost_ts: float
    budget_usd: float | None = None
    cost_usd: float = 0.0
    lines: list[float] = field(default_factory=lambda: [0.0] * len(BUDGET_LINES))
    steps: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    first_context_tokens: int = 0
    max_context_tokens: int = 0
    errors: int = 0
    retries: int = 0
    fail_streak: int = 0
    fail_streak_key: str = ""
    max_attempt: int = 1
    unpriced_steps: int = 0
    subagents: int = 0
    max_depth: int = 0
    depths: dict[str, int] | None = None
    finished: bool = False
    outcome: str | None = None
    value_usd: float | None = None
    killed: bool = False
    #: the command id of the kill proposed for this task (approve mode): no second proposal for it
    proposed: str | None = None
    #: highest severity rank (0 info, 1 warning, 2 critical) each detector's episode on this task has
    #: reached, kept by the engine so a detector can skip rebuilding a signal that changes nothing
    alerted: dict[str, int] | None = None
    #: it has sent :mod:`detectors.young_runaway` a report (so it reports its end too)
    guarded: bool = False
    #: the priced cost of the task's latest failed or retried step (0 when unpriced), for retry_rate;
    #: set on failed steps only, so a task that never fails holds no float of its own
    failed_cost: float = 0.0

    def alerted_at_least(self, detector: str, rank: int) -> bool:
        """True when ``detector`` already has an episode on this task at ``rank`` or above."""
        return self.alerted is not None and self.alerted.get(detector, -1) >= rank

    @classmethod
    def open(cls, event: CostEvent) -> TaskState:
        # a fleet has few tenants, teams, workflows and agents but up to millions of tasks in flight:
        # one shared string each instead of a copy per task (~200 bytes a task)
        return cls(
            root_task_id=event.root,
            tenant=intern(event.tenant),
            team=intern(event.team),
            workflow=intern(event.workflow),
            agent=intern(event.agent) if event.agent is not None else None,
            started_ts=event.ts,
            last_ts=event.ts,
            last_cost_ts=event.ts,
        )

    @property
    def machine_usd(self) -> float:
        """Money spent by machines: every budget line but ``human_review``."""
        return self.cost_usd - self.lines[_REVIEW_LINE]

    @property
    def duration_s(self) -> float:
        return max(0.0, self.last_ts - self.started_ts)

    @property
    def scope(self) -> dict[str, str]:
        """The anomaly scope of a task-level finding."""
        return {
            "tenant": self.tenant,
            "team": self.team,
            "workflow": self.workflow,
            "root_task_id": self.root_task_id,
        }

    def top_lines(self, n: int = 3) -> dict[str, float]:
        """The ``n`` budget lines that hold the most money, largest first, rounded to 1/10 000 USD."""
        ranked = sorted(range(len(BUDGET_LINES)), key=lambda i: -self.lines[i])
        return {BUDGET_LINES[i]: round(self.lines[i], 4) for i in ranked[:n] if self.lines[i] > 0}

    def apply(self, event: CostEvent, cost: float | None) -> None:
        """Fold one event into the totals. ``cost`` is the step's priced cost (``None``: unpriced)."""
        ts = event.ts
        if ts > self.last_ts:
            self.last_ts = ts
        elif ts < self.started_ts:
            self.started_ts = ts
        kind = event.kind
        if kind is _STEP:
            self.steps += 1
            if cost is None:
                self.unpriced_steps += 1
            elif cost > 0:
                self.cost_usd += cost
                self.lines[budget_line(event)] += cost
                if ts > self.last_cost_ts:
                    self.last_cost_ts = ts
            if event.category is _MODEL:
                self.model_calls += 1
                inp = event.input_tokens or 0
                self.input_tokens += inp
                self.output_tokens += event.output_tokens or 0
                if inp:
                    if not self.first_context_tokens:
                        self.first_context_tokens = inp
                    if inp > self.max_context_tokens:
                        self.max_context_tokens = inp
            if event.attempt > 1 or event.status is _ERROR:
                self.failed_cost = cost or 0.0
            if event.attempt > 1:
                self.retries += 1
                if event.attempt > self.max_attempt:
                    self.max_attempt = event.attempt
            if event.status is _ERROR:
                self.errors += 1
                key = f"{event.category.value}:{event.name or ''}"  # type: ignore[union-attr]
                if key == self.fail_streak_key:
                    self.fail_streak += 1
                else:
                    self.fail_streak_key, self.fail_streak = key, 1
            elif self.fail_streak_key and self.fail_streak_key == f"{event.category.value}:{event.name or ''}":  # type: ignore[union-attr]
                self.fail_streak_key, self.fail_streak = "", 0
        elif kind is _STARTED:
            if event.task_id == self.root_task_id:
                if event.budget_usd is not None:
                    self.budget_usd = event.budget_usd
                self.started_ts = min(self.started_ts, ts)
            else:
                self._add_subagent(event)
        elif event.task_id == self.root_task_id:  # the root's task_finished
            self.finished = True
            self.outcome = str(event.outcome)
            self.value_usd = event.value_usd

    def _add_subagent(self, event: CostEvent) -> None:
        depths = self.depths
        if depths is None:
            depths = self.depths = {self.root_task_id: 0}
        if event.task_id in depths:
            return
        parent = event.parent_task_id or self.root_task_id
        depth = depths.get(parent, 0) + 1
        depths[event.task_id] = depth
        self.subagents += 1
        if depth > self.max_depth:
            self.max_depth = depth

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskState:
        shared = {k: intern(data[k]) for k in _SHARED_NAMES if isinstance(data.get(k), str)}
        return cls(**{**data, **shared})


_SHARED_NAMES = ("tenant", "team", "workflow", "agent")


class RecentIds:
    """A bounded memory of recently seen ids: a redelivered event is recognised, memory stays flat.

    >>> seen = RecentIds(capacity=2)
    >>> seen.add("a"), seen.add("a"), seen.add("b"), seen.add("c"), seen.add("a")
    (True, False, True, True, True)
    """

    __slots__ = ("_ids", "capacity")

    def __init__(self, capacity: int = 500_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """Remember ``event_id``; ``False`` when it was already seen (a duplicate)."""
        ids = self._ids
        if event_id in ids:
            return False
        ids[event_id] = None
        if len(ids) > self.capacity:
            ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def snapshot(self) -> list[str]:
        return list(self._ids)

    def restore(self, ids: list[str]) -> None:
        self._ids = OrderedDict.fromkeys(ids[-self.capacity :])
