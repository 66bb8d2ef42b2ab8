"""The listener's rules without Kafka: which command halts which guard, and why others halt nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from burnguard_sdk import KillCommand, KillKeys, KillMode, KillTarget, Reason
from burnguard_sdk.book import CommandBook

NOW = 1_793_613_600.0
KEYS = KillKeys(["current", "previous"])


@dataclass(eq=False)
class FakeGuard:
    ids: Mapping[str, str | None]
    halted_by: KillCommand | None = None
    halts: list[str] = field(default_factory=list)

    def halt(self, command: KillCommand) -> bool:
        if self.halted_by is not None:
            return False
        self.halted_by = command
        self.halts.append(command.command_id)
        return True


def command(target: dict[str, str], *, key: str | None = "current", expires: float = NOW + 60, cid: str = "c1"
            ) -> KillCommand:  # fmt: skip
    c = KillCommand(command_id=cid, anomaly_id="a", target=KillTarget.model_validate(target), reason="r",
                    issued_at=NOW - 1, expires_at=expires, mode=KillMode.AUTONOMOUS)  # fmt: skip
    return c.signed(KillKeys([key])) if key else c


def task_guard(task_id: str, root: str | None = None, **ids: str) -> FakeGuard:
    return FakeGuard({"task_id": task_id, "root_task_id": root or task_id, "agent": "a1", "workflow": "w1"} | ids)


@pytest.mark.parametrize(
    ("target", "key", "expires", "reason"),
    [
        ({"scope": "task", "root_task_id": "r1"}, None, NOW + 60, Reason.UNSIGNED),
        ({"scope": "task", "root_task_id": "r1"}, "stolen", NOW + 60, Reason.BAD_SIGNATURE),
        ({"scope": "task", "root_task_id": "r1"}, "current", NOW, Reason.EXPIRED),
        ({"scope": "task", "root_task_id": "r2"}, "current", NOW + 60, Reason.OTHER_SCOPE),
        ({"scope": "task", "root_task_id": "r1", "agent": "a2"}, "current", NOW + 60, Reason.OTHER_SCOPE),
        ({"scope": "agent", "agent": "a2"}, "current", NOW + 60, Reason.OTHER_SCOPE),
        ({"scope": "workflow", "workflow": "w2"}, "current", NOW + 60, Reason.OTHER_SCOPE),
        ({"scope": "task", "workflow": "w1"}, "current", NOW + 60, Reason.OTHER_SCOPE),  # names no task
    ],
)
def test_commands_that_halt_nothing(target: dict[str, str], key: str | None, expires: float, reason: str) -> None:
    book = CommandBook(KEYS, {"agent": "a1", "workflow": "w1", "team": None, "tenant": None})
    guard = task_guard("r1")
    assert book.register(guard, NOW) is None
    decision = book.decide(command(target, key=key, expires=expires), NOW)
    assert decision.halt == [] and decision.reason == reason and guard.halted_by is None


def test_what_a_command_halts() -> None:
    book = CommandBook(KEYS, {"agent": "a1", "workflow": "w1"})
    root, sub, other = task_guard("r1"), task_guard("s1", root="r1"), task_guard("r2")
    for g in (root, sub, other):
        book.register(g, NOW)
    # a task command names the root: the whole tree in this process, nothing else; any key verifies
    assert book.decide(command({"scope": "task", "root_task_id": "r1"}, key="previous"), NOW).halt == [root, sub]
    # an id it names that the work does not have (team) cannot be confirmed as ours: nothing halts
    unknown = book.decide(command({"scope": "task", "task_id": "r2", "team": "t9"}, cid="c2"), NOW)
    assert (unknown.halt, unknown.reason, unknown.detail) == ([], Reason.UNKNOWN_ID, "team")
    assert book.decide(command({"scope": "task", "task_id": "r2", "workflow": "w1"}, cid="c3"), NOW).halt == [other]


def test_earlier_commands_apply_on_register_and_finished_work_is_recognised() -> None:
    book = CommandBook(KEYS, {"agent": "a1", "workflow": None})
    early = command({"scope": "task", "root_task_id": "r1"})
    assert book.decide(early, NOW).reason == Reason.OTHER_SCOPE  # nothing here yet: kept, reported
    guard = task_guard("r1")
    assert book.register(guard, NOW) == early
    later = task_guard("r1b")
    assert book.register(later, NOW + 120) is None  # an expired command is forgotten
    book.unregister(guard)
    assert book.decide(command({"scope": "task", "root_task_id": "r1"}, cid="c9"), NOW).reason == Reason.FINISHED
    wf = command({"scope": "workflow", "workflow": "w1"}, cid="wf")
    g1 = task_guard("r5")
    book.register(g1, NOW)
    assert book.decide(wf, NOW).halt == [later, g1]  # every task of the workflow here
    later.halt(wf)
    g1.halt(wf)
    assert book.decide(wf, NOW).reason == Reason.ALREADY_HALTED  # redelivered: one halt per guard


def test_kept_commands_are_bounded() -> None:
    book = CommandBook(KEYS, {}, max_kept=3)
    for i in range(10):
        book.decide(command({"scope": "task", "root_task_id": f"r{i}"}, cid=f"c{i}"), NOW)
    assert book.register(task_guard("r0"), NOW) is None  # the oldest were dropped
    assert book.register(task_guard("r9"), NOW) is not None


@pytest.mark.parametrize("scope", ["task", "agent", "workflow"])
def test_work_without_a_tenant_is_the_default_tenant_not_any(scope: str) -> None:
    """Issue 9.5: a listener without ``tenant=`` halted and acked validly signed commands naming
    another tenant. Work without a tenant is ``default``'s; a command naming none is ``default``'s."""
    ids = {"task": {"root_task_id": "r1"}, "agent": {"agent": "a1"}, "workflow": {"workflow": "w1"}}[scope]
    book = CommandBook(KEYS, {"agent": "a1", "workflow": "w1", "team": None, "tenant": None})
    guard = task_guard("r1")  # no tenant, as a guard of a listener and a reporter without one
    book.register(guard, NOW)
    for tenant in ("acme", "Default", ""):
        foreign = book.decide(command({"scope": scope, **ids, "tenant": tenant}, cid=f"x-{tenant}"), NOW)
        assert (foreign.halt, foreign.reason) == ([], Reason.OTHER_TENANT)
    later = task_guard("s1", root="r1")  # work starting after them: the kept commands do not apply either
    assert guard.halted_by is None and book.register(later, NOW) is None
    mine = book.decide(command({"scope": scope, **ids, "tenant": "default"}, cid="mine"), NOW)
    assert mine.halt == [guard, later]
    other = task_guard("r2", tenant="acme")  # work that carries its own tenant (its TaskRun's)
    book.register(other, NOW)
    assert book.decide(command({"scope": "task", "root_task_id": "r2", "tenant": "acme"}, cid="a"), NOW).halt == [other]
    assert book.decide(command({"scope": "task", "root_task_id": "r2"}, cid="d"), NOW).reason == Reason.OTHER_TENANT


def test_a_listener_that_names_its_tenant_rejects_others_before_the_signature() -> None:
    book = CommandBook(KEYS, {"tenant": "acme"})
    guard = task_guard("r1", tenant="acme")
    book.register(guard, NOW)
    for target in ({"scope": "task", "root_task_id": "r1", "tenant": "beta"}, {"scope": "task", "root_task_id": "r1"}):
        decision = book.decide(command(target, key=None), NOW)
        assert decision.reason == Reason.OTHER_TENANT and guard.halted_by is None


def test_a_command_naming_a_team_halts_only_work_that_knows_that_team() -> None:
    book = CommandBook(KEYS, {"agent": "a1", "workflow": "w1", "team": None, "tenant": None})
    unknown, search, billing = task_guard("r1"), task_guard("r2", team="search"), task_guard("r3", team="billing")
    for g in (unknown, search, billing):
        book.register(g, NOW)
    agent_cmd = book.decide(command({"scope": "agent", "agent": "a1", "team": "search"}), NOW)
    assert agent_cmd.halt == [search]  # not the guard that knows no team, not billing's
    no_team = book.decide(command({"scope": "task", "root_task_id": "r1", "team": "search"}, cid="c2"), NOW)
    assert (no_team.halt, no_team.reason, no_team.detail) == ([], Reason.UNKNOWN_ID, "team")
    wrong = book.decide(command({"scope": "task", "root_task_id": "r3", "team": "search"}, cid="c3"), NOW)
    assert (wrong.halt, wrong.reason) == ([], Reason.OTHER_SCOPE)
    assert book.decide(command({"scope": "task", "root_task_id": "r1"}, cid="c4"), NOW).halt == [unknown]
