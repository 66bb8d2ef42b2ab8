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

__all__ = ["DEFAULT_TENANT", "CommandBook", "Decision", "Guarded", "Reason", "mismatch", "target_matches"]


class Reason:
    """Why a command halted nothing (the ``reason`` of a rejection)."""

    MALFORMED: Final = "malformed"
    UNSIGNED: Final = "unsigned"
    BAD_SIGNATURE: Final = "bad signature"
    EXPIRED: Final = "expired"
    OTHER_TENANT: Final = "another tenant"
    OTHER_SCOPE: Final = "another scope"
    UNKNOWN_ID: Final = "names an id this work does not have"
    FINISHED: Final = "task already finished"
    ALREADY_HALTED: Final = "already halted"


#: The tenant of work (and of a command) that names none: the contract's default, never a wildcard.
DEFAULT_TENANT: Final = "default"

#: The ids that name each scope: a command must name one of them, and it must be ours.
_SCOPE_IDS: Final = {
    KillScope.TASK: ("root_task_id", "task_id"),
    KillScope.AGENT: ("agent",),
    KillScope.WORKFLOW: ("workflow",),
}


def mismatch(target: KillTarget, ids: Mapping[str, str | None]) -> str | None:
    """``None`` when ``target`` names the work identified by ``ids``, else the :class:`Reason` why not.

    Every id the target names must be ours: its tenant (``default`` when it names none) must equal
    ours (``default`` when we have none), its scope's own id (``root_task_id``/``task_id``, ``agent``
    or ``workflow``) must be named and equal ours, and every other id it names (``team``,
    ``workflow`` ...) must be one we have, with the same value. An id we do not have cannot be
    confirmed as ours: the command halts nothing (:attr:`Reason.UNKNOWN_ID`).

    >>> t = KillTarget(scope="task", tenant="acme", team="search", root_task_id="r1")
    >>> mine = {"tenant": "acme", "team": "search", "root_task_id": "r1", "task_id": "s1"}
    >>> mismatch(t, mine) is None
    True
    >>> mismatch(t, mine | {"tenant": None})
    'another tenant'
    >>> mismatch(t, mine | {"team": None})
    'names an id this work does not have'
    >>> mismatch(KillTarget(scope="workflow", workflow="w"), {"workflow": "w", "agent": "a"}) is None
    True
    """
    named = target.ids()
    if named.get("tenant", DEFAULT_TENANT) != (ids.get("tenant") or DEFAULT_TENANT):
        return Reason.OTHER_TENANT
    scope_ids = [name for name in _SCOPE_IDS[target.scope] if name in named]
    if not scope_ids or any(ids.get(name) != named[name] for name in scope_ids):
        return Reason.OTHER_SCOPE
    unknown = False
    for name, value in named.items():
        ours = ids.get(name)
        if name == "tenant" or ours == value:
            continue
        if ours is not None:
            return Reason.OTHER_SCOPE
        unknown = True
    return Reason.UNKNOWN_ID if unknown else None


def target_matches(target: KillTarget, ids: Mapping[str, str | None]) -> bool:
    """Whether ``target`` names the work identified by ``ids`` (see :func:`mismatch`).

    >>> t = KillTarget(scope="task", root_task_id="r1", workflow="w")
    >>> target_matches(t, {"root_task_id": "r1", "task_id": "s1", "workflow": "w"})
    True
    >>> target_matches(t, {"root_task_id": "r2", "workflow": "w"})
    False
    """
    return mismatch(target, ids) is None


def missing_ids(target: KillTarget, ids: Mapping[str, str | None]) -> list[str]:
    """The ids ``target`` names that ``ids`` does not have (what to give the listener or the guard)."""
    return [name for name in target.ids() if name != "tenant" and ids.get(name) is None]


def contradiction(target: KillTarget, identity: Mapping[str, str | None]) -> str | None:
    """Why ``target`` can never be this listener's, from what the listener was told it is, or ``None``.

    Only what it was told counts: a listener without ``tenant=`` or ``team=`` may guard work that
    carries its own (a :class:`~burnguard_sdk.TaskRun`'s), which :func:`mismatch` checks per guard.
    """
    named = target.ids()
    if identity.get("tenant") is not None and named.get("tenant", DEFAULT_TENANT) != identity["tenant"]:
        return Reason.OTHER_TENANT
    if any(identity.get(name) not in (None, value) for name, value in named.items() if name != "tenant"):
        return Reason.OTHER_SCOPE
    return None


class Guarded(Protocol):
    """A guard as the book sees it: the ids of the work it can halt, and whether it has been halted."""

    @property
    def ids(self) -> Mapping[str, str | None]: ...

    @property
    def halted_by(self) -> KillCommand | None: ...

    def halt(self, command: KillCommand) -> bool: ...


@dataclass
class Decision:
    """``halt`` = guards to halt now; otherwise ``reason`` says why nothing was halted (``detail``:
    the ids a command named that the work lacks, for :attr:`Reason.UNKNOWN_ID`)."""

    command: KillCommand | None
    halt: list[Guarded] = field(default_factory=list)
    reason: str | None = None
    detail: str = ""


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
        """Check ``command`` (tenant and scope, signature, expiry, finished work, earlier halts) at ``now``."""
        against_identity = contradiction(command.target, self.identity)
        if against_identity is not None:
            return Decision(command, reason=against_identity)
        invalid = command.verify(self._keys, now)
        if invalid is not None:
            return Decision(command, reason=invalid)
        with self._lock:
            self._keep(command, now)
            why = {id(g): mismatch(command.target, g.ids) for g in self._guards}
            matching = [g for g in self._guards if why[id(g)] is None]
            if not matching:
                if any(target_matches(command.target, ids) for ids in self._finished):
                    return Decision(command, reason=Reason.FINISHED)
                return self._why_nothing(command, list(why.values()))
            to_halt = [g for g in matching if g.halted_by is None]
        if not to_halt:
            return Decision(command, reason=Reason.ALREADY_HALTED)
        return Decision(command, halt=to_halt)

    def _why_nothing(self, command: KillCommand, reasons: list[str | None]) -> Decision:
        """The reason a valid command matched no guard: the closest miss among them."""
        target = command.target
        if Reason.UNKNOWN_ID in reasons:
            near = [g for g in self._guards if mismatch(target, g.ids) == Reason.UNKNOWN_ID]
            lacking = sorted({name for g in near for name in missing_ids(target, g.ids)})
            return Decision(command, reason=Reason.UNKNOWN_ID, detail=", ".join(lacking))
        tenant = target.tenant or DEFAULT_TENANT
        if (reasons and set(reasons) == {Reason.OTHER_TENANT}) or any(
            mismatch(target, {**g.ids, "tenant": tenant}) in (None, Reason.UNKNOWN_ID) for g in self._guards
        ):  # none of our work is that tenant's, or some would be the target in that tenant
            return Decision(command, reason=Reason.OTHER_TENANT)
        ours = self.identity.get("tenant") or DEFAULT_TENANT
        if not reasons and tenant != ours:  # no work here yet: the listener's tenant
            return Decision(command, reason=Reason.OTHER_TENANT)
        return Decision(command, reason=Reason.OTHER_SCOPE)

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
