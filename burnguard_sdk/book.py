"""What a listener decides about each kill command, apart from Kafka: the rules, testable alone.

A :class:`CommandBook` holds the guards (running tasks that can be halted), the ids of guards that
have finished, and every valid unexpired command seen so far (so a command that arrives before its
task starts still applies when the task starts). :meth:`CommandBook.decide` takes one command and
says which guards to halt, or why it halts nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from burnguard_sdk.commands import KillCommand, KillScope, KillTarget
from burnguard_sdk.keys import KillKeys

__all__ = ["CommandBook", "Decision", "Guarded", "Reason", "target_matches"]


class Reason:
    """Why a command halted nothing (the ``reason`` of a rejection)."""

    MALFORMED: Final = "malformed"
    UNSIGNED: Final = "unsigned"
    BAD_SIGNATURE: Final = "bad signature"
    EXPIRED: Final = "expired"
    OTHER_SCOPE: Final = "another scope"
    FINISHED: Final = "task already finished"
    ALREADY_HALTED: Final = "already halted"


#: The ids that name each scope: a command must name one of them, and it must be ours.
_SCOPE_IDS: Final = {
    KillScope.TASK: ("root_task_id", "task_id"),
    KillScope.AGENT: ("agent",),
    KillScope.WORKFLOW: ("workflow",),
}


def target_matches(target: KillTarget, ids: Mapping[str, str | None]) -> bool:
    """Whether ``target`` names the work identified by ``ids``.

    The scope's own id (``root_task_id``/``task_id``, ``agent`` or ``workflow``) must be named and
    equal ours; any other id the target names must equal ours when we know it.

    >>> t = KillTarget(scope="task", root_task_id="r1", workflow="w")
    >>> target_matches(t, {"root_task_id": "r1", "task_id": "s1", "workflow": "w"})
    True
    >>> target_matches(t, {"root_task_id": "r2", "workflow": "w"})
    False
    >>> target_matches(KillTarget(scope="workflow", workflow="w"), {"workflow": "w", "agent": "a"})
    True
    """
    named = target.ids()
    scope_ids = [name for name in _SCOPE_IDS[target.scope] if name in named]
    if not scope_ids or any(ids.get(name) != named[name] for name in scope_ids):
        return False
    return all(ids.get(name) in (None, value) for name, value in named.items())


def contradicts(target: KillTarget, ids: Mapping[str, str | None]) -> bool:
    """Whether ``target`` names an id we know with another value (so it can never be ours)."""
    return any(ids.get(name) not in (None, value) for name, value in target.ids().items())


class Guarded(Protocol):
    """A guard as the book sees it: the ids of the work it can halt, and whether it has been halted."""

    @property
    def ids(self) -> Mapping[str, str | None]: ...

    @property
    def halted_by(self) -> KillCommand | None: ...

    def halt(self, command: KillCommand) -> bool: ...


@dataclass
class Decision:
    """``halt`` = guards to halt now; otherwise ``reason`` says why nothing was halted."""

    command: KillCommand | None
    halt: list[Guarded] = field(default_factory=list)
    reason: str | None = None


class CommandBook:
    """Guards, finished work and valid commands of one listener. Thread-safe."""

    def __init__(self, keys: KillKeys, identity: Mapping[str, str | None], max_kept: int = 1000) -> None:
        self._keys = keys
        self.identity = dict(identity)
        self._lock = threading.RLock()
        self._guards: list[Guarded] = []
        self._finished: deque[dict[str, str | None]] = deque(maxlen=max_kept)
        self._kept: OrderedDict[str, KillCommand] = OrderedDict()
        self._max_kept = max_kept

    def decide(self, command: KillCommand, now: float) -> Decision:
        """Check ``command`` (scope, signature, expiry, finished work, earlier halts) at ``now``."""
        if contradicts(command.target, self.identity):
            return Decision(command, reason=Reason.OTHER_SCOPE)
        invalid = command.verify(self._keys, now)
        if invalid is not None:
            return Decision(command, reason=invalid)
        with self._lock:
            self._keep(command, now)
            matching = [g for g in self._guards if target_matches(command.target, g.ids)]
            if not matching:
                finished = any(target_matches(command.target, ids) for ids in self._finished)
                return Decision(command, reason=Reason.FINISHED if finished else Reason.OTHER_SCOPE)
            to_halt = [g for g in matching if g.halted_by is None]
        if not to_halt:
            return Decision(command, reason=Reason.ALREADY_HALTED)
        return Decision(command, halt=to_halt)

    def register(self, guard: Guarded, now: float) -> KillCommand | None:
        """Add ``guard``; returns a valid kept command that already targets it, if any."""
        with self._lock:
            self._guards.append(guard)
            self._expire(now)
            for command in self._kept.values():
                if target_matches(command.target, guard.ids):
                    return command
        return None

    def unregister(self, guard: Guarded) -> None:
        """``guard``'s work is over: later commands for it are rejected as ``task already finished``."""
        with self._lock:
            if guard in self._guards:
                self._guards.remove(guard)
                self._finished.append(dict(guard.ids))

    def _keep(self, command: KillCommand, now: float) -> None:
        self._kept[command.command_id] = command
        self._kept.move_to_end(command.command_id)
        self._expire(now)
        while len(self._kept) > self._max_kept:
            self._kept.popitem(last=False)

    def _expire(self, now: float) -> None:
        for command_id in [c.command_id for c in self._kept.values() if now >= c.expires_at]:
            del self._kept[command_id]
