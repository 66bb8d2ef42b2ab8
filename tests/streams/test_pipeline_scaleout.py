"""Two workers share the work; one is killed mid-stream and the other takes over, losing nothing.

Real broker, two ``burnguard worker`` subprocesses in one consumer group (the app id), topics of
four partitions. The fleet of :func:`task_fleet` (~17,700 events, 660 root tasks, 10 workflows,
four incidents) is produced once both workers hold partitions; when about a quarter of the root
tasks are summarised, one worker gets SIGKILL: no shutdown, no commit, no flush, records it held
back for event-time order never acknowledged. After the session timeout (6 s here) the group
rebalances and the survivor holds every partition: it recovers the dead worker's engines from the
changelogged table and is redelivered everything after the dead worker's last commit.

When the stream is drained (the group has committed the end of the input and internal topics):

- every finished root task has a summary, and every copy of it (delivery is at least once) equals
  the one the engine gives in ``burnguard replay``'s run of the same file: totals, budget lines,
  steps, errors, duration — nothing lost, nothing counted twice, no total from a half state;
- the anomalies, copies counted once by ``(anomaly_id, status, severity)`` and compared with
  ``action`` and ``observed``, are exactly replay's: for the task-level detectors (task_budget,
  runaway_task, fan_out, stale_task, retry_rate's stop rule, and young_runaway, which the roll-up
  stage judges), for the workflow-level ones, and for
  the tenant- and team-level burn rates and money budgets of the roll-up stage (its reports
  redelivered, its state recovered from its table by the survivor), up to the last event's time
  less the lateness (see test_pipeline_equivalence for why, and for what is not compared:
  wall-clock times, a tick's evidence).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.feed import encode_event
from streams.feed import produce_events as produce_fleet
from streams.settings import StreamSettings
from tests.streams.conftest import Names, group_assignment, read_all, values, wait_drained, wait_until
from tests.streams.reference import comparable, reference_run, task_fleet
from tests.streams.rollup_fleet import ROLLUP_FLEET_CONFIG, rolled_up

pytestmark = pytest.mark.kafka
PARTITIONS = 4


async def test_two_workers_split_the_partitions_and_one_takes_over_when_the_other_is_killed(
    names: Names, start_worker: Any, tmp_path: Path
) -> None:
    config = tmp_path / "burnguard.yaml"
    config.write_text(ROLLUP_FLEET_CONFIG)
    events = task_fleet()
    path = tmp_path / "fleet.jsonl"
    path.write_bytes(b"".join(encode_event(ev)[1] + b"\n" for ev in events))
    cutoff = max(ev["ts"] for ev in events) - 300.0
    expected, summaries = reference_run(path, config)
    assert {a[1] for a in comparable(expected, cutoff, task_level=True)} == {
        "task_budget",
        "runaway_task",
        "fan_out",
        "stale_task",
        "retry_rate",
        "young_runaway",  # judged by the roll-up stage, over every partition's tasks
    }
    assert len({a[0] for a in rolled_up(expected, cutoff)}) == 5  # two tenants, three teams

    env = names.env(BURNGUARD_PARTITIONS=str(PARTITIONS), BURNGUARD_WATERMARK_INTERVAL_S="0.5")
    settings = StreamSettings.from_env(env)
    topics = [names.events, names.internal]
    await produce_fleet(settings, [])  # creates the topics with four partitions
    started = time.monotonic()
    survivor = start_worker(env, ["--config", str(config)])
    victim = start_worker(env, ["--config", str(config)])
    workers = [survivor, victim]

    async def split_between_two() -> list[dict[str, set[int]]] | None:
        members = await group_assignment(names.bootstrap, names.app_id, topics)
        if members is None or len(members) != 2 or not all(m[t] for m in members for t in topics):
            return None
        return members

    before = await wait_until(split_between_two, "two workers holding partitions", 60, workers)
    for topic in topics:  # each partition of each topic is read by exactly one of them
        assert sorted(p for m in before for p in m[topic]) == list(range(PARTITIONS))
    await produce_fleet(settings, events)

    async def some_summarised() -> int:
        done = len({r.key for r in await read_all(names.bootstrap, names.summaries)})
        return done if done >= len(summaries) // 4 else 0

    at_kill = await wait_until(some_summarised, "a quarter of the root tasks summarised", 60, workers)
    victim.kill()
    killed_at = time.monotonic()

    async def all_on_the_survivor() -> list[dict[str, set[int]]] | None:
        members = await group_assignment(names.bootstrap, names.app_id, topics)
        if members is None or len(members) != 1:
            return None
        return members if all(members[0][t] == set(range(PARTITIONS)) for t in topics) else None

    await wait_until(all_on_the_survivor, "the survivor holding every partition", 60, [survivor])
    taken_over = time.monotonic() - killed_at

    async def all_summarised() -> bool:
        return {r.key.decode() for r in await read_all(names.bootstrap, names.summaries)} >= set(summaries)

    await wait_until(all_summarised, "a summary of every finished root task", 90, [survivor])
    await wait_drained(names.bootstrap, names.app_id, [*topics, settings.rollup_topic], 60, [survivor])
    elapsed = time.monotonic() - started
    assert at_kill < len(summaries)  # the kill came mid-stream

    # totals: every root task, every copy of its summary equal to replay's
    published = values(await read_all(names.bootstrap, names.summaries))
    assert {s["root_task_id"] for s in published} == set(summaries)
    wrong = [(s, summaries[s["root_task_id"]]) for s in published if s != summaries[s["root_task_id"]]]
    assert not wrong, f"{len(wrong)} summaries differ from replay's, e.g. (kafka, replay) {wrong[0]}"

    # anomalies: none lost, none invented
    got = values(await read_all(names.bootstrap, names.anomalies))
    assert comparable(got, cutoff, task_level=True) == comparable(expected, cutoff, task_level=True)
    assert comparable(got, cutoff, task_level=False) == comparable(expected, cutoff, task_level=False)
    assert rolled_up(got, cutoff) == rolled_up(expected, cutoff)
    copies = len(published) - len(summaries)
    print(
        f"{len(events)} events; killed one of two workers at {at_kill}/{len(summaries)} summaries; the other held "
        f"every partition {taken_over:.1f}s later; drained {elapsed:.1f}s after start; {copies} summaries and "
        f"{len(got) - len({orjson.dumps([a['anomaly_id'], a['status'], a['severity']]) for a in got})} anomalies "
        "published twice"
    )
