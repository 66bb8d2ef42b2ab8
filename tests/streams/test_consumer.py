"""The seek-safe consumer (streams.consumer) against the real broker: a worker whose partitions are
sought back to their committed offsets several times a second while it reads — the situation of
every rebalance's recovery, where Faust 0.15.3 delivered records fetched before the seek after it,
then dropped the re-read (faust-streaming#221) — is given every record, each partition in offset
order between two seeks, and commits the end of the topic."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.streams.conftest import REPO, Names, partitions_of, produce, wait_drained, wait_until

pytestmark = pytest.mark.kafka
RECORDS = 3_000


def deliveries(path: Path) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = {}
    for line in path.read_text().splitlines():
        p, o = line.split()
        seen.setdefault(int(p), []).append(int(o))
    return seen


async def test_records_survive_a_storm_of_seeks(names: Names, tmp_path: Path) -> None:
    topic = names.events
    admin = AIOKafkaAdminClient(bootstrap_servers=names.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    out = tmp_path / "seen.txt"
    out.touch()
    env = {
        "PATH": "/usr/bin:/bin",
        "SEEK_PLAIN": os.environ.get("SEEK_PLAIN", ""),  # 1: Faust's own consumer, to see it fail
        "SEEK_BOOTSTRAP": names.bootstrap,
        "SEEK_APP_ID": names.app_id,
        "SEEK_TOPIC": topic,
        "SEEK_OUT": str(out),
        "SEEK_DATADIR": str(tmp_path / "faust-data"),
    }
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.streams.seek_storm_app", "worker", "-l", "info"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await produce(names.bootstrap, topic, [(str(i % 97).encode(), b"x" * 100) for i in range(RECORDS)])
        tps = await partitions_of(names.bootstrap, [topic])
        ends = {tp.partition: 0 for tp in tps}

        async def all_seen() -> bool:
            seen = deliveries(out)
            return sum(len(set(v)) for v in seen.values()) >= RECORDS

        await wait_until(all_seen, f"all {RECORDS} records given to the agent", 120)
        await wait_drained(names.bootstrap, names.app_id, [topic], 60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    seen = deliveries(out)
    for p, offsets in seen.items():
        ends[p] = max(ends.get(p, 0), max(offsets) + 1)
        assert sorted(set(offsets)) == list(range(ends[p])), f"partition {p}: records never given to the agent"
        # in offset order between two seeks: a step forward is always +1; a step back is a seek's re-read
        jumps = [(a, b) for a, b in itertools.pairwise(offsets) if b > a + 1]
        assert not jumps, f"partition {p}: records given out of order (stale, fetched before a seek): {jumps[:5]}"
    assert sum(ends.values()) == RECORDS
    text = (tmp_path / "worker.log").read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
