"""Files the command line reads and writes, so that no command loses data or shows a traceback.

- :func:`open_input` opens a file or ``-`` (standard input), gzip-compressed or not (told by the
  gzip magic bytes, on files and on standard input alike);
- :func:`read_lines` reads it line by line, never holding more than ``limit`` bytes of one line: a
  longer line is read through in chunks while it is hashed, and comes back as :class:`Oversized`;
  an archive that ends early raises :class:`InputError` naming the last complete line;
- :func:`atomic_output` writes a file through a temporary file beside it, renamed over the target
  only when the writing succeeded (``-`` is standard output);
- :func:`check_output` and :func:`refuse_collisions` refuse, before anything is read or written,
  an output that cannot be written or that would overwrite an input (same path, symlink or hard
  link).

Errors are :class:`UsageError` (the command line names impossible files: exit 2) and
:class:`InputError` (an input that cannot be read through: exit 1), each with a one-line message.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "STDIO",
    "InputError",
    "Oversized",
    "UsageError",
    "atomic_output",
    "check_input",
    "check_output",
    "check_output_dir",
    "display_name",
    "is_stdio",
    "open_input",
    "read_lines",
    "refuse_collisions",
]

#: the longest line (bytes, newline excluded) read whole: the pipeline's default
#: ``BURNGUARD_MAX_EVENT_BYTES`` (streams/settings.py), no valid cost event comes near it
DEFAULT_MAX_LINE_BYTES = 256 * 1024
#: the name of standard input or output on the command line
STDIO = "-"
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1024 * 1024  # bytes read at a time through an oversized line


class UsageError(Exception):
    """The command line names files that cannot be used (exit 2); the message is one line."""


class InputError(Exception):
    """An input that cannot be read through (exit 1); the message is one line."""


@dataclass(frozen=True, slots=True)
class Oversized:
    """A line longer than the limit: its first bytes (at most the limit), its size and SHA-256."""

    prefix: bytes
    size: int
    sha256: str


def is_stdio(path: str | os.PathLike[str] | None) -> bool:
    return path is not None and os.fspath(path) == STDIO


def display_name(path: str | os.PathLike[str]) -> str:
    return "standard input" if is_stdio(path) else os.fspath(path)


def check_input(path: str | os.PathLike[str]) -> None:
    """Raise :class:`UsageError` unless ``path`` is ``-`` or a readable file."""
    if is_stdio(path):
        return
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{p} is a directory: give a file of JSON lines (or - for standard input)")
    if not p.exists():
        raise UsageError(f"no such file: {p}")
    if not os.access(p, os.R_OK):
        raise UsageError(f"cannot read {p}: permission denied")


class _Replay(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff them): they come first again."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read1(len(buffer)) if hasattr(self._rest, "read1") else self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_input(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file, or standard input for ``-``; gzip data is decompressed (told by its magic bytes).
    Raises :class:`UsageError` for a missing file or a directory."""
    check_input(path)
    if is_stdio(path):
        stdin = sys.stdin.buffer
        head = stdin.read(2)
        stream: BinaryIO = cast(BinaryIO, io.BufferedReader(_Replay(head, stdin)))
    else:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
        head = raw.peek(2)[:2]
        stream = raw
    if head == _GZIP_MAGIC:
        return cast(BinaryIO, gzip.GzipFile(fileobj=stream))
    return stream


