"""No traceback ever reaches a user: every command, given the inputs people get wrong, says what is
wrong in one line on stderr and exits 2 (usage) or 1 (failure), as a real process."""

from __future__ import annotations

import gzip
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli.process import budget_events, cli_env, error_lines, run_burnguard

_BINARY = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    says: str
    env: dict[str, str] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "replay over its input": Case(("replay", "events.jsonl", "--out", "events.jsonl"), 2, "--out events.jsonl"),
    "replay dlq over its input": Case(("replay", "events.jsonl", "--out", "a", "--dlq", "events.jsonl"), 2, "--dlq"),
    "replay out over its config": Case(
        ("replay", "events.jsonl", "--out", "cfg.yaml", "-c", "cfg.yaml"), 2, "--out cfg.yaml is the input file"
    ),
    "replay out in no directory": Case(("replay", "events.jsonl", "--out", "no/such/a.jsonl"), 2, "does not exist"),
    "replay out under a file": Case(("replay", "events.jsonl", "--out", "events.jsonl/a"), 2, "not a directory"),
    "replay out a directory": Case(("replay", "events.jsonl", "--out", "sub"), 2, "is a directory"),
    "replay a directory": Case(("replay", "sub", "--out", "a.jsonl"), 2, "is a directory"),
    "replay a missing file": Case(("replay", "nope.jsonl", "--out", "a.jsonl"), 2, "no such file"),
    "replay a truncated gzip": Case(("replay", "cut.jsonl.gz", "--out", "a.jsonl"), 1, "ends early"),
    "replay a binary file": Case(("replay", "binary.bin", "--out", "a.jsonl"), 1, "binary data"),
    "replay an empty file": Case(("replay", "empty.jsonl", "--out", "a.jsonl"), 1, "no events"),
    "replay a binary config": Case(("replay", "events.jsonl", "--out", "a", "-c", "binary.bin"), 2, "not a YAML file"),
    "simulate without --out": Case(("simulate",), 2, "--out FILE"),
    "simulate out in no directory": Case(("simulate", "--out", "no/such/f.jsonl"), 2, "does not exist"),
    "simulate out under a file": Case(("simulate", "--out", "events.jsonl/f.jsonl"), 2, "not a directory"),
    "simulate 6 hours": Case(("simulate", "--hours", "6", "--out", "f.jsonl"), 2, "at least 22 simulated hours"),
    "simulate 0 hours": Case(("simulate", "--hours", "0", "--out", "f.jsonl"), 2, "above 0"),
    "simulate scale 0": Case(("simulate", "--scale", "0", "--out", "f.jsonl"), 2, "above 0"),
    "simulate hours not a number": Case(("simulate", "--hours", "abc", "--out", "f.jsonl"), 2, "'--hours'"),
    "demo an unknown option": Case(("demo", "--scale", "0"), 2, "No such option: --scale"),
    "replay without its argument": Case(("replay",), 2, "Missing argument"),
    "an unknown command": Case(("nope",), 2, "No such command 'nope'"),
    "demo 6 hours": Case(("demo", "--hours", "6"), 2, "at least 22 simulated hours"),
    "demo 0 hours": Case(("demo", "--hours", "0"), 2, "above 0"),
    "demo out in no directory": Case(("demo", "--out", "no/such/a.jsonl"), 2, "does not exist"),
    "demo out a directory": Case(("demo", "--out", "sub"), 2, "is a directory"),
    "schema export to a file": Case(("schema", "export", "--out", "events.jsonl"), 2, "is a file"),
    "schema export under a file": Case(("schema", "export", "--out", "events.jsonl/schema"), 2, "is a file"),
    "config validate a binary": Case(("config", "validate", "binary.bin"), 1, "not a YAML file"),
    "config show a binary": Case(("config", "show", "--config", "binary.bin"), 2, "not a YAML file"),
    "silence add to a corrupt file": Case(
        ("silence", "add", "-m", "team=a", "--file", "corrupt.json"), 1, "not valid JSON"
    ),
    "silence list a corrupt file": Case(("silence", "list", "--file", "corrupt.json"), 1, "not valid JSON"),
    "silence expire in a corrupt file": Case(
        ("silence", "expire", "abc", "--file", "corrupt.json"), 1, "not valid JSON"
    ),
    "silence list a binary file": Case(("silence", "list", "--file", "binary.bin"), 1, "not text"),
    "silence add under a file": Case(
        ("silence", "add", "-m", "team=a", "--file", "events.jsonl/s.json"), 1, "cannot write"
    ),
    "alerter with a corrupt silences file": Case(("alerter", "--silences", "corrupt.json"), 2, "not valid JSON"),
    "kill list without a broker": Case(
        ("kill", "list"), 1, "cannot reach Kafka", {"BURNGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    ),
    "worker with a bad setting": Case(("worker",), 2, "BURNGUARD_PARTITIONS", {"BURNGUARD_PARTITIONS": "abc"}),
    "alerter with a bad setting": Case(("alerter",), 2, "BURNGUARD_PARTITIONS", {"BURNGUARD_PARTITIONS": "abc"}),
}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    budget_events(tmp_path / "events.jsonl")
    whole = gzip.compress((tmp_path / "events.jsonl").read_bytes() * 50)
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "binary.bin").write_bytes(_BINARY)
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "corrupt.json").write_text('[{"silence_id": "abc", ')
    (tmp_path / "sub").mkdir()
    (tmp_path / "cfg.yaml").write_text("version: test\n")
    return tmp_path


