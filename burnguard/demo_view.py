"""The demo's live view, sized to the terminal: the fleet's figures on top, the latest anomalies below.

Every figure of the header is a cell that never wraps; cells are packed into as many lines as the
width needs. The table shows each anomaly's event time as day and time (``Nov 03 14:02:11``, UTC),
its summary clipped to a few lines at a word boundary, and as many rows as the height allows: when
they do not all fit, kills are kept first, then firing critical findings, then warnings, and
resolutions last; the rows kept are shown in event-time order, oldest first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity

if TYPE_CHECKING:
    from burnguard.demo import DemoRun

__all__ = ["LiveView", "day_time", "row_priority"]

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan", "resolved": "green"}
#: widths of the fixed columns: event time, severity, action (the summary takes the rest)
_TIME_W, _SEVERITY_W, _ACTION_W = 15, 8, 6
_GAP = 2  # spaces between two columns
#: lines besides the header's and the rows': the header panel's two borders, the table's title and
#: column header, and one left free (a frame as tall as the screen scrolls it when the view ends)
_CHROME_LINES = 5


def day_time(ts: float, *, seconds: bool = True) -> str:
    """Epoch seconds as a compact UTC day and time.

    >>> day_time(1793613600.25), day_time(1793613600.25, seconds=False)
    ('Nov 02 10:00:00', 'Nov 02 10:00')
    """
    return time.strftime("%b %d %H:%M:%S" if seconds else "%b %d %H:%M", time.gmtime(ts))


def row_priority(anomaly: Anomaly) -> int:
    """Which rows a short terminal keeps: 0 a kill, 1 a firing critical, 2 a warning, 3 a resolution."""
    if anomaly.status is AnomalyStatus.RESOLVED:
        return 3
    if anomaly.action is Action.KILL:
        return 0
    return 1 if anomaly.severity is Severity.CRITICAL else 2


def _clip(console: Console, text: str, width: int, max_lines: int) -> list[str]:
    """``text`` wrapped to ``width``, at most ``max_lines`` lines; a cut ends at a word with " …"."""
    lines = [line.plain.rstrip() for line in Text(text).wrap(console, width)]
    if len(lines) <= max_lines:
        return lines
    kept, last = lines[: max_lines - 1], lines[max_lines - 1].split(" ")
    while last and len(" ".join(last)) + 2 > width:
        last.pop()
    return [*kept, " ".join([*last, "…"])]


class LiveView:
    """What the demo shows while it runs; rendered anew at each refresh, at the terminal's size."""

    def __init__(self, run: DemoRun, recent: Sequence[Anomaly], wall_s: float) -> None:
        self.run = run
        #: the latest warning-or-worse anomalies, in the order the engine emitted them
        self.recent = list(recent)
        self.wall_s = wall_s

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = options.height or options.size.height
        header = self._header_lines(width - 4)
        budget = max(0, height - len(header) - _CHROME_LINES)
        yield Group(
            Panel(Text("\n").join(header), title=f"burnguard demo — {self.wall_s:.0f} s", title_align="left"),
            self._table(console, width, budget),
        )

    def _header_lines(self, width: int) -> list[Text]:
        run, stats = self.run, self.run.engine.stats
        hours = max(1e-9, (run.sim_ts - run.sim.start_ts) / 3600)
        cells = [
            ("fleet time", f"{day_time(run.sim_ts, seconds=False)} UTC"),
            ("events", f"{run.events:,}"),
            ("spend", f"${stats.spend_usd:,.2f} (${stats.spend_usd / hours:,.2f}/h)"),
            ("live tasks", f"{run.engine.live_tasks:,}"),
            ("open anomalies", f"{len(run.engine.episodes.open)}"),
            ("kills", f"{len(run.kills)}, saved ${run.saved_usd:,.2f}"),
        ]
        lines: list[Text] = []
        for label, value in cells:
            cell = Text.assemble((label, "bold"), " ", (value, "green" if label == "kills" else ""))
            if lines and len(lines[-1]) + 3 + len(cell) <= width:
                lines[-1].append("   ")
                lines[-1].append_text(cell)
            else:
                lines.append(cell)
        return lines

    def _table(self, console: Console, width: int, budget: int) -> Table:
        summary_w = max(10, width - _TIME_W - _SEVERITY_W - _ACTION_W - 3 * _GAP)
        max_lines = 2 if width < 100 else 3
        rows = [(i, a, _clip(console, a.summary, summary_w, max_lines)) for i, a in enumerate(self.recent)]
        # the most important first, the newest first within a rank; keep while they fit
        kept, used = [], 0
        for i, a, lines in sorted(rows, key=lambda r: (row_priority(r[1]), -r[1].ts, -r[0])):
            if used + len(lines) <= budget:
                kept.append((i, a, lines))
                used += len(lines)
        kept.sort(key=lambda r: (r[1].ts, r[0]))
        notable = sum(1 for a in self.run.anomalies if a.severity is not Severity.INFO)
        title = f"latest anomalies ({len(kept)} of {notable} shown)"
        table = Table(
            box=None, title=title, title_justify="left", pad_edge=False, padding=(0, _GAP // 2),
            header_style="bold", show_edge=False,
        )
        table.add_column("event time", width=_TIME_W, no_wrap=True)
        table.add_column("severity", width=_SEVERITY_W, no_wrap=True)
        table.add_column("action", width=_ACTION_W, no_wrap=True)
        table.add_column("summary", width=summary_w)
        for _, a, lines in kept:
            status = "resolved" if a.status is AnomalyStatus.RESOLVED else a.severity.value
            action = "-" if a.status is AnomalyStatus.RESOLVED else a.action.value
            table.add_row(day_time(a.ts), Text(status, _STYLE.get(status, "")), action, "\n".join(lines))
        return table
