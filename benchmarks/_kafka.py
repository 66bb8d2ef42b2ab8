"""Shared helpers of the Kafka benchmarks: a private broker, a simulated fleet, preloading a topic,
and running one measurement in a fresh subprocess.

Not a benchmark itself (the leading underscore keeps it out of ``benchmarks/*.py`` listings).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KAFKA_LOCAL = REPO / "scripts" / "kafka-local"
#: a measurement subprocess prints its JSON result after this mark
RESULT_MARK = "BENCH-RESULT "


@contextmanager
def kafka_broker() -> Iterator[str]:
    """The bootstrap address of a broker: ``BURNGUARD_KAFKA_BOOTSTRAP`` if set, else a private
    ``scripts/kafka-local`` broker in a temporary directory, started here and stopped (with its
    data deleted) on the way out."""
    given = os.environ.get("BURNGUARD_KAFKA_BOOTSTRAP", "").strip()
    if given:
        yield given
        return
    state = tempfile.mkdtemp(prefix="burnguard-bench-kafka-")
    env = {**os.environ, "BURNGUARD_KAFKA_DIR": state}
    try:
        out = subprocess.run(
            [str(KAFKA_LOCAL), "start"], env=env, cwd=REPO, capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"scripts/kafka-local start failed:\n{out.stderr[-3000:]}")
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, cwd=REPO, capture_output=True, check=False)
        shutil.rmtree(state, ignore_errors=True)


def tag() -> str:
    """A short unique suffix for app ids, consumer groups and topic names of one measurement."""
    return uuid.uuid4().hex[:10]


def fleet_events(events: int, seed: int = 11) -> list[dict[str, Any]]:
    """The first ``events`` events of a simulated 48-hour fleet (with the demo's incidents) scaled to
    hold about that many, as contract dicts (``ts`` in epoch seconds)."""
    from burnguard.simulator import DEFAULT_INCIDENTS, FleetSimulator

    probe = FleetSimulator(seed=seed, hours=48.0, incidents=DEFAULT_INCIDENTS)
    scale = max(0.05, 1.05 * events / max(1, probe.approx_event_count()))
    sim = FleetSimulator(seed=seed, hours=48.0, scale=scale, incidents=DEFAULT_INCIDENTS)
    return list(itertools.islice(sim.events(), events))


def fleet_records(events: int, seed: int = 11) -> list[tuple[bytes, bytes]]:
    """:func:`fleet_events` as ``(key, value)`` records, exactly as ``burnguard simulate --to-kafka``
    sends them (key = root task id)."""
    from streams.feed import encode_event

    return [encode_event(e) for e in fleet_events(events, seed)]


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create ``name`` (and wait until every partition has a leader), as the worker would."""
    from streams.settings import StreamSettings
    from streams.topics import ensure_topics

    settings = StreamSettings(bootstrap=bootstrap, events_topic=name, partitions=partitions, internal_topic=name + ".i")
    await ensure_topics(settings)


async def preload(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]], partitions: int) -> float:
    """Create ``topic`` and write ``records`` to it as fast as the broker takes them; returns seconds."""
    import time

    from aiokafka import AIOKafkaProducer

    await create_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=512 * 1024, max_request_size=4 << 20
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending: list[asyncio.Future[Any]] = []
        for key, value in records:
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def worker_env(bootstrap: str, partitions: int, **names: str) -> dict[str, str]:
    """``BURNGUARD_*`` settings of a worker with a fresh app id and fresh topics (``events_topic=...``
    and the like override a name), no web server."""
    t = tag()
    env = {
        "BURNGUARD_KAFKA_BOOTSTRAP": bootstrap,
        "BURNGUARD_APP_ID": f"bench-{t}",
        "BURNGUARD_EVENTS_TOPIC": f"bench-{t}-events",
        "BURNGUARD_INTERNAL_TOPIC": f"bench-{t}-by-workflow",
        "BURNGUARD_ANOMALIES_TOPIC": f"bench-{t}-anomalies",
        "BURNGUARD_SUMMARIES_TOPIC": f"bench-{t}-summaries",
        "BURNGUARD_DLQ_TOPIC": f"bench-{t}-dlq",
        "BURNGUARD_PARTITIONS": str(partitions),
        "BURNGUARD_DATA_DIR": str(Path(tempfile.gettempdir()) / f"burnguard-bench-{t}"),
        "BURNGUARD_WEB_ENABLED": "false",
    }
    env.update({f"BURNGUARD_{k.upper()}": v for k, v in names.items()})
    return env


def run_child(
    code: str,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
    cwd: Path = REPO,
) -> Any:
    """Run ``code`` in a fresh ``python -c`` (in ``cwd``, whose packages it imports first); its result
    is the JSON after the last :data:`RESULT_MARK` it prints."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BURNGUARD_")}
    full_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    # a Faust worker logs to stdout too: the result is the line after the last RESULT_MARK
    lines = [line.split(RESULT_MARK, 1)[1] for line in out.stdout.splitlines() if RESULT_MARK in line]
    if out.returncode not in (0, -15) or not lines:
        raise RuntimeError(f"measurement failed (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(lines[-1])
