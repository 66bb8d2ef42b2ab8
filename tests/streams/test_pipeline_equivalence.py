"""The same events file through ``burnguard replay`` and through Kafka raises the same anomalies.

Real broker, real ``burnguard worker`` subprocess, the real ``burnguard replay`` command. The file
(:func:`task_fleet`: 18 simulated hours, ~17,700 events, 660 root tasks in 10 workflows, four
incidents) is produced to an events topic of four partitions, keyed by root task as agents send it:
each workflow's tasks are spread over every source partition, which the worker reads at unrelated
speeds. The detect stage still has to see each workflow's events in event-time order, and event
time has to advance only as far as every source has got (streams.ordering); before it did, this
fleet raised hundreds of false "went silent" stale_task warnings and runaway episodes under other
ids (learned baselines saw the tasks finish in another order).

What is compared, ``(anomaly_id, detector, status, severity, action, observed)`` of every anomaly:

- scoped to a root task — task_budget, runaway_task, fan_out, stale_task and the retry_rate stop
  rule, the issue's requirement — and, as well, those scoped to a workflow (burn rate and retry
  rate windows, cost shift), which the event-time order makes equal too;
- scoped to a tenant or a team: burn rate against the learned rate and against money budgets
  (:data:`ROLLUP_FLEET_CONFIG`: a tenant's learned rate, a team's and a tenant's daily budgets
  crossed at 70, 90 and 100 %, a team's burned too fast), which no single partition can judge: the
  roll-up stage (streams.rollup) gathers every partition's spend per minute and judges them, with
  ``metric`` compared as well, since one episode holds learned and budget findings;
- up to the last event's time less the lateness: replay lets time run past the end of its file to
  close its windows, a worker's event time never passes what its sources have reached.

Run twice: with one internal record per event (the default) and with ``BURNGUARD_FRAMES`` (one
frame per destination partition per ingest batch, schemas.frames).

Not compared: ``detected_at`` (wall clock), and the evidence of what a tick raised (the task's cost
at that tick; replay ticks after the event that passes the watermark, the worker before it, so the
task's state at the tick may differ by that one event).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.timefmt import parse_ts
from streams.feed import encode_event
from streams.feed import produce_events as produce_fleet
from streams.settings import StreamSettings
from tests.streams.conftest import BURNGUARD, REPO, Names, read_all, values, wait_drained, wait_until
from tests.streams.reference import comparable, reference_run, task_fleet
from tests.streams.rollup_fleet import ROLLUP_FLEET_CONFIG, rolled_up

pytestmark = pytest.mark.kafka
PARTITIONS = 4


@pytest.mark.parametrize("frames", [False, True], ids=["one-record-per-event", "frames"])
async def test_replay_and_the_worker_raise_the_same_task_level_anomalies(
    names: Names, start_worker: Any, tmp_path: Path, frames: bool
) -> None:
    config = tmp_path / "burnguard.yaml"
    config.write_text(ROLLUP_FLEET_CONFIG)
    events = task_fleet()
    path = tmp_path / "fleet.jsonl"
    path.write_bytes(b"".join(encode_event(ev)[1] + b"\n" for ev in events))
    cutoff = max(ev["ts"] for ev in events) - 300.0

    # burnguard replay, the command
    out = tmp_path / "replay.jsonl"
    subprocess.run(
        [str(BURNGUARD), "replay", str(path), "--config", str(config), "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    expected = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    _, summaries = reference_run(path, config)
    task_level = comparable(expected, cutoff, task_level=True)
    assert {a[1] for a in task_level} == {"task_budget", "runaway_task", "fan_out", "stale_task", "retry_rate",
                                          "young_runaway"}  # the last judged by the roll-up stage
    above = rolled_up(expected, cutoff)
    assert {(len(a[0]), a[1]) for a in above} == {(1, "burn_usd_per_hour"), (2, "burn_usd_per_hour"),
                                                  (1, "budget_spent_fraction"), (2, "budget_spent_fraction"),
                                                  (2, "budget_burn_rate")}

    # the same file through Kafka
    env = names.env(
        BURNGUARD_PARTITIONS=str(PARTITIONS), BURNGUARD_WATERMARK_INTERVAL_S="0.5", BURNGUARD_FRAMES=str(frames).lower()
    )
    settings = StreamSettings.from_env(env)
    started = time.monotonic()
    await produce_fleet(settings, events)
    worker = start_worker(env, ["--config", str(config)])

    async def all_summarised() -> bool:
        return {r.key.decode() for r in await read_all(names.bootstrap, names.summaries)} >= set(summaries)

    await wait_until(all_summarised, "a summary of every finished root task", 120, [worker])
    drained = [names.events, names.internal, settings.rollup_topic]
    await wait_drained(names.bootstrap, names.app_id, drained, 60, [worker])
    elapsed = time.monotonic() - started
    got = values(await read_all(names.bootstrap, names.anomalies))

    assert comparable(got, cutoff, task_level=True) == task_level
    assert comparable(got, cutoff, task_level=False) == comparable(expected, cutoff, task_level=False)
    assert rolled_up(got, cutoff) == above
    # no crash, no rebalance: every anomaly once, every summary once and with replay's totals
    in_scope = [a for a in got if parse_ts(a["ts"]) <= cutoff]
    assert max(Counter((a["anomaly_id"], a["status"], a["severity"]) for a in in_scope).values()) == 1
    published = values(await read_all(names.bootstrap, names.summaries))
    assert len(published) == len(summaries)
    assert {s["root_task_id"]: s for s in published} == summaries
    print(
        f"{len(events)} events, {len(task_level)} task-level and {len(above)} tenant/team anomalies, "
        f"worker drained in {elapsed:.1f}s"
    )
