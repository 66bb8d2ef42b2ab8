"""The on-call commands when the broker does not answer: one line saying where and what to do."""

from __future__ import annotations

import subprocess

import pytest

from tests.streams.conftest import BURNGUARD, REPO


@pytest.mark.parametrize(
    "args",
    [["kill", "list"], ["kill", "show", "kill-9a28c399"], ["silence", "list"], ["silence", "add", "-m", "workflow=w"]],
)
def test_an_unreachable_broker_is_one_error_that_says_what_to_do(args: list[str]) -> None:
    done = subprocess.run(
        [str(BURNGUARD), *args],
        env={"PATH": "/usr/bin:/bin", "BURNGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:1", "COLUMNS": "200"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    said = " ".join(done.stderr.split())  # the console's soft wraps undone: one message
    assert said.startswith("error: cannot reach Kafka at 127.0.0.1:1") and "Start a broker" in said
    assert said.count("error:") == 1 and "Unable connect" not in said and "Traceback" not in said
    assert done.stdout == ""
