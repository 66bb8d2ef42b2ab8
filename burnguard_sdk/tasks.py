"""One agent run as the cost events of CONTRACT §1: ``task_started``, its steps, ``task_finished``.

A :class:`TaskRun` is what :meth:`CostReporter.task <burnguard_sdk.CostReporter.task>` returns. Used
as a context manager (``with`` or ``async with``) it reports ``task_started`` on entry and
``task_finished`` on exit with the outcome: ``success``, ``failure`` when an exception escapes,
``cancelled`` on cancellation (``asyncio.CancelledError``, ``KeyboardInterrupt``), ``killed`` when a
:class:`~burnguard_sdk.KillSwitchListener` halted it. Every helper only queues an event: it never
waits on Kafka and never raises because of it.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, Protocol

from burnguard_sdk._timefmt import format_ts

__all__ = ["COST_EVENT_SCHEMA", "Attributes", "EventSink", "TaskRun", "type_error"]

COST_EVENT_SCHEMA = "burnguard.cost_event/1"
Status = Literal["ok", "error"]
Outcome = Literal["success", "failure", "escalated", "cancelled", "killed"]
Attributes = Mapping[str, str | int | float | bool]


class EventSink(Protocol):
    """Where a task's events go (the reporter's bounded buffer)."""

    def emit(self, key: str, event: dict[str, Any]) -> bool: ...

    def now(self) -> float: ...


def new_id() -> str:
    return uuid.uuid4().hex


#: The contract's number fields (an int or a float, never a bool) and integer fields (an int).
_NUMBER_FIELDS = ("cost_usd", "budget_usd", "value_usd")
_INTEGER_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens", "attempt", "duration_ms")


def type_error(event: Mapping[str, Any]) -> str | None:
    """Why burnguard would reject ``event`` for a field's type (one clause naming it), else ``None``.

    The server takes exact types (a bool, ``"0.5"`` or ``3.0`` for an integer is refused), so the
    reporter refuses them here, where the agent's author can see it.

    >>> type_error({"cost_usd": 1, "attempt": 2}) is None
    True
    >>> type_error({"cost_usd": True})
    'cost_usd: a number, not bool'
    >>> type_error({"input_tokens": 12.0})
    'input_tokens: an integer, not float'
    """
    for name in _NUMBER_FIELDS:
        value = event.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"{name}: a number, not {type(value).__name__}"
    for name in _INTEGER_FIELDS:
        value = event.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{name}: an integer, not {type(value).__name__}"
    return None


class TaskRun:
    """One task (an agent run, or a sub-agent's run with its own ``task_id``).

    ``root_task_id`` is the task whose budget everything rolls up to (its own id for a top-level
    task); a sub-agent made with :meth:`subtask` inherits it and has this task as ``parent_task_id``.
    """

    def __init__(
        self,
        sink: EventSink,
        *,
        team: str,
        workflow: str,
        task_id: str | None = None,
        root_task_id: str | None = None,
        parent_task_id: str | None = None,
        agent: str | None = None,
        tenant: str | None = None,
        budget_usd: float | None = None,
        attributes: Attributes | None = None,
    ) -> None:
        self._sink = sink
        self.team = team
        self.workflow = workflow
        self.task_id = task_id or new_id()
        self.root_task_id = root_task_id or self.task_id
        self.parent_task_id = parent_task_id
        self.agent = agent
        self.tenant = tenant
        self.budget_usd = budget_usd
        self.attributes = dict(attributes) if attributes else None
        #: the command id of the kill that halted this task (set by the listener before it halts it)
        self.killed_by: str | None = None
        self.outcome: Outcome | None = None
        self.value_usd: float | None = None
        self._lock = threading.Lock()
        self._started = False
        self._finished = False

    def __repr__(self) -> str:
        return f"TaskRun(task_id={self.task_id!r}, root_task_id={self.root_task_id!r}, workflow={self.workflow!r})"

    @property
    def finished(self) -> bool:
        return self._finished

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Report ``task_started`` (once; entering the context manager does it)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._emit("task_started", budget_usd=self.budget_usd)

    def finish(self, outcome: Outcome | None = None, *, value_usd: float | None = None) -> None:
        """Report ``task_finished`` (once) with ``outcome`` (default: what was set, else ``success``)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        final = "killed" if self.killed_by else (outcome or self.outcome or "success")
        value = value_usd if value_usd is not None else self.value_usd
        self._emit("task_finished", outcome=final, value_usd=value)

    def set_outcome(self, outcome: Outcome, value_usd: float | None = None) -> None:
        """The outcome to report on a normal exit (``escalated``, ``failure`` ...) and its business value."""
        self.outcome = outcome
        if value_usd is not None:
            self.value_usd = value_usd

    def _exit_outcome(self, exc_type: type[BaseException] | None) -> Outcome | None:
        if exc_type is None:
            return None
        if issubclass(exc_type, asyncio.CancelledError | KeyboardInterrupt | GeneratorExit):
            return "cancelled"
        return "failure"

    def __enter__(self) -> TaskRun:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish(self._exit_outcome(exc_type))

    async def __aenter__(self) -> TaskRun:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def subtask(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        budget_usd: float | None = None,
        attributes: Attributes | None = None,
    ) -> TaskRun:
        """A sub-agent's run: its own ``task_id``, this task's root, this task as parent."""
        return TaskRun(
            self._sink,
            team=self.team,
            workflow=self.workflow,
            task_id=task_id,
            root_task_id=self.root_task_id,
            parent_task_id=self.task_id,
            agent=agent or self.agent,
            tenant=self.tenant,
            budget_usd=budget_usd,
            attributes=attributes,
        )

    # -- steps ------------------------------------------------------------------------------

    def model_call(
        self,
        model: str,
        *,
        provider: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        cost_usd: float | None = None,
        duration_ms: int | None = None,
        attempt: int = 1,
        status: Status = "ok",
        attributes: Attributes | None = None,
    ) -> str:
        """A model call. Without ``cost_usd`` the server prices it from ``model``, ``provider`` and tokens."""
        return self.step(
            "model",
            name=model,
            provider=provider,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            cost_usd=cost_usd,
            duration_ms=duration_ms,
            attempt=attempt,
            status=status,
            attributes=attributes,
        )

    def embedding(
        self,
        model: str,
        *,
        provider: str | None = None,
        input_tokens: int | None = None,
        cost_usd: float | None = None,
        duration_ms: int | None = None,
        attempt: int = 1,
        status: Status = "ok",
        attributes: Attributes | None = None,
    ) -> str:
        """An embedding call (priced from tokens like a model call when ``cost_usd`` is absent)."""
        return self.step(
            "embedding",
            name=model,
            provider=provider,
            input_tokens=input_tokens,
            cost_usd=cost_usd,
            duration_ms=duration_ms,
            attempt=attempt,
            status=status,
            attributes=attributes,
        )

    def tool_call(self, tool: str, *, cost_usd: float | None = None, **fields: Any) -> str:
        """A tool call (``cost_usd`` absent counts as $0 on a tool step)."""
        return self.step("tool", name=tool, cost_usd=cost_usd, **fields)

    def retrieval(self, source: str, *, cost_usd: float | None = None, **fields: Any) -> str:
        """A retrieval (vector store, search API ...)."""
        return self.step("retrieval", name=source, cost_usd=cost_usd, **fields)

    def human_review(self, reviewer: str | None = None, *, cost_usd: float | None = None, **fields: Any) -> str:
        """Time a person spent reviewing this task, as money."""
        return self.step("human_review", name=reviewer, cost_usd=cost_usd, **fields)

    def step(
        self,
        category: str,
        *,
        name: str | None = None,
        provider: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        cost_usd: float | None = None,
        duration_ms: int | None = None,
        attempt: int = 1,
        status: Status = "ok",
        attributes: Attributes | None = None,
    ) -> str:
        """Any step: ``category`` is a budget line (``model``, ``tool``, ``compute``, ``guardrail`` ...).

        ``attempt`` > 1 marks a retry of the same logical step. Returns the event id.
        """
        return self._emit(
            "step",
            category=category,
            name=name,
            provider=provider,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            cost_usd=cost_usd,
            duration_ms=duration_ms,
            attempt=attempt if attempt != 1 else None,
            status=status if status != "ok" else None,
            attributes=attributes,
        )

    def _emit(self, kind: str, **fields: Any) -> str:
        event_id = new_id()
        event: dict[str, Any] = {
            "schema": COST_EVENT_SCHEMA,
            "event_id": event_id,
            "ts": format_ts(self._sink.now()),
            "kind": kind,
            "tenant": self.tenant,
            "team": self.team,
            "workflow": self.workflow,
            "agent": self.agent,
            "task_id": self.task_id,
            "root_task_id": self.root_task_id,
            "parent_task_id": self.parent_task_id,
        }
        if kind == "task_started" and self.attributes and "attributes" not in fields:
            fields["attributes"] = self.attributes
        event.update(fields)
        if event.get("attributes") is not None:
            event["attributes"] = dict(event["attributes"])
        self._sink.emit(self.root_task_id, {k: v for k, v in event.items() if v is not None})
        return event_id
