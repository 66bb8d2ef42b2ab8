"""End to end through the real broker and a real ``burnguard worker`` (autonomy ``act``): the example
agent runs away past its budget, the worker's ``task_budget`` detector fires, the kill switch signs a
command, the agent's listener halts it and acks, and the worker records the time to halt in the
anomaly's resolution. Prints the worker's own measurement."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from schemas.events import CostEvent, EventKind, Outcome
from tests.examples.test_runaway_agent import Agent
from tests.streams.conftest import Names, WorkerProcess, group_assignment, read_until, wait_until
from tests.streams.kill_names import TEST_KILL_KEY, KillTopics

pytestmark = pytest.mark.kafka


async def test_runaway_agent_is_halted_through_the_worker(
    names: Names, start_worker: Callable[..., WorkerProcess]
) -> None:
    await names.create_topics()
    worker = start_worker(names.env(), ["--autonomy", "act"])

    async def holds_the_events() -> bool:  # so the time measured is the pipeline's, not the worker's start
        members = await group_assignment(names.bootstrap, names.app_id, [names.events])
        return members is not None and len(members) == 1 and bool(members[0][names.events])

    await wait_until(holds_the_events, "the worker to hold the events topic", 90, [worker])
    kill = KillTopics.of(names)
    task_id = f"{names.app_id}-runaway"
    agent = await Agent.run(names.bootstrap, names.events, kill.killswitch, kill.acks, TEST_KILL_KEY,
                            "--task-id", task_id, "--runaway", "--rate", "50", "--budget-usd", "0.05")  # fmt: skip
    try:
        code = await agent.wait(timeout_s=180)
    finally:
        agent.kill()
    assert code == 0 and worker.alive()
    halted = agent.said("halted")
    assert halted is not None and halted["command_id"].startswith("kill-")

    def resolution(records: list[Any]) -> dict[str, Any] | None:
        for r in records:
            anomaly = json.loads(r.value)
            if anomaly["status"] == "resolved" and "time_to_halt_s" in (anomaly.get("evidence") or {}):
                return dict(anomaly)
        return None

    records = await read_until(names.bootstrap, names.anomalies, lambda rs: resolution(rs) is not None, 90, worker)
    resolved = resolution(records)
    assert resolved is not None and resolved["detector"] == "task_budget"
    ms = {k: round(1000 * v) for k, v in resolved["evidence"].items() if k.endswith("_s") and isinstance(v, float)}
    print(f"\nworker's time to halt: {ms['time_to_halt_s']} ms (event -> command {ms['event_to_command_s']} ms, "
          f"command -> halt {ms['command_to_halt_s']} ms)")
    events = [CostEvent.model_validate_json(r.value) for r in await read_until(
        names.bootstrap, names.events, lambda rs: any(b'"task_finished"' in r.value for r in rs), 30)]  # fmt: skip
    finished = [e for e in events if e.kind is EventKind.TASK_FINISHED]
    assert [(e.task_id, e.outcome) for e in finished] == [(task_id, Outcome.KILLED)]