@pytest.mark.parametrize("name", list(CASES))
def test_every_command_says_what_is_wrong_without_a_traceback(workdir: Path, name: str) -> None:
    case = CASES[name]
    done = run_burnguard(*case.args, cwd=workdir, env=case.env)
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "╭" not in output, output  # neither Python's nor Rich's
    assert done.returncode == case.code, output
    assert case.says in " ".join(done.stderr.split()), done.stderr
    assert len(error_lines(done)) == 1, done.stderr
    assert error_lines(done)[0].startswith("error: "), done.stderr


def test_an_unexpected_error_is_one_line_asking_for_a_report_and_debug_shows_the_traceback(workdir: Path) -> None:
    # a bug stands in for every bug: replay's engine raising where nothing expects it
    boom = "import burnguard.replay as r; r.replay_file = lambda *a, **k: 1 / 0; from burnguard.cli import main; main()"
    args = [sys.executable, "-c", boom, "replay", "events.jsonl", "--out", "a.jsonl"]
    done = subprocess.run(args, cwd=workdir, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done
    [line] = [x for x in done.stderr.splitlines() if x.strip()]
    assert line.startswith("error: unexpected ZeroDivisionError: division by zero;") and "report" in line, line
    assert "BURNGUARD_DEBUG=1" in line
    debug = subprocess.run(
        args, cwd=workdir, env=cli_env({"BURNGUARD_DEBUG": "1"}), capture_output=True, text=True, timeout=300
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ZeroDivisionError" in debug.stderr
    assert not (workdir / "a.jsonl").exists()  # the failed run left no output


_INTERRUPTED_IN_A_SERIALIZER = '''
import os, signal
from pydantic import BaseModel, field_serializer
from burnguard.commands.entry import BurnguardApp

app = BurnguardApp(add_completion=False)


class Row(BaseModel):
    ts: float

    @field_serializer("ts")
    def _format_time(self, ts: float) -> str:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, while pydantic-core runs this
        return str(ts)


@app.command()
def write() -> None:
    Row(ts=1.0).model_dump_json()


@app.command()
def other() -> None:
    pass


app()
'''


def test_ctrl_c_inside_a_pydantic_serializer_is_an_interruption_not_a_bug(tmp_path: Path) -> None:
    """pydantic-core reports a KeyboardInterrupt raised in a serializer as PydanticSerializationError
    (seen once in `replay --out` interrupted by Ctrl-C): the entry point knows a SIGINT arrived."""
    script = tmp_path / "interrupted.py"
    script.write_text(_INTERRUPTED_IN_A_SERIALIZER)
    done = subprocess.run([sys.executable, str(script), "write"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done
    assert [x for x in done.stderr.splitlines() + done.stdout.splitlines() if x.strip()] == ["interrupted"]
