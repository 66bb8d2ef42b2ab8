"""Detection quality on a labelled corpus the benchmark builds itself (issue 11, "How it is measured").

Run: ``.venv/bin/python benchmarks/detection_quality.py [--quick] [--json FILE]`` (a few minutes;
``--quick`` well under one). The corpus (``detection_corpus``, ``detection_splice``): simulator
fleets of many seeds and shapes, the real trace with runaways spliced in from its own runs, and
metered single-record spend streams; tuning and held-out seeds are reported apart (nobody tunes on
the held-out ones). Every item runs through one engine with the default configuration at autonomy
``act``, killed tasks halted as their runtime would (:class:`burnguard.demo.HaltingRun`); matching,
episodes and false kills are ``detection_scoring``'s. The issue's targets are printed beside the
figures; nothing here is a timing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detection_corpus import CorpusItem, corpus
from detection_scoring import TARGETS, ItemResult, aggregate, score_item

from burnguard.demo import HaltingRun
from detectors.config import Autonomy

__all__ = ["main", "render", "run_corpus", "run_item"]


def run_item(item: CorpusItem) -> ItemResult:
    """One corpus item through the engine at autonomy ``act``, scored against its labels."""
    run = HaltingRun(item.incidents, autonomy=Autonomy.ACT)
    roots: set[str] = set()
    for event in item.events():
        roots.add(event.get("root_task_id") or event["task_id"])
        run.feed(event)
    run.finish()
    card = run.scorecard(scope_only=True)
    return score_item(item.name, item.split, item.family, len(roots), run.events, card, run.anomalies)


def run_corpus(*, quick: bool, console: Console, trace: str | None = None) -> dict[str, Any]:
    """Build the corpus, run every item with a progress bar, return every number (JSON-able)."""
    started = time.monotonic()
    with console.status("building the corpus"):
        items = corpus(quick=quick, trace=trace)
    results: list[ItemResult] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("corpus", total=len(items))
        for item in items:
            progress.update(bar, description=f"{item.name} ({item.split})")
            results.append(run_item(item))
            progress.advance(bar)
    real = next(r for r in results if r.split == "real-alone")
    return {
        "quick": quick,
        "seconds": round(time.monotonic() - started, 1),
        "corpus": [
            {"name": i.name, "split": i.split, "family": i.family, "shape": i.shape, "incidents": len(i.incidents)}
            for i in items
        ],
        "splits": aggregate(results),
        "real_alone": {"tasks": real.tasks, "events": real.events, "kills": real.kills, "alerts": real.alerts,
                       "alert_lines": real.alert_lines},
        "items": [
            {"name": r.name, "split": r.split, "family": r.family, "tasks": r.tasks, "events": r.events,
             "incidents": r.incidents, "false_episodes": r.false_episodes, "false_kills": r.false_kills,
             "collateral_kills": r.collateral_kills, "kills": r.kills, "alerts": r.alerts}
            for r in results
        ],
        "targets": TARGETS,
    }


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _matrix(split: str, data: dict[str, Any]) -> Table:
    """Incident kinds against detectors: how many each detector explained, and its median delay."""
    detectors = sorted({d for row in data["kinds"].values() for d in row["by_detector"]})
    table = Table(title=f"Incidents explained per detector (median delay) — {split}", title_justify="left")
    table.add_column("family: kind")
    for d in detectors:
        table.add_column(d, justify="right")
    for key, row in data["kinds"].items():
        cells = []
        for d in detectors:
            got = row["by_detector"].get(d)
            cells.append(f"{got['explained']}/{row['incidents']} ({_s(got['delay_p50_s'])})" if got else "-")
        table.add_row(escape(key), *cells)
    return table


def render(numbers: dict[str, Any], console: Console) -> None:
    """The tables: per split, incidents by kind and figures per detector; then the real trace alone."""
    for split, data in numbers["splits"].items():
        if not data["items"]:
            continue
        head = f"{split}: {data['items']} items, {data['tasks']:,} tasks, {data['events']:,} events"
        kinds = Table(title=f"Incidents by kind — {head}", title_justify="left")
        for col in ("family: kind", "found", "in deadline", "deadline", "items ok (≥ 95 %)", "delay p50",
                    "p95", "killed", "spent p50 / max (< 10 %)"):
            kinds.add_column(col, justify="left" if col.startswith("family") else "right")
        for key, row in data["kinds"].items():
            share = "-"
            if row["spent_share_p50"] is not None and key.split(": ", 1)[1].startswith("runaway"):
                share = f"{_pct(row['spent_share_p50'])} / {_pct(row['spent_share_max'])} ({row['under_10pct']} ok)"
            kinds.add_row(
                escape(key), f"{row['detected']}/{row['incidents']}", f"{row['within_deadline']}/{row['incidents']}",
                _s(row["deadline_s"]) if row["deadline_s"] else "-", _pct(row["items_all_within_deadline_share"]),
                _s(row["delay_p50_s"]), _s(row["delay_p95_s"]), f"{row['killed']}", share,
            )
        console.print(kinds)
        console.print(_matrix(split, data))
        dets = Table(title=f"Per detector — {split}", title_justify="left")
        for col in ("detector", "incidents explained", "delay p50", "p95", "false episodes",
                    "per 10k tasks (≤ 2)", "false kills (0)", "collateral kills"):
            dets.add_column(col, justify="left" if col == "detector" else "right")
        rows = dict(data["detectors"])
        rows.update({f"total: {fam}": row for fam, row in data["by_family"].items()})
        for name, row in rows.items():
            per10k = row["false_episodes_per_10k_tasks"]
            dets.add_row(
                f"[bold]{name}[/]" if name.startswith("total") else name,
                f"{row['incidents_explained']}/{row['incidents']}", _s(row["delay_p50_s"]), _s(row["delay_p95_s"]),
                f"{row['false_episodes']}", "-" if per10k is None else f"{per10k:.1f}", f"{row['false_kills']}",
                f"{row['collateral_kills']}",
            )
        console.print(dets)
    real = numbers["real_alone"]
    console.print(
        f"[bold]Real trace alone[/] ({real['tasks']} tasks, {real['events']:,} events): {real['kills']} kills "
        f"(target 0), {real['alerts']} alerts (target ≤ {TARGETS['real_alone_alerts']})"
    )
    for line in real["alert_lines"]:
        console.print(f"  - {escape(line)}")
    console.print(
        "Targets: each kind within its deadline in ≥ 95 % of items (storm, flood ≤ 5 min; routing regression "
        "≤ 15 min; context bloat ≤ 90 min); ≤ 2 false alert episodes / 10k tasks; 0 false kills; every runaway "
        "killed before 10 % of its uncapped cost (spent: what its task spent, as a share of it). "
        "Metered kinds take their cousins' deadlines (spike and flood "
        "5 min, level shift 15 min)."
    )
    console.print(f"({numbers['seconds']:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small subset of the corpus (for the test)")
    parser.add_argument("--json", metavar="FILE", help="write every number to FILE")
    parser.add_argument("--trace", help="the real trace (default: ../shared/data's)")
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # a log or a pipe: the tables unfolded
    numbers = run_corpus(quick=args.quick, console=console, trace=args.trace)
    render(numbers, console)
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(numbers, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
