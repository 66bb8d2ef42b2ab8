"""A fleet with far-off event times mixed in, through a real worker (issue 9, item 3): shared by
tests/streams/test_event_time_kafka.py and the chaos suite's tests/chaos/test_event_time.py."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import orjson

from streams.feed import produce_events
from streams.settings import StreamSettings
from tests.streams.conftest import Names, read_all, values, wait_drained, wait_until
from tests.streams.reference import TASK_FLEET_CONFIG, comparable, replay, task_fleet

PARTITIONS = 4
#: (time, made invalid as well): an invalid record stamped 2099 must carry no time; a valid 2099
#: one is past the worker's wall-clock bound; 2001 is far behind. Not here: a valid record an hour
#: past the fleet's end (a backlog's stray, within the wall-clock bound) still moves its source's
#: frontier (streams.routing.IngestClock)
STAMPS: list[tuple[str, bool]] = [
    ("2099-12-31T00:00:00Z", True),
    ("2099-12-31T00:00:00Z", False),
    ("2001-01-01T00:00:00Z", False),
    ("2001-01-01T00:00:00Z", True),
]


def with_outliers(events: list[dict[str, Any]], every: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The fleet's events with, every ``every`` events, one more copying the event before it under
    a new id and a far-off time (cycling through :data:`STAMPS`; an invalid one has a negative
    cost); returns the events and each outlier's id -> its kind."""
    end = max(ev["ts"] for ev in events)
    out: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    for i, ev in enumerate(events):
        out.append(ev)
        if i % every == every // 2:
            stamp, invalid = STAMPS[len(kinds) % len(STAMPS)]
            bad = {**ev, "event_id": f"outlier-{len(kinds)}", "ts": end + 3600 if stamp == "+1h" else stamp}
            if invalid:
                bad["cost_usd"] = -1.0
            kinds[bad["event_id"]] = f"{'invalid' if invalid else 'valid'} {stamp}"
            out.append(bad)
    return out, kinds


def letters(records: list[Any]) -> dict[str, dict[str, Any]]:
    """Dead letters by the event id of the record they hold."""
    out = {}
    for r in records:
        d = orjson.loads(r.value)
        raw = base64.b64decode(d["value_b64"]) if d.get("value_b64") else b"{}"
        out[str(orjson.loads(raw).get("event_id"))] = d
    return out


async def run_fleet_with_outliers(names: Names, start_worker: Any, tmp_path: Path, every: int) -> dict[str, Any]:
    """The fleet with outliers through a worker; asserts its anomalies are replay's of the clean
    fleet and that every outlier is dead-lettered; returns the figures."""
    config = tmp_path / "burnguard.yaml"
    config.write_text(TASK_FLEET_CONFIG)
    events = task_fleet()
    cutoff = max(ev["ts"] for ev in events) - 300.0
    expected = replay(events, tmp_path, config)
    mixed, kinds = with_outliers(events, every)
    env = names.env(BURNGUARD_PARTITIONS=str(PARTITIONS), BURNGUARD_WATERMARK_INTERVAL_S="0.5")
    started = time.monotonic()
    await produce_events(StreamSettings.from_env(env), mixed)
    worker = start_worker(env, ["--config", str(config)])

    async def every_outlier_dead() -> list[Any]:
        got = await read_all(names.bootstrap, names.dlq)  # every partition of the dead-letter topic
        return got if set(letters(got)) >= set(kinds) else []

    dead = await wait_until(every_outlier_dead, "a dead letter for every outlier", 120, [worker])
    await wait_drained(names.bootstrap, names.app_id, [names.events, names.internal], 90, [worker])
    got = values(await read_all(names.bootstrap, names.anomalies))
    for task_level in (True, False):
        assert comparable(got, cutoff, task_level=task_level) == comparable(expected, cutoff, task_level=task_level)
    by_id = letters(dead)
    assert set(by_id) == set(kinds), f"dead letters of valid fleet events: {set(by_id) - set(kinds)}"
    for event_id, kind in kinds.items():
        reason = by_id[event_id]["reason"]
        if kind.startswith("invalid"):
            assert "cost_usd" in reason, (kind, reason)
        elif "2099" in kind:
            assert "ahead of this worker's clock" in reason and "BURNGUARD_MAX_CLOCK_SKEW_S" in reason, reason
        elif "+1h" in kind:
            assert "ahead of the stream's event time" in reason and "max_ahead_s" in reason, reason
        else:
            assert "behind the stream's event time" in reason and "max_behind_s" in reason, reason
    tried = {k: sum(1 for v in kinds.values() if v == k) for k in sorted(set(kinds.values()))}
    figures = {
        "valid events": len(events),
        "outliers tried": tried,
        "dead-lettered": len(by_id),
        "anomalies": len(got),
        "replay's anomalies": len(expected),
        "lost": len(set(kinds) - set(by_id)),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(figures)
    return figures
