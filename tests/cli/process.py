"""The ``burnguard`` command run as a user runs it: a real process, its exit code, stdout and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import orjson

from tests.factory import task_events


def burnguard_cmd(*args: str) -> list[str]:
    """``python -m burnguard ARGS``, the same entry point as the ``burnguard`` console script."""
    return [sys.executable, "-m", "burnguard", *args]


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a user's shell: no BURNGUARD_* setting of the test run, 80 columns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BURNGUARD_")}
    env.update({"COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"})
    env.update(extra or {})
    return env


def run_burnguard(
    *args: str,
    cwd: Path,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        burnguard_cmd(*args), cwd=cwd, input=stdin, env=cli_env(env), capture_output=True, timeout=timeout
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The non-blank lines on stderr."""
    return [line for line in done.stderr.splitlines() if line.strip()]


def budget_events(path: Path, tasks: int = 3) -> Path:
    """Tasks that overrun their budget (each fires task_budget): a file of JSON lines at ``path``."""
    lines = [
        orjson.dumps(e)
        for n in range(tasks)
        for e in task_events(f"t{n}", 1_793_606_400.0 + 600 * n, steps=12, cost_per_step=0.1, budget_usd=1.0)
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