def read_lines(
    stream: BinaryIO,
    *,
    name: str,
    limit: int = DEFAULT_MAX_LINE_BYTES,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[bytes | Oversized]:
    """The lines of ``stream`` (with their newline), in memory bounded by about ``limit`` +
    1 MiB: a line of more than ``limit`` bytes comes back as :class:`Oversized`. ``on_bytes`` is told
    the bytes of each line. A compressed input that is truncated or corrupt raises
    :class:`InputError` naming ``name`` and the last complete line."""
    complete = 0  # lines read through their newline
    try:
        while True:
            line = stream.readline(limit + 1)
            if not line:
                return
            if on_bytes is not None:
                on_bytes(len(line))
            if len(line) <= limit or (line.endswith(b"\n") and len(line) == limit + 1):
                complete += line.endswith(b"\n")
                yield line
                continue
            yield _read_through(stream, line, on_bytes)
            complete += 1
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        after = f"after line {complete:,}" if complete else "before its first line"
        if isinstance(exc, EOFError):
            raise InputError(f"{name}: the gzip archive ends early, {after} (cut short in a copy?)") from None
        raise InputError(f"{name}: the gzip data is corrupt ({exc}), {after}") from None


def _read_through(stream: BinaryIO, first: bytes, on_bytes: Callable[[int], None] | None) -> Oversized:
    """Read the rest of a line that began with ``first``, hashing it, in chunks of 1 MiB. Size and
    SHA-256 are of the line without its newline."""
    digest = hashlib.sha256(first)
    size = len(first)
    while True:
        chunk = stream.readline(_CHUNK)
        if not chunk:
            break
        if on_bytes is not None:
            on_bytes(len(chunk))
        if chunk.endswith(b"\n"):
            digest.update(chunk[:-1])
            size += len(chunk) - 1
            break
        digest.update(chunk)
        size += len(chunk)
    return Oversized(first, size, digest.hexdigest())


def check_output(option: str, path: str | os.PathLike[str] | None) -> None:
    """Raise :class:`UsageError` unless ``path`` (given as ``option``) can be created or replaced."""
    if path is None or is_stdio(path):
        return
    p = Path(path)
    parent = p.parent
    if p.is_dir():
        raise UsageError(f"{option} {p} is a directory: give a file path")
    if not parent.exists():
        raise UsageError(f"{option} {p}: directory {parent} does not exist; create it or give another path")
    if not parent.is_dir():
        raise UsageError(f"{option} {p}: {parent} is not a directory; give another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {p}: cannot write in {parent} (permission denied); give another path")


def check_output_dir(option: str, path: str | os.PathLike[str]) -> None:
    """Raise :class:`UsageError` unless ``path`` is, or can be made, a writable directory."""
    p = Path(path)
    existing = next((q for q in (p, *p.parents) if q.exists()), Path("."))
    if not existing.is_dir():
        raise UsageError(f"{option} {p}: {existing} is a file, not a directory; give another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {p}: cannot write in {existing} (permission denied); give another path")


def _same_file(a: Path, b: Path) -> bool:
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return a.resolve() == b.resolve()
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def refuse_collisions(
    outputs: Mapping[str, str | os.PathLike[str] | None], inputs: Iterable[str | os.PathLike[str]]
) -> None:
    """Raise :class:`UsageError` if an output (by option name) is one of ``inputs`` or another output:
    the same resolved path, or the same file by device and inode (a symlink or a hard link). ``-`` is
    standard input or output and never collides with a file, but two outputs cannot both be ``-``."""
    files = [Path(p) for p in inputs if not is_stdio(p)]
    seen: list[tuple[str, Path | None]] = []
    for option, out in outputs.items():
        if out is None:
            continue
        if is_stdio(out):
            earlier = next((o for o, p in seen if p is None), None)
            if earlier is not None:
                raise UsageError(f"{earlier} - and {option} - both write to standard output; give one of them a file")
            seen.append((option, None))
            continue
        target = Path(out)
        for source in files:
            if _same_file(target, source):
                raise UsageError(
                    f"{option} {target} is the input file {source}: writing it would destroy what is read; "
                    "give another path"
                )
        for other, path in seen:
            if path is not None and _same_file(target, path):
                raise UsageError(f"{option} and {other} name the same file {target}; give two different paths")
        seen.append((option, target))


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temporary file beside it, flushed to disk and
    renamed over ``path`` when the block ends normally, removed when it raises (an error or
    Ctrl-C), so ``path`` is either its previous content (or absent) or the whole new one. ``-``
    writes to standard output; a device or a named pipe (``/dev/null``) is written directly; a
    symlink's target is replaced, the link kept. An unwritable place raises :class:`InputError`."""
    if is_stdio(path):
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    target = Path(os.path.realpath(path))  # through a symlink: the file it names is replaced, not the link
    if target.exists() and not target.is_file():  # /dev/null, a named pipe: nothing to replace
        with target.open("wb") as special:
            yield cast(BinaryIO, special)
        return
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _mode_for(target: Path) -> int:
    """The permissions a new file gets (0666 less the umask), or those of the file it replaces."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
