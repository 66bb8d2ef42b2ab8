"""``burnguard silence`` as a user runs it, offline (``--file``); the Kafka side is
tests/streams/test_alerter_silences_kafka.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerting.silences import SilenceStore
from burnguard.cli import app

#: neither a broker nor a silences file from the environment of the test run
NO_STORE = {"BURNGUARD_KAFKA_BOOTSTRAP": "", "BURNGUARD_SILENCES": None}


def said(text: str) -> str:
    """What the console printed, its soft wraps undone."""
    return " ".join(text.split())


def test_silence_add_list_expire(tmp_path: Path) -> None:
    runner = CliRunner()
    file = str(tmp_path / "silences.json")
    added = runner.invoke(
        app,
        [
            "silence",
            "add",
            "-m",
            "workflow=support-triage",
            "--match-re",
            "severity=warning|info",
            "--duration",
            "30m",
            "--by",
            "ana",
            "--comment",
            "deploy",
            "--file",
            file,
        ],
        env=NO_STORE,
    )
    assert added.exit_code == 0, added.output
    silence_id = added.stdout.strip()
    (silence,) = SilenceStore(file).silences.values()
    assert silence.silence_id == silence_id and silence.ends_at - silence.starts_at == 1800
    assert f"--silences {file} obeys it" in said(added.stderr)  # says who obeys a file
    listed = runner.invoke(app, ["silence", "list", "--file", file], env=NO_STORE)
    assert silence_id in listed.stdout and "workflow=support-triage" in listed.stdout
    assert runner.invoke(app, ["silence", "expire", silence_id, "--file", file], env=NO_STORE).exit_code == 0
    assert silence_id not in runner.invoke(app, ["silence", "list", "--file", file], env=NO_STORE).stdout
    assert runner.invoke(app, ["silence", "expire", "nope", "--file", file], env=NO_STORE).exit_code == 1
    bad = runner.invoke(app, ["silence", "add", "-m", "wrkflow=x", "--file", file], env=NO_STORE)
    assert bad.exit_code == 2 and "unknown label wrkflow: the labels are tenant, team" in bad.output


def test_without_a_broker_or_a_file_silence_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # today's default file would land here, where no alerter reads it
    for args in (["add", "-m", "workflow=w"], ["list"], ["expire", "abc"]):
        done = CliRunner().invoke(app, ["silence", *args], env=NO_STORE)
        assert done.exit_code == 2, done.output
        line = said(done.stderr)
        assert line.startswith("error: no broker and no silences file: set BURNGUARD_KAFKA_BOOTSTRAP")
        assert "--file FILE" in line and line.count("error:") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        (["-m", "severity=high"], "severity=high can never match: severity is one of info, warning, critical"),
        (["-m", "action=page"], "action=page can never match: action is one of none, alert, kill"),
        (["-m", "status=open"], "status=open can never match: status is one of firing, resolved"),
        (["-m", "detector=runaway"], "detector=runaway can never match: detector is one of task_budget, runaway_task"),
        (["--match-re", "severity=high|urgent"], "severity=~high|urgent can never match: severity is one of info"),
        (["--match-re", "workflow=(["], "workflow=~([ is not a regular expression"),
        (["--match-re", "severity"], "--match-re 'severity': write LABEL=VALUE"),
    ],
)
def test_a_matcher_that_can_never_match_is_refused_in_one_sentence(
    tmp_path: Path, matcher: list[str], expected: str
) -> None:
    file = tmp_path / "silences.json"
    done = CliRunner().invoke(app, ["silence", "add", *matcher, "--file", str(file)], env=NO_STORE)
    assert done.exit_code == 2, done.output
    line = said(done.stderr)
    assert expected in line and line.count("error:") == 1
    assert "pydantic" not in line and "https://" not in line and "Value error" not in line
    assert not file.exists()


def test_a_matcher_that_can_match_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "silences.json"
    for matcher in (["-m", "severity=warning"], ["--match-re", "severity=warn.*"], ["-m", "detector=burn_rate"]):
        done = CliRunner().invoke(app, ["silence", "add", *matcher, "--file", str(file)], env=NO_STORE)
        assert done.exit_code == 0, done.output
    assert len(SilenceStore(file).silences) == 3


def test_a_damaged_silences_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    file = tmp_path / "silences.json"
    file.write_text("{not json")
    for args in (["list"], ["add", "-m", "workflow=w"], ["expire", "abc"]):
        done = CliRunner().invoke(app, ["silence", *args, "--file", str(file)], env=NO_STORE)
        assert done.exit_code == 1, done.output
        line = said(done.stderr)
        assert f"silences file {file} is not valid JSON (line 1, column 2:" in line
        assert line.endswith("fix or remove it (burnguard silence add writes a new one)")
        assert isinstance(done.exception, SystemExit) and "Traceback" not in done.output


def test_an_alerter_given_a_damaged_silences_file_stops_with_one_line(tmp_path: Path) -> None:
    file = tmp_path / "silences.json"
    file.write_text('[{"matchers": {}}]')
    done = CliRunner().invoke(app, ["alerter", "--silences", str(file)], env=NO_STORE)
    assert done.exit_code == 2, done.output
    line = said(done.stderr)
    assert line == (
        f"error: silences file {file}: silence #1 is invalid (starts_at: Field required); "
        "fix or remove it (burnguard silence add writes a new one)"
    )


def test_silence_list_is_one_line_per_silence_at_80_and_120_columns(tmp_path: Path) -> None:
    file = str(tmp_path / "silences.json")
    comment = "deploy of the new retriever, expect retries while the index warms up; ask ana before extending"
    ids = []
    workflows = ("support-triage", "research-assistant-long-name", "sql-analyst")
    for workflow in workflows:
        args = ["silence", "add", "-m", f"workflow={workflow}", "--match-re", "severity=warning|info"]
        added = CliRunner().invoke(app, [*args, "--by", "ana", "--comment", comment, "--file", file], env=NO_STORE)
        ids.append(added.stdout.strip())
    for columns in (80, 120):
        listed = CliRunner().invoke(app, ["silence", "list", "--file", file], env={**NO_STORE, "COLUMNS": str(columns)})
        lines = listed.stdout.splitlines()
        assert len(lines) == 1 + len(ids) and all(len(line) <= columns for line in lines), lines
        assert [line.split()[0] for line in lines[1:]] == ids  # whole, copyable into `silence expire`
        assert all("severity=~warning|info" in line for line in lines[1:]) or columns == 80
        assert all(f"workflow={w}" in line for w, line in zip(workflows, lines[1:], strict=True)) or columns == 80


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "error: a silence needs at least one matcher (it would mute everything)"),
        (["-m", "workflow=w", "--duration", "0"], "error: --duration: '0' is no time: a silence lasts more than 0"),
        (["-m", "workflow=w", "--duration", "soon"], "error: --duration: not a duration: 'soon'"),
    ],
)
def test_a_silence_that_would_mute_everything_or_nothing_is_refused(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    file = tmp_path / "silences.json"
    done = CliRunner().invoke(app, ["silence", "add", *args, "--file", str(file)], env=NO_STORE)
    assert done.exit_code == 2 and said(done.stderr).startswith(expected), done.output
    assert not file.exists()
