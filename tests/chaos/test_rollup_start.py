"""Fresh workers start on a fleet with late sub-agent spend; one is SIGKILLed during start-up.

Real broker; a new app id, so every changelog topic is created by the workers as they start (the
roll-up agent used to crash there: ``TypeError`` from the producer's partitioner while its metadata
lacked the changelog, issue 9 #6). The fleet (:func:`task_fleet`, ~17,700 events and four
incidents, plus a late sub-agent on every third finished root: 222 steps after their root's
``task_finished``) is on the events topic (four partitions) before three workers start; one of
them is SIGKILLed as soon as the group is stable with all three. When the stream is drained:

- no worker logged a traceback, a crashed agent or a late event;
- the anomalies, copies counted once, are replay's (task-, workflow-, tenant- and team-level, as
  in test_pipeline_scaleout);
- every finished root's summary equals replay's, one late-spend record per late step, and their
  ``cost_usd`` add up to replay's spend less the spend of the roots still open at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from burnguard.replay import replay_file
from detectors.config import load_config
from streams.feed import encode_event
from streams.feed import produce_events as produce_fleet
from streams.settings import StreamSettings
from streams.summaries import TASK_LATE_SPEND_SCHEMA, TASK_SUMMARY_SCHEMA
from tests.streams.conftest import Names, group_assignment, read_all, values, wait_drained, wait_until
from tests.streams.late_fleet import with_late_subagents
from tests.streams.reference import comparable, reference_run, task_fleet
from tests.streams.rollup_fleet import ROLLUP_FLEET_CONFIG, rolled_up

PARTITIONS = 4
WORKERS = 3


async def test_fresh_workers_start_without_a_crash_and_count_late_spend(
    names: Names, start_worker: Any, tmp_path: Path
) -> None:
    config = tmp_path / "burnguard.yaml"
    config.write_text(ROLLUP_FLEET_CONFIG)
    events, added = with_late_subagents(task_fleet())
    path = tmp_path / "fleet.jsonl"
    path.write_bytes(b"".join(encode_event(ev)[1] + b"\n" for ev in events))
    cutoff = max(ev["ts"] for ev in events) - 300.0
    expected, summaries = reference_run(path, config)
    replayed = replay_file(path, None, config=load_config(config))
    assert replayed.late_steps == added > 200

    env = names.env(BURNGUARD_PARTITIONS=str(PARTITIONS), BURNGUARD_WATERMARK_INTERVAL_S="0.5")
    settings = StreamSettings.from_env(env)
    topics = [names.events, names.internal]
    await produce_fleet(settings, events)
    started = time.monotonic()
    workers = [start_worker(env, ["--config", str(config)]) for _ in range(WORKERS)]

    async def all_in_the_group() -> bool:
        members = await group_assignment(names.bootstrap, names.app_id, topics)
        return members is not None and len(members) == WORKERS

    await wait_until(all_in_the_group, f"{WORKERS} workers in the group", 60, workers)
    victim, survivors = workers[-1], workers[:-1]
    victim.kill()
    killed_after = time.monotonic() - started

    async def all_recorded() -> bool:
        keys = {r.key for r in await read_all(names.bootstrap, names.summaries)}
        return len(keys) >= len(summaries) + added

    await wait_until(all_recorded, "every summary and late-spend record", 100, survivors)
    await wait_drained(names.bootstrap, names.app_id, [*topics, settings.rollup_topic], 60, survivors)
    elapsed = time.monotonic() - started

    logs = [w.log.read_text(errors="replace") for w in workers]
    crashes = sum(text.count("Traceback") + text.count("crashed") for text in logs)
    type_errors = sum(text.count("'NoneType' object is not iterable") for text in logs)
    # in event-time order at the source, nothing may come late: not the victim's records forwarded
    # again by a survivor (the merge used to let the other sources run ahead of them)
    late_logged = sum(text.count(": late event ") for text in logs)

    records = await read_all(names.bootstrap, names.summaries)
    latest = values(list({r.key: r for r in records}.values()))
    published = [s for s in latest if s["schema"] == TASK_SUMMARY_SCHEMA]
    late = [s for s in latest if s["schema"] == TASK_LATE_SPEND_SCHEMA]
    summarised = sum(s["cost_usd"] for s in published)
    late_usd = sum(s["cost_usd"] for s in late)
    expected_summarised = sum(s["cost_usd"] for s in summaries.values())
    open_usd = replayed.engine.stats.spend_usd - expected_summarised - replayed.late_spend_usd

    got = values(await read_all(names.bootstrap, names.anomalies))
    task_level = comparable(got, cutoff, task_level=True) == comparable(expected, cutoff, task_level=True)
    workflow_level = comparable(got, cutoff, task_level=False) == comparable(expected, cutoff, task_level=False)
    scopes = rolled_up(got, cutoff) == rolled_up(expected, cutoff)
    print(
        f"{len(events)} events ({added} late steps, ${replayed.late_spend_usd:.4f}); {WORKERS} fresh workers, one "
        f"SIGKILLed {killed_after:.1f}s after start; drained after {elapsed:.1f}s; tracebacks/crashed {crashes}, "
        f"partitioner TypeErrors {type_errors}, late events {late_logged}; summaries {len(published)} "
        f"(${summarised:.4f}, replay "
        f"${expected_summarised:.4f}) + late records {len(late)} (${late_usd:.4f}) = ${summarised + late_usd:.4f}; "
        f"replay spend ${replayed.engine.stats.spend_usd:.4f} of which ${open_usd:.4f} in "
        f"{replayed.engine.live_tasks} roots still open; anomalies {len(got)} copies, equal to replay's: task "
        f"{task_level}, workflow {workflow_level}, tenant/team {scopes}"
    )
    assert crashes == 0 and type_errors == 0 and late_logged == 0
    assert task_level and workflow_level and scopes
    assert {s["root_task_id"]: s for s in published} == summaries
    assert len(late) == replayed.late_steps
    assert late_usd == pytest.approx(replayed.late_spend_usd, abs=1e-6)
    assert summarised + late_usd == pytest.approx(replayed.engine.stats.spend_usd - open_usd, abs=1e-6)
