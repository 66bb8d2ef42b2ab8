"""Fixtures for the pipeline tests against the real broker (``scripts/kafka-local``): per test its own
app id and topics (:class:`Names`); the worker as a real subprocess (:class:`WorkerProcess`), so a
SIGKILL is a real one. Without ``BURNGUARD_KAFKA_BOOTSTRAP`` a test fails, never skips."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import MemberAssignment
from aiokafka.structs import ConsumerRecord, RecordMetadata, TopicPartition

from streams.feed import encode_event
from streams.settings import StreamSettings
from streams.topics import ensure_topics
from tests.streams.kill_names import kill_env

REPO = Path(__file__).resolve().parents[2]
BURNGUARD = REPO / ".venv" / "bin" / "burnguard"
PARTITIONS = 3
T = TypeVar("T")


def bootstrap_servers() -> str:
    bootstrap = os.environ.get("BURNGUARD_KAFKA_BOOTSTRAP", "").strip()
    if not bootstrap:
        pytest.fail(
            "BURNGUARD_KAFKA_BOOTSTRAP is not set: start the local Apache Kafka broker with "
            '`scripts/kafka-local start` and then `eval "$(scripts/kafka-local env)"` before running '
            "the kafka tests (scripts/test does both)",
            pytrace=False,
        )
    return bootstrap


@dataclass(frozen=True)
class Names:
    """One test's app id and topics, unique per test."""

    bootstrap: str
    app_id: str
    events: str
    internal: str
    anomalies: str
    summaries: str
    dlq: str
    data_dir: Path

    @property
    def changelog(self) -> str:
        return f"{self.app_id}-engine-state-changelog"

    @property
    def alerts_dlq(self) -> str:
        return f"{self.app_id}-alerts-dlq"

    @property
    def alerts_state(self) -> str:
        return f"{self.app_id}-alerts-state"

    @property
    def silences(self) -> str:
        return f"{self.app_id}-silences"

    async def create_topics(self) -> None:
        """The topics as the worker creates them, so a test can produce before the worker is up."""
        await ensure_topics(StreamSettings.from_env(self.env()))

    def env(self, **extra: str) -> dict[str, str]:
        """The worker's environment: the test's names, small batches, a short session timeout."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BURNGUARD_")}
        env.update(
            {
                "BURNGUARD_KAFKA_BOOTSTRAP": self.bootstrap,
                "BURNGUARD_APP_ID": self.app_id,
                "BURNGUARD_EVENTS_TOPIC": self.events,
                "BURNGUARD_INTERNAL_TOPIC": self.internal,
                "BURNGUARD_ANOMALIES_TOPIC": self.anomalies,
                "BURNGUARD_SUMMARIES_TOPIC": self.summaries,
                "BURNGUARD_DLQ_TOPIC": self.dlq,
                "BURNGUARD_ALERTS_DLQ_TOPIC": self.alerts_dlq,
                "BURNGUARD_ALERTS_STATE_TOPIC": self.alerts_state,
                "BURNGUARD_SILENCES_TOPIC": self.silences,
                **kill_env(self.app_id),
                "BURNGUARD_PARTITIONS": str(PARTITIONS),
                "BURNGUARD_DATA_DIR": str(self.data_dir),
                "BURNGUARD_WEB_ENABLED": "false",
                "BURNGUARD_BATCH_WITHIN_S": "0.1",
                "BURNGUARD_SESSION_TIMEOUT_S": "6",
                "BURNGUARD_COMMIT_INTERVAL_S": "1",
            }
        )
        env.update(extra)
        return env


@pytest.fixture
def names(tmp_path: Path) -> Names:
    bootstrap = bootstrap_servers()
    tag = uuid.uuid4().hex[:10]
    return Names(
        bootstrap=bootstrap,
        app_id=f"bgtest-{tag}",
        events=f"bgtest-{tag}-events",
        internal=f"bgtest-{tag}-by-workflow",
        anomalies=f"bgtest-{tag}-anomalies",
        summaries=f"bgtest-{tag}-summaries",
        dlq=f"bgtest-{tag}-dlq",
        data_dir=tmp_path / "data",
    )


class WorkerProcess:
    """``burnguard worker`` as a subprocess with its output in a file; SIGTERM or SIGKILL it."""

    def __init__(self, env: dict[str, str], log: Path, args: Sequence[str] = ()) -> None:
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [str(BURNGUARD), "worker", "--no-web", *args],
            env=env,
            cwd=log.parent,  # the test's tmp_path: a relative path the worker writes stays out of the repository
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit, no flush."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within ``timeout_s``."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts workers; every one still running at the end of the test is stopped, its log shown on failure."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], args: Sequence[str] = ()) -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log", args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        sys.stderr.write(f"--- last lines of {worker.log.name}:\n{worker.tail()}\n")


async def produce(bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> list[RecordMetadata]:
    """Send records in order, one at a time (each acknowledged), and return where each landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        return [await producer.send_and_wait(topic, value=value, key=key) for key, value in records]
    finally:
        await producer.stop()


