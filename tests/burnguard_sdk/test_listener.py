"""KillSwitchListener against the real broker: halts, acks, and every command that must halt nothing."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from burnguard_sdk import (
    CostReporter,
    Halted,
    KillCommand,
    KillSwitchListener,
    Reason,
    Rejection,
    SyncCostReporter,
    SyncKillSwitchListener,
)
from schemas.events import CostEvent, EventKind, Outcome
from schemas.killswitch import KillAck
from tests.burnguard_sdk.conftest import SdkTopics, eventually

pytestmark = pytest.mark.kafka


@pytest.fixture
async def reporter(topics: SdkTopics) -> AsyncIterator[CostReporter]:
    async with CostReporter(topics.bootstrap, team="search", workflow="answer", agent="answerer",
                            topic=topics.events) as r:  # fmt: skip
        yield r


def listener_for(topics: SdkTopics, rejected: list[Rejection] | None = None, **kwargs: Any) -> KillSwitchListener:
    return KillSwitchListener(
        topics.bootstrap, secrets=[topics.key, topics.old_key], agent="answerer", workflow="answer",
        topic=topics.killswitch, acks_topic=topics.acks, on_rejected=None if rejected is None else rejected.append,
        **kwargs,
    )  # fmt: skip


async def finished_outcomes(topics: SdkTopics) -> dict[str, Outcome | None]:
    events = [CostEvent.model_validate_json(r.value) for r in await topics.events_read()]
    return {e.task_id: e.outcome for e in events if e.kind is EventKind.TASK_FINISHED}


async def runaway(reporter: CostReporter, listener: KillSwitchListener, task_id: str, after: list[str]) -> None:
    """An async agent that spends until halted; records that it went on after its guarded block."""
    async with reporter.task(task_id) as run, listener.guard(run):
        while True:
            run.model_call("gpt-4o-mini", provider="openai", input_tokens=800, output_tokens=200)
            await asyncio.sleep(0.01)
    after.append(task_id)


async def test_async_agent_is_cancelled_finishes_killed_and_acks(topics: SdkTopics, reporter: CostReporter) -> None:
    async with listener_for(topics) as listener:
        assert await listener.wait_ready(30)
        after: list[str] = []
        agent = asyncio.create_task(runaway(reporter, listener, "t-async", after))
        await eventually(lambda: reporter.stats.reported > 5, "the agent to spend")
        command = topics.signed(topics.command({"root_task_id": "t-async"}))
        sent_at = time.monotonic()
        await topics.publish(command)
        await asyncio.wait_for(agent, 30)  # returns: the guard absorbed its own cancellation
        print(f"command -> halted in {1000 * (time.monotonic() - sent_at):.1f} ms")
        assert after == ["t-async"]
        await reporter.flush(30)
    acks = await topics.acks_for(command.command_id)
    assert len(acks) == 1 and acks[0]["_key"] == command.command_id
    ack = KillAck.model_validate(acks[0])
    assert ack.target == command.target and ack.halted_by.endswith("/answerer") and ack.halted_at >= command.issued_at
    assert (await finished_outcomes(topics))["t-async"] is Outcome.KILLED
    assert listener.stats["halted"] == 1 and listener.stats["acked"] == 1


def test_sync_agent_is_halted_through_its_callback(topics: SdkTopics) -> None:
    halts: list[str] = []
    with SyncCostReporter(topics.bootstrap, team="search", workflow="answer", topic=topics.events) as reporter, \
            SyncKillSwitchListener(topics.bootstrap, secrets=[topics.key], workflow="answer",
                                   topic=topics.killswitch, acks_topic=topics.acks) as listener:  # fmt: skip
        assert listener.wait_ready(30)
        steps = 0
        started = threading.Event()

        def publish_when_started() -> None:
            started.wait(30)
            asyncio.run(topics.publish(topics.signed(topics.command({"root_task_id": "t-sync"}))))

        publisher = threading.Thread(target=publish_when_started)
        publisher.start()
        with reporter.task("t-sync") as run, listener.guard(run, on_halt=lambda c: halts.append(c.command_id)) as g:
            while True:
                g.check()  # raises Halted once the command is in; the guard absorbs it
                run.tool_call("crawler", cost_usd=0.01)
                steps += 1
                started.set()
                g.wait(0.01)
        publisher.join()
        assert g.halted and len(halts) == 1 and steps >= 1
        assert reporter.flush(30)
    acks = asyncio.run(topics.acks_for())
    assert [a["command_id"] for a in acks] == halts
    assert asyncio.run(finished_outcomes(topics))["t-sync"] is Outcome.KILLED


async def test_commands_that_must_halt_nothing_are_reported(
    topics: SdkTopics, reporter: CostReporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rejected: list[Rejection] = []
    target = {"root_task_id": "t-guarded"}
    forged = topics.command(target).signed(b"not-the-key")
    tampered = topics.signed(topics.command(target)).model_copy(update={"reason": "edited after signing"})
    expired = topics.signed(topics.command(target, issued_at=time.time() - 600, expires_in_s=60))
    cases = {
        "unsigned": topics.command(target),
        "bad signature": forged,
        "bad signature (tampered)": tampered,
        "expired": expired,
        "another scope (other task)": topics.signed(topics.command({"root_task_id": "t-someone-else"})),
        "another scope (other agent)": topics.signed(topics.command({"agent": "other-agent"}, scope="agent")),
        "another scope (other workflow)": topics.signed(topics.command({"workflow": "billing"}, scope="workflow")),
        "another scope (task id of another workflow)": topics.signed(
            topics.command({"root_task_id": "t-guarded", "workflow": "billing"})),
    }  # fmt: skip
    async with listener_for(topics, rejected) as listener:
        assert await listener.wait_ready(30)
        async with reporter.task("t-guarded") as run, listener.guard(run) as guard:
            await topics.publish(*cases.values(), b"{not json", b'{"schema": "burnguard.kill/1"}')
            await eventually(lambda: listener.stats["received"] == len(cases) + 2, "every command to be read")
            assert not guard.halted
            run.tool_call("still-running")
        # a valid command signed with the older key (rotation) does halt: the guard was live all along
        async with reporter.task("t-guarded-2") as run2, listener.guard(run2) as guard2:
            await topics.publish(topics.signed(topics.command({"root_task_id": "t-guarded-2"})).model_copy(
                update={"signature": None}).signed(topics.old_key.encode()))  # fmt: skip
            await eventually(lambda: guard2.halted, "the old-key command to halt")
    reasons = sorted(r.reason for r in rejected)
    assert reasons == sorted(
        [Reason.UNSIGNED, Reason.BAD_SIGNATURE, Reason.BAD_SIGNATURE, Reason.EXPIRED] + [Reason.OTHER_SCOPE] * 4
        + [Reason.MALFORMED] * 2
    )  # fmt: skip
    assert {r.command_id for r in rejected} == {c.command_id for c in cases.values()} | {None}
    assert all(r.topic == topics.killswitch and r.offset >= 0 for r in rejected)
    assert listener.stats["rejected: bad signature"] == 2 and listener.stats["halted"] == 1
    acks = await topics.acks_for()
    assert [a["command_id"] for a in acks] == [guard2.halted_by.command_id if guard2.halted_by else None]
    assert (await finished_outcomes(topics)) == {"t-guarded": Outcome.SUCCESS, "t-guarded-2": Outcome.KILLED}
    for reason in ("unsigned", "bad signature", "expired", "malformed"):
        assert f"rejected: {reason}" in caplog.text
    assert topics.key not in caplog.text and topics.old_key not in caplog.text
    assert topics.key not in repr(listener) + repr(rejected)


async def test_replayed_command_for_a_finished_task_halts_nothing(topics: SdkTopics, reporter: CostReporter) -> None:
    rejected: list[Rejection] = []
    async with listener_for(topics, rejected) as listener:
        assert await listener.wait_ready(30)
        after: list[str] = []
        agent = asyncio.create_task(runaway(reporter, listener, "t-done", after))
        await eventually(lambda: reporter.stats.reported > 2, "the agent to spend")
        command = topics.signed(topics.command({"root_task_id": "t-done"}))
        await topics.publish(command)
        await asyncio.wait_for(agent, 30)
        async with reporter.task("t-normal") as run, listener.guard(run):
            run.tool_call("quick")
        late = topics.signed(topics.command({"root_task_id": "t-normal"}))
        await topics.publish(command, late)  # the same command again, and a new one for a task that is over
        await eventually(lambda: len(rejected) == 2, "both to be rejected")
    assert sorted((r.command_id, r.reason) for r in rejected) == sorted(
        [(command.command_id, Reason.FINISHED), (late.command_id, Reason.FINISHED)])  # fmt: skip
    assert [a["command_id"] for a in await topics.acks_for()] == [command.command_id]
    assert listener.stats["halted"] == 1


async def test_a_burst_for_one_task_yields_one_halt_and_one_ack(topics: SdkTopics, reporter: CostReporter) -> None:
    rejected: list[Rejection] = []
    burst = [topics.signed(topics.command({"root_task_id": "t-burst"})) for _ in range(10)]
    halts: list[str] = []
    async with listener_for(topics, rejected) as listener:
        assert await listener.wait_ready(30)

        async def agent() -> None:
            def on_halt(command: KillCommand) -> None:
                halts.append(command.command_id)

            async with reporter.task("t-burst") as run, listener.guard(run, on_halt=on_halt):
                while True:
                    run.tool_call("crawler")
                    await asyncio.sleep(0.01)

        job = asyncio.create_task(agent())
        await eventually(lambda: reporter.stats.reported > 2, "the agent to spend")
        await topics.publish(*burst, *burst[:3])  # ten commands, three of them twice
        await asyncio.wait_for(job, 30)
        await eventually(lambda: listener.stats["received"] == 13, "the whole burst to be read")
    # stop() delivered every pending ack: what is on the topic now is all there will be
    acks = await topics.acks_for()
    assert len(halts) == 1 and [a["command_id"] for a in acks] == halts
    assert {r.reason for r in rejected} <= {Reason.ALREADY_HALTED, Reason.FINISHED} and len(rejected) == 12
    assert listener.stats["halted"] == 1 and listener.stats["acked"] == 1
    assert list((await finished_outcomes(topics)).values()) == [Outcome.KILLED]


async def test_command_issued_before_the_task_started_still_applies(topics: SdkTopics, reporter: CostReporter) -> None:
    early = topics.signed(topics.command({"root_task_id": "t-early"}))
    expired_early = topics.signed(topics.command({"root_task_id": "t-late"}, issued_at=time.time() - 120,
                                                 expires_in_s=60))  # fmt: skip
    await topics.publish(early, expired_early)  # before any listener runs: read back through the look-back
    async with listener_for(topics, lookback_s=600) as listener:
        assert await listener.wait_ready(30)
        ran: list[str] = []
        with pytest.raises(Halted) as halted:
            async with reporter.task("t-early") as run, listener.guard(run):
                ran.append("body")
        assert halted.value.command.command_id == early.command_id and ran == []
        # an expired earlier command does not stop a task; a command arriving while no task runs applies later
        async with reporter.task("t-late") as run, listener.guard(run) as guard:
            run.tool_call("x")
        assert not guard.halted
        pending = topics.signed(topics.command({"root_task_id": "t-next"}))
        await topics.publish(pending)
        await eventually(lambda: listener.stats["received"] == 3, "the command for the next task to be read")
        with pytest.raises(Halted):
            async with reporter.task("t-next") as run, listener.guard(run):
                ran.append("next")
        assert ran == []
    acks = {a["command_id"] for a in await topics.acks_for()}
    assert acks == {early.command_id, pending.command_id}
    outcomes = await finished_outcomes(topics)
    assert outcomes == {"t-early": Outcome.KILLED, "t-late": Outcome.SUCCESS, "t-next": Outcome.KILLED}


async def test_agent_and_workflow_scopes_halt_every_matching_guard(topics: SdkTopics, reporter: CostReporter) -> None:
    async with listener_for(topics) as listener:
        assert await listener.wait_ready(30)
        after: list[str] = []
        agents = [asyncio.create_task(runaway(reporter, listener, f"t-wf-{i}", after)) for i in range(3)]
        await eventually(lambda: reporter.stats.reported > 6, "the agents to spend")
        by_workflow = topics.signed(topics.command({"workflow": "answer"}, scope="workflow"))
        await topics.publish(by_workflow)
        await asyncio.wait_for(asyncio.gather(*agents), 30)
        assert sorted(after) == ["t-wf-0", "t-wf-1", "t-wf-2"]
        with pytest.raises(Halted):  # the workflow stays stopped while the command is unexpired
            async with reporter.task("t-wf-new") as run, listener.guard(run):
                pass

        async def parent_and_sub() -> None:
            async with reporter.task("t-parent", workflow="ops") as run, listener.guard(run):
                run.model_call("gpt-4o", provider="openai", input_tokens=3000, output_tokens=400)  # plans
                async with run.subtask("t-child") as sub, listener.guard(sub):
                    while True:
                        sub.model_call("gpt-4o-mini", provider="openai", input_tokens=10, output_tokens=10)
                        await asyncio.sleep(0.01)
            after.append("t-parent")

        job = asyncio.create_task(parent_and_sub())
        await eventually(lambda: reporter.stats.reported > 12, "the sub-agent to spend")
        by_agent = topics.signed(topics.command({"agent": "answerer"}, scope="agent"))
        await topics.publish(by_agent)
        await asyncio.wait_for(job, 30)  # both guards cancelled the same task: absorbed once, by the outer
        assert after[-1] == "t-parent"
        await reporter.flush(30)
    acks = await topics.acks_for()
    assert sorted(a["command_id"] for a in acks) == sorted([by_workflow.command_id] * 4 + [by_agent.command_id] * 2)
    outcomes = await finished_outcomes(topics)
    assert set(outcomes.values()) == {Outcome.KILLED} and len(outcomes) == 6
