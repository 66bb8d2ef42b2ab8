"""Spend that arrives after its root task finished is in the task-summaries topic (issue 9 #7).

Real broker, a real ``burnguard worker``. The fleet (:func:`late_fleet`: 4 simulated hours, 78 root
tasks; every third one gets a sub-agent that starts after the root's ``task_finished`` and reports
a tool step up to 90 s later) is produced to four partitions. Each root's summary is published when
it finishes; each late step gets a ``burnguard.task_late_spend/1`` record of its own key. Copies
(delivery is at least once) are counted once by key: the summaries' and late records' ``cost_usd``
add up to the fleet's spend as ``burnguard replay`` counts it, and the late part to replay's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from burnguard.replay import replay_file
from streams.feed import encode_event
from streams.feed import produce_events as produce_fleet
from streams.settings import StreamSettings
from streams.summaries import TASK_LATE_SPEND_SCHEMA, TASK_SUMMARY_SCHEMA
from tests.streams.conftest import Names, read_all, values, wait_drained, wait_until
from tests.streams.late_fleet import late_fleet

pytestmark = pytest.mark.kafka


def money(records: list[Any]) -> tuple[float, float, int]:
    """``(summaries' USD, late records' USD, late records)`` of the topic's records, by key."""
    latest = {r.key: r for r in records}
    by_schema: dict[str, list[dict[str, Any]]] = {}
    for value in values(list(latest.values())):
        by_schema.setdefault(value["schema"], []).append(value)
    late = by_schema.get(TASK_LATE_SPEND_SCHEMA, [])
    return (
        sum(s["cost_usd"] for s in by_schema.get(TASK_SUMMARY_SCHEMA, [])),
        sum(x["cost_usd"] for x in late),
        len(late),
    )


async def test_late_subagent_spend_is_in_the_task_summaries_topic(
    names: Names, start_worker: Any, tmp_path: Path
) -> None:
    events, added = late_fleet()
    path = tmp_path / "fleet.jsonl"
    path.write_bytes(b"".join(encode_event(ev)[1] + b"\n" for ev in events))
    replayed = replay_file(path, None)
    total = replayed.engine.stats.spend_usd
    assert replayed.late_steps == added > 20 and replayed.engine.live_tasks == 0

    env = names.env(BURNGUARD_PARTITIONS="4", BURNGUARD_WATERMARK_INTERVAL_S="0.5")
    settings = StreamSettings.from_env(env)
    await produce_fleet(settings, events)
    worker = start_worker(env)
    finished = replayed.engine.stats.tasks_finished

    async def all_summarised() -> bool:
        keys = {r.key for r in await read_all(names.bootstrap, names.summaries)}
        return len(keys) >= finished + added  # one summary per root, one late record per late step

    await wait_until(all_summarised, "every root summarised and every late step recorded", 90, [worker])
    await wait_drained(names.bootstrap, names.app_id, [names.events, names.internal], 60, [worker])
    summarised, late, late_records = money(await read_all(names.bootstrap, names.summaries))
    print(
        f"{len(events)} events, ${total:.4f} of spend; summaries ${summarised:.4f} + {late_records} late-spend "
        f"records ${late:.4f} (replay: {replayed.late_steps} late steps, ${replayed.late_spend_usd:.4f})"
    )
    assert late_records == replayed.late_steps
    assert late == pytest.approx(replayed.late_spend_usd, abs=1e-6)
    assert summarised + late == pytest.approx(total, abs=1e-6)
