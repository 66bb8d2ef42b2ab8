"""The pipeline end to end on the real broker: a ``burnguard worker`` subprocess reads cost events,
publishes the same anomalies as ``burnguard replay``, task summaries, and dead letters.

Run with a broker up (``scripts/test`` does it)::

    scripts/kafka-local start; eval "$(scripts/kafka-local env)"
    .venv/bin/python -m pytest -m kafka tests/streams
"""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.factory import T0, event, task_events
from tests.streams.conftest import Names, produce, produce_events, read_until, values
from tests.streams.reference import replay

pytestmark = pytest.mark.kafka

CONFIG = """
version: "pipeline-test-1"
defaults:
  autonomy: act
"""


def workload() -> list[dict[str, Any]]:
    """Six normal tasks, then one that runs through its $0.50 budget: warning at 80 %, kill at 100 %."""
    evs: list[dict[str, Any]] = []
    for i in range(6):
        evs += task_events(f"ok-{i}", T0 + 60 * i, steps=5, cost_per_step=0.02, budget_usd=1.0, workflow="support")
    evs += task_events("over", T0 + 600, steps=10, cost_per_step=0.08, budget_usd=0.5, workflow="support")
    return evs


def view(anomalies: list[dict[str, Any]]) -> Counter[tuple[str, str, str, str, str]]:
    return Counter((a["anomaly_id"], a["detector"], a["status"], a["severity"], a["action"]) for a in anomalies)


async def test_worker_publishes_the_anomalies_of_replay_and_task_summaries(
    names: Names, start_worker: Any, tmp_path: Path
) -> None:
    config = tmp_path / "burnguard.yaml"
    config.write_text(CONFIG)
    events = workload()
    expected = replay(events, tmp_path, config)
    budget = [a for a in expected if a["detector"] == "task_budget"]
    # what this workload must raise: the over-budget task warns, is killed, and resolves when it finishes
    assert [(a["status"], a["severity"], a["action"]) for a in budget] == [
        ("firing", "warning", "alert"),
        ("firing", "critical", "kill"),
        ("resolved", "critical", "none"),
    ]
    assert len({a["anomaly_id"] for a in budget}) == 1

    await names.create_topics()
    worker = start_worker(names.env(), ["--config", str(config)])
    await produce_events(names.bootstrap, names.events, events)

    got = values(
        await read_until(
            names.bootstrap, names.anomalies, lambda rs: len(rs) >= len(expected), timeout_s=90, worker=worker
        )
    )
    assert view(got) == view(expected)
    for a in got:
        assert a["schema"] == "burnguard.anomaly/1" and a["config_version"] == "pipeline-test-1"
    critical = next(a for a in got if a["severity"] == "critical" and a["status"] == "firing")
    assert critical["scope"]["root_task_id"] == "over"
    assert critical["observed"] == pytest.approx(0.56)  # the 7th step of $0.08 crosses $0.50

    summaries = values(await read_until(names.bootstrap, names.summaries, lambda rs: len(rs) >= 7, worker=worker))
    by_task = {s["root_task_id"]: s for s in summaries}
    assert sorted(by_task) == ["ok-0", "ok-1", "ok-2", "ok-3", "ok-4", "ok-5", "over"]
    over = by_task["over"]
    assert over["schema"] == "burnguard.task_summary/1"
    assert over["scope"] == {"tenant": "acme", "team": "team-a", "workflow": "support"}
    assert over["cost_usd"] == pytest.approx(0.80)
    assert over["lines"]["model"] == pytest.approx(0.80)
    assert (over["steps"], over["outcome"], over["duration_s"], over["killed"]) == (10, "success", 55.0, True)
    assert by_task["ok-0"]["cost_usd"] == pytest.approx(0.10) and not by_task["ok-0"]["killed"]


async def test_bad_input_goes_to_the_dead_letter_topic_and_the_worker_keeps_going(
    names: Names, start_worker: Any
) -> None:
    before = task_events("before", T0, steps=3, workflow="triage")
    after = task_events("after", T0 + 120, steps=3, workflow="triage")
    negative = event("step", "bad-1", T0 + 30, workflow="triage", category="tool", cost_usd=-1.0)
    no_category = event("step", "bad-2", T0 + 31, workflow="triage", cost_usd=0.01)
    garbage = b"\xff\xfe this is not JSON"
    bad = [
        (b"bad-0", garbage),
        (b"bad-1", orjson.dumps(negative)),
        (b"bad-2", orjson.dumps(no_category)),
    ]
    await names.create_topics()
    worker = start_worker(names.env())
    await produce_events(names.bootstrap, names.events, before)
    placed = await produce(names.bootstrap, names.events, bad)
    await produce_events(names.bootstrap, names.events, after)

    dead = values(await read_until(names.bootstrap, names.dlq, lambda rs: len(rs) >= 3, worker=worker))
    assert len(dead) == 3
    by_bytes = {base64.b64decode(d["value_b64"]): d for d in dead}
    assert set(by_bytes) == {value for _, value in bad}
    for (_, value), meta in zip(bad, placed, strict=True):
        record = by_bytes[value]
        assert record["schema"] == "burnguard.dead_letter/1"
        assert (record["topic"], record["partition"], record["offset"]) == (names.events, meta.partition, meta.offset)
        assert record["failed_at"].endswith("Z")
    assert by_bytes[garbage]["value_text"] is None  # not UTF-8: the bytes are only in value_b64
    assert "Invalid JSON" in by_bytes[garbage]["reason"] and by_bytes[garbage]["stage"] == "ingest"
    neg = by_bytes[bad[1][1]]
    assert "cost_usd" in neg["reason"] and "greater than or equal to 0" in neg["reason"]
    assert neg["stage"] == "detect" and orjson.loads(neg["value_text"]) == negative
    assert "category" in by_bytes[bad[2][1]]["reason"]

    # the valid events after the bad ones were processed: both tasks finished with their full cost
    summaries = values(await read_until(names.bootstrap, names.summaries, lambda rs: len(rs) >= 2, worker=worker))
    assert {s["root_task_id"]: round(s["cost_usd"], 6) for s in summaries} == {"before": 0.03, "after": 0.03}
    assert worker.alive()
