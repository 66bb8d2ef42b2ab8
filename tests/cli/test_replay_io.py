"""``burnguard replay`` (and its siblings) as a user runs it: inputs never overwritten, outputs
atomic, gzip anywhere, bad files named, a huge line in bounded memory, ``--out -``."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.cli.process import budget_events, burnguard_cmd, cli_env, error_lines, run_burnguard


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize(
    ("option", "target"),
    [
        ("--out", "same"),
        ("--dlq", "same"),
        ("--out", "symlink"),
        ("--dlq", "hard link"),
        ("--out", "same gzip"),
        ("--out", "relative"),
    ],
)
def test_no_output_may_overwrite_the_input(tmp_path: Path, option: str, target: str) -> None:
    events = budget_events(tmp_path / "events.jsonl")
    if target == "same gzip":
        events = tmp_path / "events.jsonl.gz"
        events.write_bytes(gzip.compress((tmp_path / "events.jsonl").read_bytes()))
    before = events.read_bytes()
    path = {
        "same": str(events),
        "same gzip": str(events),
        "relative": f"./{events.name}",
        "symlink": str(tmp_path / "link.jsonl"),
        "hard link": str(tmp_path / "hard.jsonl"),
    }[target]
    if target == "symlink":
        (tmp_path / "link.jsonl").symlink_to(events)
    if target == "hard link":
        os.link(events, tmp_path / "hard.jsonl")
    other = "--dlq" if option == "--out" else "--out"
    done = run_burnguard("replay", str(events), option, path, other, str(tmp_path / "other.jsonl"), cwd=tmp_path)
    assert done.returncode == 2, done
    assert events.read_bytes() == before  # nothing lost
    [line] = error_lines(done)
    assert line.startswith(f"error: {option} ") and "is the input file" in line, line
    assert "other.jsonl" not in _files(tmp_path)  # refused before anything was written


def test_a_truncated_archive_says_so_exits_1_and_leaves_the_previous_output(tmp_path: Path) -> None:
    budget_events(tmp_path / "events.jsonl", tasks=400)
    whole = gzip.compress((tmp_path / "events.jsonl").read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    out, dlq = tmp_path / "anomalies.jsonl", tmp_path / "dlq.jsonl"
    out.write_bytes(b"previous run\n")
    done = run_burnguard("replay", str(cut), "--out", str(out), "--dlq", str(dlq), cwd=tmp_path)
    assert done.returncode == 1, done
    [line] = error_lines(done)
    assert "the gzip archive ends early, after line" in line and "Aborted" not in done.stderr, line
    assert out.read_bytes() == b"previous run\n"  # the previous file, never a half-written one
    assert not dlq.exists()
    assert _files(tmp_path) == ["anomalies.jsonl", "cut.jsonl.gz", "events.jsonl"]  # no temporary file


def test_gzip_on_stdin_is_decompressed_and_out_dash_writes_anomalies_to_stdout(tmp_path: Path) -> None:
    events = budget_events(tmp_path / "events.jsonl")
    from_file = run_burnguard("replay", str(events), "--out", "a.jsonl", "-q", cwd=tmp_path)
    assert from_file.returncode == 0, from_file
    expected = [orjson.loads(x)["anomaly_id"] for x in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    assert expected
    done = run_burnguard("replay", "-", "--out", "-", cwd=tmp_path, stdin=gzip.compress(events.read_bytes()))
    assert done.returncode == 0, done
    assert [orjson.loads(x)["anomaly_id"] for x in done.stdout.splitlines()] == expected  # only anomalies
    assert "events accepted" in done.stderr  # the summary goes to stderr


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"id,ts,cost_usd\n1,2026-11-02T10:00:00Z,0.5\n2,2026-11-02T10:01:00Z,0.7\n", "it looks like CSV"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 40, "it looks like binary data"),
        (b'[{"event_id": "e1"}]\n', "it looks like a JSON array"),
        (b"", "no events"),
        (b"\n\n  \n", "no events"),
    ],
    ids=["csv", "binary", "json-array", "empty", "blank"],
)
def test_a_file_with_no_cost_event_says_what_it_looks_like_and_exits_1(
    tmp_path: Path, content: bytes, says: str
) -> None:
    bad = tmp_path / "input.jsonl"
    bad.write_bytes(content)
    done = run_burnguard("replay", str(bad), "--out", "a.jsonl", "--dlq", "d.jsonl", cwd=tmp_path)
    assert done.returncode == 1, done
    [line] = error_lines(done)
    assert says in line, line
    assert (tmp_path / "a.jsonl").read_bytes() == b""  # read through: the (empty) result is written
    letters = [orjson.loads(x) for x in (tmp_path / "d.jsonl").read_bytes().splitlines()]
    assert all(x["reason"].startswith("not a JSON object (starts with") for x in letters)


def test_every_line_rejected_exits_1_and_keeps_the_dead_letters(tmp_path: Path) -> None:
    bad = tmp_path / "input.jsonl"
    bad.write_bytes(b'{"event_id": "e1"}\n{"event_id": "e2", "kind": "step"}\n')
    done = run_burnguard("replay", str(bad), "--out", "a.jsonl", "--dlq", "d.jsonl", "-q", cwd=tmp_path)
    assert done.returncode == 1, done
    [line] = error_lines(done)
    assert "every line (2) was rejected" in line and "d.jsonl" in line, line
    assert [orjson.loads(x)["line"] for x in (tmp_path / "d.jsonl").read_bytes().splitlines()] == [1, 2]


def test_a_directory_is_a_directory_not_a_missing_file(tmp_path: Path) -> None:
    done = run_burnguard("replay", str(tmp_path), "--out", "a.jsonl", cwd=tmp_path)
    assert done.returncode == 2, done
    [line] = error_lines(done)
    assert "is a directory" in line and "no such file" not in line, line


def test_a_200_mb_line_is_rejected_in_bounded_memory_with_prefix_size_and_hash(tmp_path: Path) -> None:
    huge = b'{"event_id": "e1", "attributes": {"blob": "' + b"x" * (200 * 1024 * 1024) + b'"}}'
    events = budget_events(tmp_path / "events.jsonl", tasks=1)
    with events.open("ab") as fh:
        fh.write(huge + b"\n")
    sha = hashlib.sha256(huge).hexdigest()
    size = len(huge)
    del huge
    # a fresh parent whose only child is the replay: its RUSAGE_CHILDREN peak is the replay's
    measure = (
        "import resource, subprocess, sys; "
        "rc = subprocess.run(sys.argv[1:]).returncode; "
        "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", measure, *burnguard_cmd("replay", str(events), "--out", "a.jsonl", "--dlq", "d.jsonl")],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    rc, peak_kib = (int(x) for x in done.stdout.split()[-2:])
    assert rc == 0, done  # the other lines are cost events
    assert peak_kib < 150 * 1024, f"peak {peak_kib / 1024:.0f} MiB"  # the line alone is 200 MiB
    [letter] = [orjson.loads(x) for x in (tmp_path / "d.jsonl").read_bytes().splitlines()]
    assert letter["value_bytes"] == size and letter["value_sha256"] == sha and letter["value_truncated"] is True
    assert 0 < len(letter["raw"].encode()) <= 8192 and letter["raw"].startswith('{"event_id": "e1"')
    assert letter["reason"] == f"line is {size:,} bytes, over the 262,144-byte limit of a cost event"


def test_ctrl_c_exits_130_with_one_line_and_leaves_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "anomalies.jsonl"
    out.write_bytes(b"previous run\n")
    proc = subprocess.Popen(
        burnguard_cmd("replay", "-", "--out", str(out)),
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(budget_events(tmp_path / "events.jsonl").read_bytes())
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):  # the replay is writing
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    lines = [x for x in stderr.decode().splitlines() if x.strip()]
    assert lines == ["interrupted"], stderr
    assert out.read_bytes() == b"previous run\n"
    assert _files(tmp_path) == ["anomalies.jsonl", "events.jsonl"]


def test_simulate_writes_atomically_gzip_by_name_and_to_stdout(tmp_path: Path) -> None:
    done = run_burnguard("simulate", "--hours", "1", "--no-incidents", "--out", "fleet.jsonl.gz", cwd=tmp_path)
    assert done.returncode == 0, done
    packed = gzip.decompress((tmp_path / "fleet.jsonl.gz").read_bytes()).splitlines()
    to_stdout = run_burnguard("simulate", "--hours", "1", "--no-incidents", "--out", "-", cwd=tmp_path)
    assert to_stdout.returncode == 0, to_stdout
    assert to_stdout.stdout.encode().splitlines() == packed and packed
    assert json.loads(packed[0])["schema"] == "burnguard.cost_event/1"
    assert _files(tmp_path) == ["fleet.jsonl.gz"]


def test_demo_out_dash_writes_only_anomalies_to_stdout_and_the_screen_to_stderr(tmp_path: Path) -> None:
    done = run_burnguard("demo", "--pace", "0", "--hours", "22", "--out", "-", cwd=tmp_path)
    assert done.returncode in (0, 1), done  # 1: the scorecard's verdict on a short fleet, not an error
    anomalies = [json.loads(line) for line in done.stdout.splitlines()]
    assert anomalies and all(a["schema"] == "burnguard.anomaly/1" for a in anomalies)
    assert "anomalies written to standard output" in done.stderr and "burnguard demo" in done.stderr
    assert _files(tmp_path) == []
