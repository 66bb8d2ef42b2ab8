"""A guard: one piece of work (a task, a sub-agent) that a kill command can halt.

Made by :meth:`KillSwitchListener.guard <burnguard_sdk.KillSwitchListener.guard>`; used as a context
manager around the work. In async code (``async with``) a halt cancels the asyncio task that entered
the guard; the guard absorbs that cancellation, so the code after the ``async with`` block runs and
the agent can exit cleanly (as :func:`asyncio.timeout` does). In synchronous code (``with``) a halt
sets :attr:`Guard.halted` and calls ``on_halt(command)`` from the listener's thread; the agent checks
:meth:`Guard.check` between steps (it raises :class:`Halted`, which the guard absorbs). Either way the
listener acknowledges the command once the guarded block has exited: the work has really stopped.
Work already ordered to halt when it enters its guard (a command issued before the task started)
never runs: entering the guard raises :class:`Halted`, after the acknowledgement is on its way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from burnguard_sdk.commands import KillCommand
from burnguard_sdk.tasks import TaskRun

if TYPE_CHECKING:
    from burnguard_sdk.listener import KillSwitchListener

__all__ = ["Guard", "Halted"]


class Halted(Exception):
    """Raised by :meth:`Guard.check` once the guarded work has been ordered to halt."""

    def __init__(self, command: KillCommand) -> None:
        super().__init__(f"halted by kill command {command.command_id} ({command.reason[:200]})")
        self.command = command


class Guard:
    """The work a listener may halt, named by ``ids`` (task_id, root_task_id, agent, workflow ...)."""

    def __init__(
        self,
        listener: KillSwitchListener,
        ids: Mapping[str, str | None],
        run: TaskRun | None = None,
        on_halt: Callable[[KillCommand], None] | None = None,
        task: asyncio.Task[object] | None = None,
    ) -> None:
        self._listener = listener
        self._ids = dict(ids)
        self.run = run
        self.on_halt = on_halt
        self._task = task
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halted = threading.Event()
        self._command: KillCommand | None = None
        self._cancel_requested = False
        self._active = False
        self._lock = threading.Lock()
        self.halted_at: float | None = None

    def __repr__(self) -> str:
        return f"Guard({self._ids}, halted={self.halted})"

    @property
    def ids(self) -> Mapping[str, str | None]:
        return self._ids

    @property
    def halted_by(self) -> KillCommand | None:
        """The command that halted this work, or ``None``."""
        return self._command

    @property
    def halted(self) -> bool:
        return self._halted.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block (a synchronous agent's thread) until halted or ``timeout_s``; whether halted."""
        return self._halted.wait(timeout_s)

    def check(self) -> None:
        """Raise :class:`Halted` if a kill command has halted this work (call it between steps)."""
        if self._command is not None:
            raise Halted(self._command)

    def halt(self, command: KillCommand, *, cancel: bool = True) -> bool:
        """Halt once (thread-safe): mark the task run killed, cancel the asyncio task, call ``on_halt``.

        Returns ``False`` when already halted (a burst of commands halts once)."""
        with self._lock:
            if self._command is not None:
                return False
            self._command = command
        if self.run is not None:
            self.run.killed_by = command.command_id
        self._halted.set()
        if cancel and self._task is not None and self._loop is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                self._cancel(command)
            else:
                self._loop.call_soon_threadsafe(self._cancel, command)
        if self.on_halt is not None:
            self._listener.call_hook(self.on_halt, command)
        return True

    def _cancel(self, command: KillCommand) -> None:
        """Cancel the guarded task, on its own loop, only while it is still inside the guard."""
        if self._active and self._task is not None and not self._task.done():
            self._cancel_requested = True
            self._task.cancel(f"burnguard kill command {command.command_id}")

    # -- context managers -------------------------------------------------------------------

    def _enter(self) -> None:
        self._active = True
        earlier = self._listener.register(self)
        if earlier is not None and self.halt(earlier, cancel=False):
            # ordered to halt before it started: the block never runs
            self._active = False
            self._listener.unregister(self)
            raise Halted(earlier)

    def __enter__(self) -> Guard:
        self._enter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._active = False
        self._listener.unregister(self)
        return exc_type is not None and issubclass(exc_type, Halted) and self._command is not None

    async def __aenter__(self) -> Guard:
        self._loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = asyncio.current_task()
        self._enter()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._active = False
        self._listener.unregister(self)
        if self._command is None:
            return False
        if exc_type is not None and issubclass(exc_type, Halted):
            return True
        task = self._task
        if task is None or not self._cancel_requested or asyncio.current_task() is not task:
            return False
        # our own cancellation: absorb it unless someone else cancelled the task too
        assert task is not None
        remaining = task.uncancel()
        return remaining == 0 and exc_type is not None and issubclass(exc_type, asyncio.CancelledError)
