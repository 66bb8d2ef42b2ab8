"""Reference runs for the pipeline tests: ``burnguard replay`` of the same events, and the simulated
task fleet the scale-out, equivalence and chaos tests compare the worker with."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from burnguard.replay import replay_file
from burnguard.simulator.fleet import FleetSimulator
from detectors.config import load_config
from detectors.engine import Engine
from schemas.timefmt import parse_ts
from streams.feed import encode_event
from streams.pipeline import task_summary


def replay(events: Sequence[dict[str, Any]], tmp_path: Path, config: Path | None) -> list[dict[str, Any]]:
    """``burnguard replay`` of the same events (as JSONL): the anomalies, as JSON objects."""
    path = tmp_path / f"replay-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_bytes(b"".join(encode_event(e)[1] + b"\n" for e in events))
    result = replay_file(path, None, config=load_config(config))
    return [orjson.loads(a.to_json()) for a in result.anomalies]


# -- several partitions, several workers: the scale-out and replay-equivalence tests ---------------

#: the configuration of :func:`task_fleet`: every task-level detector has something to find
TASK_FLEET_CONFIG = """
version: "task-fleet-1"
defaults:
  autonomy: act
  detectors:
    fan_out: {min_samples: 5}
    retry_rate: {warn_after_failures: 4, stop_after_failures: 6}
"""


def task_fleet(seed: int = 3) -> list[dict[str, Any]]:
    """18 simulated hours of the demo fleet at a quarter of its traffic (about 17,700 events, 660
    root tasks, 10 workflows) with a runaway loop, a sub-agent explosion, a zombie task and a retry
    storm. With :data:`TASK_FLEET_CONFIG`, replay raises runaway_task, task_budget, stale_task,
    young_runaway (an sql-analyst task 48x its young workflow's largest),
    fan_out and the retry_rate stop rule on it.

    Every time is moved back by under a minute, as it always was, so that the first event falls on
    a whole minute: the roll-up tests' tenant and team findings were chosen on those times (every
    engine ticks on whole minutes whatever its first event: tests/streams/test_event_order.py runs
    a fleet that does not start on one).
    """
    incidents = ("runaway_loop", "subagent_explosion", "zombie_task", "retry_storm")
    events = list(FleetSimulator(seed=seed, hours=18, scale=0.25, incidents=incidents).events())
    shift = events[0]["ts"] % 60
    for ev in events:
        ev["ts"] = round(ev["ts"] - shift, 3)
    return events


def reference_run(path: Path, config: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``burnguard replay`` of the file (its anomalies as JSON objects) and, from the same engine code
    run the same way, the ``burnguard.task_summary/1`` of every finished root task."""
    cfg = load_config(config)
    anomalies = [orjson.loads(a.to_json()) for a in replay_file(path, None, config=cfg).anomalies]
    summaries: dict[str, dict[str, Any]] = {}
    engine = Engine(cfg)
    engine.on_task_finished = lambda task: summaries.__setitem__(task.root_task_id, task_summary(task))
    with path.open("rb") as lines:
        for line in lines:
            engine.process_bytes(line)
    return anomalies, summaries


def comparable(anomalies: Sequence[dict[str, Any]], cutoff: float, *, task_level: bool) -> set[tuple[Any, ...]]:
    """The anomalies at or before ``cutoff`` (epoch s) whose scope is a root task (``task_level``) or a
    workflow, as ``(anomaly_id, detector, status, severity, action, observed)``, copies counted once.

    ``cutoff`` is the last event's time less the lateness: the worker's event time never passes it,
    while replay lets time run past the end of its file to close its last windows.
    """
    return {
        (a["anomaly_id"], a["detector"], a["status"], a["severity"], a["action"], a["observed"])
        for a in anomalies
        if parse_ts(a["ts"]) <= cutoff and ("root_task_id" in a["scope"]) == task_level and "workflow" in a["scope"]
    }
