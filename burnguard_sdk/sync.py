"""The SDK for synchronous agents: the async reporter and listener run on a background thread's loop.

Usage (with a broker; see the README)::

    with SyncCostReporter(team="search", workflow="answer") as reporter:
        with SyncKillSwitchListener(agent="answerer") as listener:
            with reporter.task() as run, listener.guard(run) as guard:
                while not guard.halted:
                    run.model_call("gpt-4o-mini", provider="openai", input_tokens=900, output_tokens=120)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from burnguard_sdk.guards import Guard
from burnguard_sdk.listener import KillSwitchListener
from burnguard_sdk.reporter import CostReporter, ReporterStats
from burnguard_sdk.tasks import Attributes, TaskRun

__all__ = ["LoopThread", "SyncCostReporter", "SyncKillSwitchListener"]

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running forever on a daemon thread; :meth:`run` a coroutine on it and wait."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        return self.submit(coro).result(timeout_s)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncCostReporter:
    """:class:`~burnguard_sdk.CostReporter` for synchronous code; takes the same arguments.

    Reporting calls (``run.model_call(...)``, ...) only append to the buffer, from any thread.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.reporter = CostReporter(*args, **kwargs)
        self._thread = LoopThread("burnguard-cost-reporter")
        self._thread.run(self.reporter.start())

    def __repr__(self) -> str:
        return f"Sync{self.reporter!r}"

    def task(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        workflow: str | None = None,
        budget_usd: float | None = None,
        attributes: Attributes | None = None,
    ) -> TaskRun:
        return self.reporter.task(task_id, agent=agent, workflow=workflow, budget_usd=budget_usd, attributes=attributes)

    @property
    def stats(self) -> ReporterStats:
        return self.reporter.stats

    def flush(self, timeout_s: float | None = None) -> bool:
        """Block until every event so far is acknowledged by Kafka; ``False`` on timeout."""
        return self._thread.run(self.reporter.flush(timeout_s))

    def close(self, timeout_s: float = 10.0) -> None:
        """Drain (up to ``timeout_s``) and stop the background thread."""
        if not self._thread.loop.is_closed():
            self._thread.run(self.reporter.close(timeout_s))
            self._thread.close()

    def __enter__(self) -> SyncCostReporter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SyncKillSwitchListener:
    """:class:`~burnguard_sdk.KillSwitchListener` for synchronous code; takes the same arguments.

    Its guards are used with ``with``: a halt sets ``guard.halted``, calls ``on_halt`` (on the
    listener's thread) and makes ``guard.check()`` raise :class:`~burnguard_sdk.Halted`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.listener = KillSwitchListener(*args, **kwargs)
        self._thread = LoopThread("burnguard-killswitch-listener")
        self._thread.run(self.listener.start())

    def __repr__(self) -> str:
        return f"Sync{self.listener!r}"

    def guard(self, run: TaskRun | None = None, **kwargs: Any) -> Guard:
        return self.listener.guard(run, **kwargs)

    @property
    def stats(self) -> Any:
        return self.listener.stats

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Block until the look-back window has been read; whether it was within ``timeout_s``."""
        return self._thread.run(self.listener.wait_ready(timeout_s))

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver pending acks (up to ``timeout_s``) and stop the background thread."""
        if not self._thread.loop.is_closed():
            self._thread.run(self.listener.stop(timeout_s))
            self._thread.close()

    def __enter__(self) -> SyncKillSwitchListener:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
