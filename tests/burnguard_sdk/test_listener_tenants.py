"""Tenants and teams at the listener, on the real broker (issue 9.5).

With the README's own example (a listener without ``tenant=``), validly signed task-, agent- and
workflow-scope commands naming another tenant halted its tasks and were acknowledged. Work without a
tenant is the contract's ``default`` tenant; a command for another one halts nothing and is reported.
A command naming a team halts only work that knows it is that team's.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from burnguard_sdk import (
    CostReporter,
    Guard,
    KillSwitchListener,
    Reason,
    Rejection,
    SyncCostReporter,
    SyncKillSwitchListener,
)
from schemas.killswitch import KillCommand
from tests.burnguard_sdk.conftest import SdkTopics, eventually

pytestmark = pytest.mark.kafka


def foreign_commands(topics: SdkTopics, task_id: str, tenant: str = "acme") -> list[KillCommand]:
    """Validly signed commands of every scope naming our task, agent and workflow, in ``tenant``."""
    context = {"tenant": tenant, "team": "search"}
    return [
        topics.signed(topics.command({**context, "workflow": "answer", "root_task_id": task_id})),
        topics.signed(topics.command({**context, "agent": "answerer"}, scope="agent")),
        topics.signed(topics.command({**context, "workflow": "answer"}, scope="workflow")),
    ]


async def test_a_listener_without_a_tenant_obeys_no_other_tenant(
    topics: SdkTopics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="burnguard_sdk.listener")
    rejected: list[Rejection] = []
    # the README's example: no tenant= on either
    async with CostReporter(topics.bootstrap, team="search", workflow="answer", agent="answerer",
                            topic=topics.events) as reporter, \
            KillSwitchListener(topics.bootstrap, agent="answerer", workflow="answer", secrets=[topics.key],
                               topic=topics.killswitch, acks_topic=topics.acks,
                               on_rejected=rejected.append) as listener:  # fmt: skip
        assert await listener.wait_ready(30)
        guards: list[Guard] = []

        async def agent() -> None:  # spends until halted, as the README's agent does
            async with reporter.task("t-mine") as run, listener.guard(run) as guard:
                guards.append(guard)
                while True:
                    run.tool_call("web_search", cost_usd=0.001)
                    await asyncio.sleep(0.01)

        job = asyncio.create_task(agent())
        await eventually(lambda: guards, "the agent to start")
        foreign = foreign_commands(topics, "t-mine")
        await topics.publish(*foreign)
        await eventually(lambda: listener.stats["received"] == len(foreign), "the foreign commands to be read")
        assert not guards[0].halted and not job.done() and listener.stats["halted"] == 0
        # the same command in the default tenant is ours: the guard was live all along
        await topics.publish(foreign_commands(topics, "t-mine", tenant="default")[0])
        await asyncio.wait_for(job, 30)
        await reporter.flush(30)
    guard = guards[0]
    acks = await topics.acks_for()
    assert [a["command_id"] for a in acks] == [guard.halted_by.command_id if guard.halted_by else None]
    assert sorted((r.command_id, r.reason) for r in rejected) == sorted(
        (c.command_id, Reason.OTHER_TENANT) for c in foreign
    )
    assert listener.stats["rejected: another tenant"] == 3
    assert caplog.text.count("rejected: another tenant") == 3


def test_the_synchronous_listener_obeys_no_other_tenant(topics: SdkTopics) -> None:
    rejected: list[Rejection] = []
    with SyncCostReporter(topics.bootstrap, team="search", workflow="answer", agent="answerer",
                          topic=topics.events) as reporter, \
            SyncKillSwitchListener(topics.bootstrap, workflow="answer", agent="answerer", secrets=[topics.key],
                                   topic=topics.killswitch, acks_topic=topics.acks,
                                   on_rejected=rejected.append) as listener:  # fmt: skip
        assert listener.wait_ready(30)
        halts: list[str] = []
        with reporter.task("t-sync") as run, listener.guard(run, on_halt=lambda c: halts.append(c.command_id)) as g:
            foreign = foreign_commands(topics, "t-sync")
            asyncio.run(topics.publish(*foreign))
            deadline = time.monotonic() + 30
            while listener.stats["received"] < len(foreign):
                assert time.monotonic() < deadline, "the foreign commands were not read within 30 s"
                g.check()  # would raise Halted (absorbed by the guard) if a foreign command had halted it
                run.tool_call("crawler", cost_usd=0.001)
                g.wait(0.05)
        assert not g.halted and halts == []
    assert asyncio.run(topics.acks_for()) == []
    assert sorted(r.reason for r in rejected) == [Reason.OTHER_TENANT] * 3


async def test_a_command_naming_a_team_halts_only_work_that_knows_that_team(topics: SdkTopics) -> None:
    """A guard of a TaskRun knows its team; a guard given only a task id, on a listener without
    ``team=``, does not, and is never halted by a command that names one (it is reported)."""
    rejected: list[Rejection] = []
    async with CostReporter(topics.bootstrap, team="search", workflow="answer", topic=topics.events) as reporter, \
            KillSwitchListener(topics.bootstrap, secrets=[topics.key], topic=topics.killswitch,
                               acks_topic=topics.acks, on_rejected=rejected.append) as listener:  # fmt: skip
        assert await listener.wait_ready(30)
        async with reporter.task("t-run") as run, listener.guard(run) as by_run, \
                listener.guard(task_id="t-bare") as bare:  # fmt: skip
            other_team = topics.signed(topics.command({"team": "billing", "root_task_id": "t-run"}))
            names_team = topics.signed(topics.command({"team": "search", "root_task_id": "t-bare"}))
            await topics.publish(other_team, names_team)
            await eventually(lambda: len(rejected) == 2, "both commands to be reported")
            assert not by_run.halted and not bare.halted
            await topics.publish(topics.signed(topics.command({"team": "search", "root_task_id": "t-run"})))
            await eventually(lambda: by_run.halted, "the command naming the run's own team to halt it")
    assert not bare.halted
    assert sorted((r.command_id, r.reason, r.detail) for r in rejected) == sorted(
        [(other_team.command_id, Reason.OTHER_SCOPE, ""), (names_team.command_id, Reason.UNKNOWN_ID, "team")]
    )
    assert [a["command_id"] for a in await topics.acks_for()] == [by_run.halted_by.command_id if by_run.halted_by
                                                                    else None]  # fmt: skip
