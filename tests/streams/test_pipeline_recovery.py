"""A worker killed with SIGKILL and restarted continues with the same totals and baselines.

The worker runs with a one-hour commit interval, so at the SIGKILL no offset has been committed:
after the restart every record is redelivered (input and internal topic alike) and the ingest
forwards the first phase again. Only the checkpoint's source offsets (and the engine's event-id
dedup) keep them from counting twice. The result must equal ``burnguard replay`` of all events.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.state import workflow_key
from tests.factory import T0, task_events
from tests.streams.conftest import Names, produce_events, read_until, values
from tests.streams.reference import replay

pytestmark = pytest.mark.kafka

CONFIG = """
version: "recovery-test-1"
defaults:
  autonomy: act
  detectors:
    runaway_task: {min_samples: 5}
"""
WORKFLOW = ("acme", "team-a", "support")


def phases() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Phase 1: six normal $0.10 tasks (the runaway baseline passes min_samples) and task B, budget
    $0.98, two $0.04 steps in. Phase 2: two of B's steps sent again by the producer, B's other 28
    steps (through its budget), and task C ($0.60, no budget: only the learned baseline can see it)."""
    normal = [
        ev
        for i in range(6)
        for ev in task_events(f"n{i}", T0 + 60 * i, steps=5, cost_per_step=0.02, budget_usd=1.0, workflow="support")
    ]
    b = task_events("B", T0 + 400, steps=30, cost_per_step=0.04, budget_usd=0.98, workflow="support")
    c = task_events("C", T0 + 420, steps=20, cost_per_step=0.03, workflow="support")
    first = normal + b[:3]
    second = b[1:3] + sorted(b[3:] + c, key=lambda e: e["ts"])
    return first, second


def episodes(anomalies: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(
        (a["anomaly_id"], a["detector"], a["status"], a["severity"], a["action"], round(a["observed"], 6))
        for a in anomalies
    )


def checkpoint_of(records: list[Any], key: bytes) -> dict[str, Any] | None:
    """The newest checkpoint of the workflow in the state table's changelog."""
    found = [r for r in records if r.key == key and r.value]
    return orjson.loads(found[-1].value) if found else None


def b_checkpointed(records: list[Any]) -> bool:
    state = checkpoint_of(records, workflow_key(*WORKFLOW))
    if state is None:
        return False
    tasks = {t["root_task_id"]: t for t in state["state"]["tasks"]}
    return "B" in tasks and tasks["B"]["steps"] == 2


async def test_sigkill_and_restart_keep_totals_and_baselines(names: Names, start_worker: Any, tmp_path: Path) -> None:
    config = tmp_path / "burnguard.yaml"
    config.write_text(CONFIG)
    first, second = phases()
    assert replay(first, tmp_path, config) == []  # phase 1 raises nothing: any anomaly comes after the crash
    expected = replay(first + second, tmp_path, config)
    env = names.env(BURNGUARD_COMMIT_INTERVAL_S="3600")
    args = ["--config", str(config)]

    await names.create_topics()
    worker = start_worker(env, args)
    await produce_events(names.bootstrap, names.events, first)
    await read_until(names.bootstrap, names.summaries, lambda rs: len(rs) >= 6, worker=worker)
    await read_until(names.bootstrap, names.changelog, b_checkpointed, worker=worker)
    worker.kill()

    worker = start_worker(env, args)
    await produce_events(names.bootstrap, names.events, second)
    summaries = values(
        await read_until(
            names.bootstrap,
            names.summaries,
            lambda rs: {orjson.loads(r.value)["root_task_id"] for r in rs} >= {"B", "C"},
            timeout_s=90,
            worker=worker,
        )
    )
    got = values(
        await read_until(
            names.bootstrap, names.anomalies, lambda rs: len(rs) >= len(expected), timeout_s=60, worker=worker
        )
    )

    # totals: every task summarised once, B's cost is its 30 steps exactly: nothing lost, nothing twice
    assert sorted(s["root_task_id"] for s in summaries) == ["B", "C", "n0", "n1", "n2", "n3", "n4", "n5"]
    by_task = {s["root_task_id"]: s for s in summaries}
    assert (by_task["B"]["steps"], round(by_task["B"]["cost_usd"], 6)) == (30, 1.2)
    assert (by_task["C"]["steps"], round(by_task["C"]["cost_usd"], 6)) == (20, 0.6)

    # the same episodes, severities, actions and observed values as an uninterrupted replay, each once
    # (phase 1 raised nothing, so even a re-emission after the crash could not explain a second copy)
    assert episodes(got) == episodes(expected)
    assert max(episodes(got).values()) == 1
    budget = [a for a in got if a["detector"] == "task_budget" and a["status"] == "firing"]
    assert [(a["severity"], a["scope"]["root_task_id"]) for a in budget] == [("warning", "B"), ("critical", "B")]
    assert budget[1]["observed"] >= 0.98 > budget[1]["observed"] - 0.04  # B reached its budget exactly once
    # the runaway baseline learned before the crash judges C at once: no new warm-up
    runaway = {a["scope"]["root_task_id"] for a in got if a["detector"] == "runaway_task" and a["status"] == "firing"}
    assert runaway == {"B", "C"}
