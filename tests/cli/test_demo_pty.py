"""The live demo as a person sees it: ``burnguard demo`` in a real pseudo-terminal at 80x24 and
120x40, its output played through a VT100 emulator (pyte), every frame of the live view and the
final screen checked: dates on every row, rows in event order, no header cell wrapped, no table
cropped, kills kept, and a scorecard that cuts no word.

30 simulated hours are enough for all six incidents (the last one needs 22 h) and cross a midnight.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyte
import pytest

from burnguard.scorecard import INCIDENT_NAMES

#: two days of fleet time: the latest anomalies land on both sides of midnight
HOURS = 48
#: Rich's Live moves the cursor back to the top of its region with this before each new frame
_NEXT_FRAME = b"\r\x1b[2K\x1b[1A\x1b[2K"
_ROW = re.compile(r"^(?P<ts>[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2})  (?P<status>critical|warning|resolved) +"
                  r"(?P<action>alert|kill|-) +\S")
_HEADER_CELLS = (
    r"fleet time [A-Z][a-z]{2} \d{2} \d{2}:\d{2} UTC",
    r"events [\d,]+",
    r"spend \$[\d,]+\.\d\d \(\$[\d,]+\.\d\d/h\)",
    r"live tasks [\d,]+",
    r"open anomalies \d+",
    r"kills \d+, saved \$[\d,]+\.\d\d",
)


@dataclass
class Transcript:
    frames: list[list[str]]  # each complete frame of the live view, as the screen showed it
    lines: list[str]  # everything printed, scrollback included, once the demo exited
    returncode: int


def _run_in_pty(cols: int, rows: int) -> Transcript:
    burnguard = Path(sys.executable).with_name("burnguard")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(COLUMNS=str(cols), LINES=str(rows), TERM="xterm-256color")
    proc = subprocess.Popen(
        [str(burnguard), "demo", "--hours", str(HOURS), "--pace", "2"],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True, start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 300)
            if not ready:
                proc.kill()
                pytest.fail("the demo wrote nothing for 300 s")
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        returncode = proc.wait()
    screen = pyte.HistoryScreen(cols, rows, history=100_000)
    stream = pyte.ByteStream(screen)
    frames: list[list[str]] = []
    for i, part in enumerate(b"".join(chunks).split(_NEXT_FRAME)):
        if i:
            frames.append(list(screen.display))
            stream.feed(_NEXT_FRAME)
        stream.feed(part)
    history = ["".join(line[x].data for x in range(cols)) for line in screen.history.top]
    return Transcript(frames, [*history, *screen.display], returncode)


@pytest.fixture(scope="module", params=[(80, 24), (120, 40)], ids=["80x24", "120x40"])
def shown(request: pytest.FixtureRequest) -> Transcript:
    cols, rows = request.param
    return _run_in_pty(cols, rows)


def _live_view(frame: list[str]) -> tuple[list[str], str, list[str]] | None:
    """(header panel lines, table title, table lines) of the frame's live view, if it shows one."""
    top = next((i for i, line in enumerate(frame) if line.startswith("╭─ burnguard demo")), None)
    if top is None:
        return None
    bottom = next(i for i in range(top, len(frame)) if frame[i].startswith("╰"))
    return frame[top : bottom + 1], frame[bottom + 1].rstrip(), [line.rstrip() for line in frame[bottom + 2 :]]


def test_the_demo_runs_to_its_verdict(shown: Transcript) -> None:
    t = shown
    assert t.returncode == 0, "\n".join(t.lines[-30:])
    assert any("every incident detected, no false kill" in line for line in t.lines)
    assert len(t.frames) > 5, "the live view never refreshed"


def test_every_frame_of_the_live_view_fits_and_keeps_event_order(shown: Transcript) -> None:
    t = shown
    views = [v for v in map(_live_view, t.frames) if v is not None]
    assert len(views) > 5
    days_seen: set[str] = set()
    for header, title, table in views:
        panel = " ".join(line.strip("│ ") for line in header[1:-1])
        for cell in _HEADER_CELLS:  # each cell whole on one line of the panel
            assert any(re.search(cell, line) for line in header), (cell, header)
        assert "…" not in panel
        m = re.fullmatch(r"latest anomalies \((\d+) of (\d+) shown\)", title)
        assert m, title
        assert re.fullmatch(r"event time +severity +action +summary", table[0]), table[0]
        body = [line for line in table[1:] if line]
        starts = [_ROW.match(line) for line in body if not line.startswith(" ")]
        assert all(starts), [line for line in body if not line.startswith(" ")]
        assert len(starts) == int(m.group(1)), f"rows cropped: title says {m.group(1)}, {len(starts)} shown"
        assert not any(line.strip() == "..." for line in table), "the table was cropped"
        stamps = [datetime.strptime(f"2026 {s.group('ts')}", "%Y %b %d %H:%M:%S") for s in starts if s]
        assert stamps == sorted(stamps), [s.group("ts") for s in starts if s]
        days_seen.update(s.group("ts")[:6] for s in starts if s)
    assert len(days_seen) >= 2, "the run crosses midnight: rows of two days should show"


def test_kills_are_kept_when_the_screen_is_short(shown: Transcript) -> None:
    t = shown
    views = [v for v in map(_live_view, t.frames) if v is not None]
    assert views, "no frame shows the live view"
    header, _, table = views[-1]
    kills = int(re.search(r"kills (\d+),", " ".join(header)).group(1))  # type: ignore[union-attr]
    assert kills == 3
    assert sum(1 for line in table if (m := _ROW.match(line)) and m.group("action") == "kill") == kills


def test_the_scorecard_fits_and_cuts_no_word(shown: Transcript) -> None:
    t = shown
    start = max(i for i, line in enumerate(t.lines) if line.startswith("Scorecard"))
    end = next(i for i in range(start, len(t.lines)) if t.lines[i].startswith("└"))
    table = t.lines[start + 1 : end + 1]
    assert all(line[0] in "┏┃┡│└" for line in table), "the table is wider than the terminal"
    after = t.lines[start:]
    assert not any("…" in line for line in after), [line for line in after if "…" in line]
    text = " ".join(" ".join(line.strip("│┃ ").split()) for line in table)
    for name in INCIDENT_NAMES.values():  # the README's names, their words whole
        assert all(f" {word} " in f" {text} " for word in name.split()), name
    for detector in ("runaway_task", "task_budget", "retry_rate", "cost_shift", "burn_rate", "fan_out", "stale_task"):
        assert detector in text.replace(",", " ").split(), detector


def test_every_false_alert_is_listed(shown: Transcript) -> None:
    t = shown
    text = " ".join(" ".join(t.lines).split())
    m = re.search(r"False alerts \(warning or worse, explained by no incident\): (\d+)", text)
    assert m, "the scorecard does not say how many false alerts there were"
    count = int(m.group(1))
    assert count > 0
    listed = [line for line in t.lines if re.match(r"- [A-Z][a-z]{2} \d{2} \d{2}:\d{2} \w+ (warning|critical)", line)]
    assert len(listed) == count
