"""burnguard.files: bounded line reading, gzip on files and stdin, atomic outputs, collisions."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
from pathlib import Path

import pytest

from burnguard.files import (
    InputError,
    Oversized,
    UsageError,
    atomic_output,
    check_output,
    open_input,
    read_lines,
    refuse_collisions,
)


def _lines(data: bytes, limit: int) -> list[bytes | Oversized]:
    return list(read_lines(io.BufferedReader(io.BytesIO(data)), name="t", limit=limit))


def test_a_line_over_the_limit_comes_back_as_its_prefix_size_and_hash_and_the_next_line_is_read() -> None:
    big = b"{" + b"x" * 5000 + b"}"
    got = _lines(b'{"a":1}\n' + big + b'\n{"b":2}\n' + b"y" * 1024, limit=1024)
    assert got[0] == b'{"a":1}\n' and got[2] == b'{"b":2}\n'
    over = got[1]
    assert isinstance(over, Oversized)
    assert over.size == len(big) and over.sha256 == hashlib.sha256(big).hexdigest()
    assert big.startswith(over.prefix) and len(over.prefix) <= 1025
    assert got[3] == b"y" * 1024  # exactly the limit, no newline: whole


def test_a_line_of_exactly_the_limit_with_its_newline_is_whole() -> None:
    assert _lines(b"z" * 100 + b"\n", limit=100) == [b"z" * 100 + b"\n"]
    assert isinstance(_lines(b"z" * 101 + b"\n", limit=100)[0], Oversized)


def test_gzip_is_told_by_its_magic_bytes_not_its_name(tmp_path: Path) -> None:
    packed = tmp_path / "events.jsonl"  # no .gz
    packed.write_bytes(gzip.compress(b'{"a":1}\n{"b":2}\n'))
    with open_input(packed) as stream:
        assert list(read_lines(stream, name="x")) == [b'{"a":1}\n', b'{"b":2}\n']


def test_a_truncated_archive_says_it_ends_early_after_the_last_complete_line(tmp_path: Path) -> None:
    lines = [b'{"n": %d, "pad": "%s"}\n' % (n, os.urandom(40).hex().encode()) for n in range(20_000)]
    whole = gzip.compress(b"".join(lines))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    read: list[bytes | Oversized] = []
    with pytest.raises(InputError) as caught, open_input(cut) as stream:
        read.extend(read_lines(stream, name=str(cut)))
    message = str(caught.value)
    found = re.search(r"the gzip archive ends early, after line ([\d,]+)", message)
    assert found, message
    complete = sum(1 for line in read if isinstance(line, bytes) and line.endswith(b"\n"))
    assert int(found.group(1).replace(",", "")) == complete
    assert 0 < complete < len(lines) and "\n" not in message


@pytest.mark.parametrize("kind", ["directory", "missing"])
def test_an_input_that_is_a_directory_or_missing_says_which(tmp_path: Path, kind: str) -> None:
    path = tmp_path if kind == "directory" else tmp_path / "nope.jsonl"
    with pytest.raises(UsageError, match="is a directory" if kind == "directory" else "no such file"):
        open_input(path)


def test_atomic_output_replaces_the_file_only_when_the_block_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"previous\n")
    target.chmod(0o640)
    for failure in (RuntimeError("disk on fire"), KeyboardInterrupt()):
        with pytest.raises(type(failure)), atomic_output(target) as fh:
            fh.write(b"half of the new")
            raise failure
        assert target.read_bytes() == b"previous\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no temporary file left
    with atomic_output(target) as fh:
        fh.write(b"new\n")
    assert target.read_bytes() == b"new\n"
    assert target.stat().st_mode & 0o777 == 0o640  # the replaced file's permissions are kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_refuse_collisions_sees_the_same_file_by_path_symlink_and_hard_link(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"{}\n")
    (tmp_path / "link.jsonl").symlink_to(source)
    os.link(source, tmp_path / "hard.jsonl")
    for same in (source, tmp_path / "link.jsonl", tmp_path / "hard.jsonl", tmp_path / "sub" / ".." / "in.jsonl"):
        with pytest.raises(UsageError, match=r"^--dlq .* is the input file"):
            refuse_collisions({"--out": tmp_path / "fine.jsonl", "--dlq": same}, [source])
    with pytest.raises(UsageError, match="--dlq and --out name the same file"):
        refuse_collisions({"--out": tmp_path / "a.jsonl", "--dlq": tmp_path / "a.jsonl"}, [source])
    with pytest.raises(UsageError, match="both write to standard output"):
        refuse_collisions({"--out": "-", "--dlq": "-"}, ["-"])
    refuse_collisions({"--out": tmp_path / "new.jsonl", "--dlq": "-"}, [source, "-"])  # nothing raised


def test_check_output_refuses_impossible_places(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for path, why in (
        (tmp_path, "is a directory"),
        (tmp_path / "no" / "such" / "o.jsonl", "does not exist"),
        (tmp_path / "file" / "o.jsonl", "is not a directory"),
    ):
        with pytest.raises(UsageError, match=why):
            check_output("--out", path)
    check_output("--out", tmp_path / "o.jsonl")
    check_output("--out", "-")


def test_atomic_output_writes_devices_directly_and_keeps_a_symlink(tmp_path: Path) -> None:
    with atomic_output("/dev/null") as fh:
        fh.write(b"discarded")
    assert Path("/dev/null").is_char_device()  # written to, never replaced by a file
    real = tmp_path / "real.jsonl"
    real.write_bytes(b"old\n")
    (tmp_path / "link.jsonl").symlink_to(real)
    with atomic_output(tmp_path / "link.jsonl") as fh:
        fh.write(b"new\n")
    assert (tmp_path / "link.jsonl").is_symlink() and real.read_bytes() == b"new\n"