async def produce_events(bootstrap: str, topic: str, events: Sequence[dict[str, Any]]) -> list[RecordMetadata]:
    """Contract events keyed by root task id, as agents send them."""
    return await produce(bootstrap, topic, [encode_event(e) for e in events])


async def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ConsumerRecord]], bool],
    timeout_s: float = 60.0,
    worker: WorkerProcess | None = None,
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning, polled until ``done(records)`` holds; fails
    after ``timeout_s`` (or when ``worker`` dies) with what was read."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]  # created by Names.create_topics
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not done(records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{topic}: condition not met within {timeout_s:g}s; read {len(records)} records: "
                    f"{[r.value[:200] for r in records[-10:]]}"
                )
            if worker is not None and not worker.alive():
                raise AssertionError(f"the worker exited ({worker.proc.returncode}):\n{worker.tail()}")
            batches = await consumer.getmany(timeout_ms=300)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def values(records: Sequence[ConsumerRecord]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


async def partitions_of(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` (which must exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    tps = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d.get("partitions") or ()]
    assert {tp.topic for tp in tps} == set(topics), f"not every one of {topics} exists"
    return sorted(tps)


async def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record of every partition of ``topic``, up to the end offsets at the time of the call."""
    tps = await partitions_of(bootstrap, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)])
        return records
    finally:
        await consumer.stop()


async def group_assignment(bootstrap: str, group: str, topics: Sequence[str]) -> list[dict[str, set[int]]] | None:
    """Each member's partitions of ``topics`` while the consumer group is stable (``None`` otherwise),
    from the broker's description of the group (Faust's assignments are standard consumer ones)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    except KafkaError as exc:  # e.g. no group coordinator yet on a fresh broker: not stable yet
        if exc.retriable:
            return None
        raise
    finally:
        await admin.close()
    [described] = response.to_object()["groups"]
    if described["state"] != "Stable":
        return None
    members = []
    for member in described["members"]:
        assignment = MemberAssignment.decode(member["member_assignment"]) if member["member_assignment"] else None
        held = {t: set(parts) for t, parts in (assignment.assignment if assignment else []) if t in topics}
        members.append({t: held.get(t, set()) for t in topics})
    return members


async def wait_until(
    check: Callable[[], Awaitable[T | None]], what: str, timeout_s: float, workers: Sequence[WorkerProcess] = ()
) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail with ``what`` after
    ``timeout_s`` or as soon as one of ``workers`` exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        for worker in workers:
            if not worker.alive():
                code = worker.proc.returncode
                raise AssertionError(f"while waiting for {what}: a worker exited ({code}):\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g}s")
        await asyncio.sleep(0.5)


async def wait_drained(
    bootstrap: str, group: str, topics: Sequence[str], timeout_s: float, workers: Sequence[WorkerProcess] = ()
) -> None:
    """Wait until ``group`` has committed, on every partition of ``topics``, the end offset measured
    now: every record written so far is processed, and its outputs are on their topics (Faust
    flushes the producer before it commits)."""
    tps = await partitions_of(bootstrap, topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()

    async def caught_up() -> bool:
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        # an empty partition has nothing to commit
        return all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items())

    try:
        await wait_until(caught_up, f"group {group} to commit {sorted(ends.items())}", timeout_s, workers)
    finally:
        await admin.close()
