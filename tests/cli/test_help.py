"""Every command's ``--help`` as a person reads it in an 80-column terminal: flags without a
``<bool>`` placeholder, usage lines without ``{name}`` placeholders, no raw backticks, and
environment defaults written one way (typer's ``[env var: …]``, never "default: $BURNGUARD_…" in
the text). The commands are found through the typer app, so a new one is covered without a
change here."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from burnguard.cli import app
from tests.streams.conftest import BURNGUARD

runner = CliRunner()


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``command`` (typer's own click classes), with its words."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


COMMANDS = list(command_paths(get_command(app)))


def test_every_command_is_walked() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "replay", "simulate", "worker", "alerter", "demo", "kill approve", "silence add"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "burnguard" for p, _ in COMMANDS])
def test_help_reads_well_in_80_columns(path: tuple[str, ...], command: Any) -> None:
    result = runner.invoke(app, [*path, "--help"], prog_name="burnguard", env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "<bool>" not in out, out  # a flag takes no value
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert not re.search(r"[{}]", usage), usage  # EVENTS, not {events}
    assert "`" not in out, out  # code spans are rendered, never shown as ``--to-kafka``
    assert "$BURNGUARD_" not in out, out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "burnguard" for p, _ in COMMANDS])
def test_environment_defaults_are_declared_never_written_in_the_text(
    path: tuple[str, ...], command: Any
) -> None:
    for param in command.params:
        if param.param_type_name != "option":
            continue
        text = param.help or ""
        assert "BURNGUARD_" not in text, f"{param.opts}: declare envvar= instead of writing {text!r}"
        assert not re.search(r"\bdefault\b", text, re.IGNORECASE), f"{param.opts}: use show_default= ({text!r})"


def test_version_prints_the_installed_version() -> None:
    done = subprocess.run([str(BURNGUARD), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"burnguard {version('burnguard')}\n"
