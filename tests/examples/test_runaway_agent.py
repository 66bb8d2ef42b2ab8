"""examples/runaway_agent.py as a subprocess against the real broker: it runs away, a signed kill
command (made by the server's own model) halts it, it acks and exits cleanly. Prints how long each
leg took (command published -> ack on the topic, -> process exited)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from schemas.events import CostEvent, EventKind, Outcome
from schemas.killswitch import KillAck
from tests.burnguard_sdk.conftest import SdkTopics, eventually

pytestmark = pytest.mark.kafka

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "runaway_agent.py"


class Agent:
    """The example as a subprocess; its stdout JSON lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, topics: SdkTopics, *args: str) -> Agent:
        keys = f"{topics.key},{topics.old_key}"
        return await cls.run(topics.bootstrap, topics.events, topics.killswitch, topics.acks, keys, *args)

    @classmethod
    async def run(cls, bootstrap: str, events: str, killswitch: str, acks: str, keys: str, *args: str) -> Agent:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BURNGUARD_")}
        env["BURNGUARD_KILL_KEYS"] = keys
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), "--bootstrap", bootstrap, "--events-topic", events,
            "--killswitch-topic", killswitch, "--acks-topic", acks, *args,
            env=env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(json.loads(line))

    def said(self, event: str) -> dict[str, Any] | None:
        return next((line for line in self.lines if line["event"] == event), None)

    async def wait(self, timeout_s: float = 60.0) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        await self._reader
        return code

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_runaway_agent_is_halted_by_a_signed_command_and_acks(topics: SdkTopics, mode: str) -> None:
    agent = await Agent.start(topics, "--task-id", f"runaway-{mode}", "--runaway", "--rate", "50",
                              *(["--sync"] if mode == "sync" else []))  # fmt: skip
    try:
        await eventually(lambda: agent.said("ready") or agent.proc.returncode is not None, "the agent to start", 60)
        assert agent.said("ready"), f"the agent exited ({agent.proc.returncode}) before it was ready"

        async def spent() -> bool:
            return len(await topics.events_read()) >= 20

        await eventually(spent, "the runaway to spend", 60)
        command = topics.signed(topics.command({"root_task_id": f"runaway-{mode}"}))
        published, published_wall = time.monotonic(), time.time()
        await topics.publish(command)

        async def acked() -> list[dict[str, Any]]:
            return await topics.acks_for(command.command_id)

        [ack] = await eventually(acked, "the ack", 60)
        ack_s = time.monotonic() - published
        code = await agent.wait()
        exit_s = time.monotonic() - published
    finally:
        agent.kill()
    halt_s = KillAck.model_validate(ack).halted_at - published_wall
    print(f"\n[{mode}] command published -> halted (ack's halted_at): {1000 * halt_s:.0f} ms; "
          f"-> ack read back: {1000 * ack_s:.0f} ms; -> agent exited: {1000 * exit_s:.0f} ms")
    assert code == 0
    halted = agent.said("halted")
    assert halted is not None and halted["command_id"] == command.command_id and halted["steps"] >= 10
    assert KillAck.model_validate(ack).target == command.target
    events = [CostEvent.model_validate_json(r.value) for r in await topics.events_read()]
    finished = [e for e in events if e.kind is EventKind.TASK_FINISHED]
    assert [(e.task_id, e.outcome) for e in finished] == [(f"runaway-{mode}", Outcome.KILLED)]
    assert {e.name for e in events if e.category is not None} == {"gpt-4o-mini", "web_search"}
    assert all(e.cost_usd is None for e in events if e.name == "gpt-4o-mini")  # priced by burnguard


async def test_well_behaved_run_finishes_with_success_and_no_ack(topics: SdkTopics) -> None:
    agent = await Agent.start(topics, "--task-id", "calm", "--steps", "5", "--rate", "100")
    try:
        assert await agent.wait() == 0
    finally:
        agent.kill()
    assert agent.said("halted") is None and agent.said("finished") == agent.lines[-1]
    assert agent.lines[-1]["outcome"] == "success" and agent.lines[-1]["steps"] == 5
    events = [CostEvent.model_validate_json(r.value) for r in await topics.events_read()]
    assert len(events) == 2 + 5 + 1 and events[-1].outcome is Outcome.SUCCESS
    assert await topics.acks_for() == []
