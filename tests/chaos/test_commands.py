"""Chaos: hostile kill commands at a listener guarding real tasks on the real broker.

The listener is the README's (no ``tenant=``), its agents spend until halted. Among valid commands
that halt sacrificial tasks, the flood holds commands for another tenant (every scope), for another
team, task, agent or workflow, forged, tampered, unsigned and expired ones, and the valid ones sent
again after their task finished. Nothing but the valid commands halts anything; every other command
is reported with its reason; each halted task is acknowledged once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable

from burnguard_sdk import CostReporter, Guard, KillSwitchListener, Reason, Rejection
from schemas.killswitch import KillCommand
from tests.burnguard_sdk.conftest import SdkTopics, eventually, topics

__all__ = ["topics"]

PROTECTED = [f"t-guarded-{i}" for i in range(4)]
VICTIMS = [f"t-victim-{i}" for i in range(6)]
PER_KIND = 50
CONTEXT = {"team": "search"}  # what a worker's command names besides the target (tenant: see each kind)
MINE = {"tenant": "default", **CONTEXT, "workflow": "answer"}  # a task command for this listener's work
FOREIGN_TENANTS = ["acme", "Default", "beta"]


def hostile_kinds(topics: SdkTopics, rng: random.Random) -> dict[str, tuple[str, Callable[[], KillCommand]]]:
    """Per kind, the reason it must be reported with and a maker of one command of it."""

    def any_scope(tenant: str) -> KillCommand:
        task = rng.choice(PROTECTED)
        scope, ids = rng.choice([("task", {"workflow": "answer", "root_task_id": task}),
                                 ("agent", {"agent": "answerer"}), ("workflow", {"workflow": "answer"})])  # fmt: skip
        return topics.command({"tenant": tenant, **CONTEXT, **ids}, scope=scope)

    def ours() -> KillCommand:
        return topics.command({**MINE, "root_task_id": rng.choice(PROTECTED)})

    def tampered() -> KillCommand:
        return topics.signed(ours()).model_copy(update={"reason": "edited after signing"})

    def expired() -> KillCommand:
        now = time.time()
        return topics.signed(ours().model_copy(update={"issued_at": now - 900, "expires_at": now - 300}))

    return {
        "cross-tenant": (Reason.OTHER_TENANT, lambda: topics.signed(any_scope(rng.choice(FOREIGN_TENANTS)))),
        "forged": (Reason.BAD_SIGNATURE, lambda: ours().signed(b"a guessed key")),
        "tampered": (Reason.BAD_SIGNATURE, tampered),
        "unsigned": (Reason.UNSIGNED, ours),
        "expired": (Reason.EXPIRED, expired),
        "other team": (Reason.OTHER_SCOPE, lambda: topics.signed(topics.command(
            {"tenant": "default", "team": "billing", "workflow": "answer", "root_task_id": rng.choice(PROTECTED)}))),
        "other task": (Reason.OTHER_SCOPE, lambda: topics.signed(topics.command(
            {"tenant": "default", **CONTEXT, "workflow": "answer", "root_task_id": f"t-{rng.randrange(10**6)}"}))),
        "other agent": (Reason.OTHER_SCOPE, lambda: topics.signed(topics.command(
            {"tenant": "default", **CONTEXT, "agent": "planner"}, scope="agent"))),
        "other workflow": (Reason.OTHER_SCOPE, lambda: topics.signed(topics.command(
            {"tenant": "default", **CONTEXT, "workflow": "billing"}, scope="workflow"))),
    }  # fmt: skip


async def test_hostile_commands_halt_nothing_and_are_all_reported(topics: SdkTopics) -> None:
    rng = random.Random(95)
    rejected: list[Rejection] = []
    guards: dict[str, Guard] = {}
    stop = asyncio.Event()

    async with CostReporter(topics.bootstrap, team="search", workflow="answer", agent="answerer",
                            topic=topics.events) as reporter, \
            KillSwitchListener(topics.bootstrap, agent="answerer", workflow="answer", secrets=[topics.key],
                               topic=topics.killswitch, acks_topic=topics.acks, on_rejected=rejected.append,
                               log_interval_s=60) as listener:  # fmt: skip
        assert await listener.wait_ready(30)

        async def agent(task_id: str) -> None:  # spends until halted (or, for the protected ones, the end)
            async with reporter.task(task_id) as run, listener.guard(run) as guard:
                guards[task_id] = guard
                while not stop.is_set():
                    run.tool_call("web_search", cost_usd=0.001)
                    await asyncio.sleep(0.02)

        jobs = {t: asyncio.create_task(agent(t)) for t in PROTECTED + VICTIMS}
        await eventually(lambda: len(guards) == len(jobs), "every agent to start")

        kinds = hostile_kinds(topics, rng)
        flood = [(kind, make()) for kind, (_, make) in kinds.items() for _ in range(PER_KIND)]
        valid = {t: topics.signed(topics.command({**MINE, "root_task_id": t})) for t in VICTIMS}
        first = flood + [("valid", c) for c in valid.values()]
        rng.shuffle(first)
        await topics.publish(*(c for _, c in first))
        await asyncio.wait_for(asyncio.gather(*(jobs[t] for t in VICTIMS)), 30)  # the valid ones halted them
        replayed = [("replayed", valid[rng.choice(VICTIMS)]) for _ in range(PER_KIND)]
        await topics.publish(*(c for _, c in replayed))
        total = len(first) + len(replayed)
        await eventually(lambda: listener.stats["received"] == total, "every command to be read", 60)

        halted_protected = [t for t in PROTECTED if guards[t].halted]
        running = [t for t in PROTECTED if not jobs[t].done()]
        stop.set()
        await asyncio.gather(*(jobs[t] for t in PROTECTED))
        await reporter.flush(30)

    acks = Counter(a["command_id"] for a in await topics.acks_for())
    expected = {kind: reason for kind, (reason, _) in kinds.items()} | {"replayed": Reason.FINISHED}
    kind_of = {command.command_id: kind for kind, command in flood + replayed}  # a replayed id: "replayed"
    halts = Counter("valid" if (cid := g.halted_by.command_id) in {c.command_id for c in valid.values()}
                    else kind_of[cid] for g in guards.values() if g.halted_by is not None)  # fmt: skip
    reasons_seen: dict[str, Counter[str]] = {kind: Counter() for kind in expected}
    for r in rejected:
        assert r.command_id is not None
        reasons_seen[kind_of[r.command_id]][r.reason] += 1
    print(f"\ncommands chaos: {total} commands at {len(PROTECTED)} guarded tasks (+{len(VICTIMS)} sacrificial)")
    for kind in expected:
        tried = sum(1 for k, _ in flood + replayed if k == kind)
        print(f"  {kind:>14}: tried {tried:3d}, reported {dict(reasons_seen[kind])}, halted {halts[kind]}")
    scopes = Counter(c.target.scope.value for k, c in flood if k == "cross-tenant")
    print(f"  {'':>14}  (cross-tenant by scope: {dict(scopes)})")
    print(f"  {'valid':>14}: tried {len(valid):3d}, halted {sum(1 for t in VICTIMS if guards[t].halted)}, "
          f"acked {sum(acks[c.command_id] for c in valid.values())}; protected halted {len(halted_protected)}, "
          f"still running at the end {len(running)}/{len(PROTECTED)}")  # fmt: skip

    assert halted_protected == [] and running == PROTECTED and halts == Counter({"valid": len(VICTIMS)})
    assert all((h := guards[t].halted_by) is not None and h.command_id == valid[t].command_id for t in VICTIMS)
    assert acks == Counter({c.command_id: 1 for c in valid.values()})
    for kind, reason in expected.items():
        assert reasons_seen[kind] == Counter({reason: PER_KIND}), kind
    assert len(rejected) == len(flood) + len(replayed) and listener.stats["halted"] == len(VICTIMS)
    assert listener.stats["errors"] == 0 and set(scopes) == {"task", "agent", "workflow"}
