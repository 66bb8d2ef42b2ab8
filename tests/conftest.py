"""What every test run shares: the guard that a run leaves nothing behind in the repository.

Tests write into pytest's ``tmp_path`` only. A file or directory the run adds to the checkout —
ignored by git or not, empty or not (an empty ``bgtest-…-data/`` made by a Faust app in the working
directory was one) — fails the run at its end, named. Tool caches are the exception."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: what tools, not tests, put in a checkout while tests run
TOOL_CACHES = ("__pycache__/", ".pytest_cache/", ".hypothesis/", ".mypy_cache/", ".ruff_cache/")


def left_in_repository() -> set[str]:
    """Every path in the checkout that git does not track (ignored ones too), directories once,
    empty directories included; tool caches left out."""
    listed: list[str] = []
    for which in ([], ["--ignored"]):  # untracked, then ignored (--ignored lists those only)
        listed += subprocess.run(
            ["git", "ls-files", "--others", *which, "--exclude-standard", "--directory"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.splitlines()
    return {p for p in listed if not any(p == c or p.endswith("/" + c) for c in TOOL_CACHES)}


@pytest.fixture(scope="session", autouse=True)
def repository_left_as_found() -> Iterator[None]:
    if not (REPO / ".git").exists():  # not a checkout (an unpacked archive): nothing to compare with
        yield
        return
    before = left_in_repository()
    yield
    added = sorted(left_in_repository() - before)
    if added:
        pytest.fail(
            f"the tests left {len(added)} path(s) in the repository: {', '.join(added)} "
            "(write them under tmp_path)",
            pytrace=False,
        )
