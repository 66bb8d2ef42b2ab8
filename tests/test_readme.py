"""The README's pipeline walkthrough, run as it is written (issue 10, item 18).

The two shell blocks marked ``<!-- walkthrough: pipeline-start -->`` and ``pipeline-stop`` are read
from the README and typed into one bash, as a person pastes them, in a directory laid out like a
fresh clone (``scripts``, ``kafka`` and the bootstrapped ``.venv`` of this checkout): it starts its own
broker with ``scripts/kafka-local start``, writes ``my-config.yaml``, exports a kill key, starts the
worker and the alerter in the background and produces a simulated day. Between the blocks the test
waits, as the person would, until the walkthrough has done what the README says it does: the
alerter printed notifications, and the worker halted the sub-agent explosion in
``research-assistant`` with a signed kill command. Then the second block stops the jobs and the broker.
Every command must succeed (``bash -e``; ``kill %1 %2`` fails if a job has died), and nothing
prints a traceback or an ``error:``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from schemas.killswitch import KillCommand
from streams.killswitch_keys import ENV_KEYS
from tests.streams.conftest import read_all

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: the walkthrough's broker start (90 s at most), a simulated day produced at 2,000 events/s (46 s)
#: and the worker catching up, on a loaded machine
GATE_TIMEOUT_S = 600.0


def walkthrough(name: str) -> str:
    """The ``bash`` block under ``<!-- walkthrough: NAME -->`` in the README, as written."""
    found = re.findall(rf"<!-- walkthrough: {re.escape(name)} -->\n```bash\n(.*?)```", README.read_text(), re.S)
    assert len(found) == 1, f"the README has {len(found)} blocks marked walkthrough: {name}"
    return str(found[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Path]:
    """A directory laid out like the root of a fresh clone; its broker is stopped at the end whatever
    happened (``scripts/kafka-local`` keeps its state in ``.kafka`` there)."""
    root = tmp_path / "clone"
    root.mkdir()
    for name in ("scripts", "kafka", ".venv"):
        (root / name).symlink_to(REPO / name)
    yield root
    stop = ["scripts/kafka-local", "stop"]
    subprocess.run(stop, cwd=root, env=fresh_shell(tmp_path), capture_output=True, timeout=120)


def fresh_shell(tmp_path: Path) -> dict[str, str]:
    """A person's environment: nothing of burnguard's set. Temporary files go under ``tmp_path``
    (the worker's default data directory is in it), and the worker's web server gets a free port,
    so that another program holding 6066 on this machine cannot fail the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BURNGUARD_")}
    env.update({"TMPDIR": str(tmp_path), "BURNGUARD_WEB_PORT": str(free_port()), "COLUMNS": "100"})
    return env


async def kafka_records(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` so far (none while it does not exist), as JSON objects."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        exists = topic in await admin.list_topics()
    finally:
        await admin.close()
    return [orjson.loads(r.value) for r in await read_all(bootstrap, topic)] if exists else []


async def the_kill(bootstrap: str) -> KillCommand | None:
    """The signed command that halted a ``research-assistant`` runaway, once it is on the broker."""
    kills = {
        a["anomaly_id"]
        for a in await kafka_records(bootstrap, "burnguard.anomalies")
        if a["action"] == "kill" and a["status"] == "firing" and a["scope"].get("workflow") == "research-assistant"
    }
    commands = [KillCommand.model_validate(c) for c in await kafka_records(bootstrap, "burnguard.killswitch")]
    return next((c for c in commands if c.anomaly_id in kills and c.signature), None)


def test_the_pipeline_walkthrough_runs_as_written(clone: Path, tmp_path: Path) -> None:
    start, stop = walkthrough("pipeline-start"), walkthrough("pipeline-stop")
    keys_line = next(line for line in start.splitlines() if ENV_KEYS in line)
    assert keys_line in README.read_text().split("## The kill switch", 1)[1], "the kill switch section shows the key"
    log_path = tmp_path / "walkthrough.log"
    with log_path.open("wb") as log:
        bash = subprocess.Popen(
            ["bash", "-e"],
            cwd=clone,
            env=fresh_shell(tmp_path),
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the worker and the alerter are its jobs: one group to stop on failure
        )
        assert bash.stdin is not None
        try:
            bash.stdin.write(start.encode())
            bash.stdin.flush()
            wait_for_the_kill(clone, bash, log_path)
            bash.stdin.write(stop.encode())
            bash.stdin.close()
            code = bash.wait(timeout=180)
        finally:
            if bash.poll() is None:
                os.killpg(bash.pid, signal.SIGKILL)
                bash.wait()
    out = log_path.read_text(errors="replace")
    assert code == 0, f"the walkthrough stopped with exit status {code}:\n{out[-4000:]}"
    assert "Traceback" not in out and not re.search(r"^error:", out, re.M), out[-4000:]
    assert (clone / "my-config.yaml").is_file()
    assert "kafka-local: stopped" in out  # the second block stopped the broker the first one started


def wait_for_the_kill(clone: Path, bash: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until the alerter has printed notifications and the worker's signed kill of the
    ``research-assistant`` runaway is on the broker (what the README says the walkthrough does);
    fails at once if bash ends."""
    deadline = time.monotonic() + GATE_TIMEOUT_S
    port_file = clone / ".kafka" / "broker.port"
    while True:
        out = log_path.read_text(errors="replace")
        assert bash.poll() is None, f"the walkthrough ended early ({bash.returncode}):\n{out[-4000:]}"
        ready = port_file.is_file() and "would send" in out
        if ready and asyncio.run(the_kill(f"127.0.0.1:{port_file.read_text().strip()}")) is not None:
            return
        assert time.monotonic() < deadline, f"no kill of research-assistant within {GATE_TIMEOUT_S:g}s:\n{out[-4000:]}"
        time.sleep(2.0)
