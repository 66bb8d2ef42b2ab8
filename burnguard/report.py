"""Rich renderings people read: the replay summary, anomaly tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.table import Table

from detectors.cost_notices import misnamed_cost_sentence
from detectors.engine import EngineStats
from schemas.anomaly import Anomaly, AnomalyStatus

__all__ = ["anomaly_table", "cost_notices", "detector_table", "stats_table"]

_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def stats_table(
    stats: EngineStats, *, lines: int, seconds: float, rejected: int, title: str = "Replay"
) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    rate = lines / seconds if seconds > 0 else 0.0
    rows = [
        ("lines read", f"{lines:,}"),
        ("events accepted", f"{stats.events:,}"),
        ("rejected (invalid)", f"{rejected:,}"),
        ("duplicates ignored", f"{stats.duplicates:,}"),
        ("root tasks seen / finished", f"{stats.tasks_started:,} / {stats.tasks_finished:,}"),
        ("spend", f"${stats.spend_usd:,.2f}"),
        ("unpriced model steps", f"{stats.unpriced_steps:,}"),
        ("anomalies fired", f"{stats.anomalies:,}"),
        ("kills", f"{stats.kills:,}"),
        ("time", f"{seconds:.2f} s ({rate:,.0f} events/s)"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def cost_notices(stats: EngineStats) -> list[str]:
    """One sentence per cost field name the steps sent instead of ``cost_usd``, most steps first."""
    return [
        misnamed_cost_sentence(steps, name)
        for name, steps in sorted(stats.misnamed_cost.items(), key=lambda item: (-item[1], item[0]))
    ]


def detector_table(anomalies: Iterable[Anomaly]) -> Table:
    """Firing anomalies counted by detector and severity, with the actions taken."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for a in anomalies:
        if a.status is AnomalyStatus.FIRING:
            counts[(a.detector, a.severity.value, a.action.value)] += 1
    table = Table(title="Anomalies by detector", title_justify="left")
    for col in ("detector", "severity", "action", "count"):
        table.add_column(col, justify="right" if col == "count" else "left")
    for (detector, severity, action), n in sorted(counts.items()):
        table.add_row(detector, f"[{_SEVERITY_STYLE.get(severity, '')}]{severity}", action, str(n))
    return table


def anomaly_table(anomalies: Iterable[Anomaly], *, limit: int = 15, title: str = "Anomalies") -> Table:
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("detector", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("summary", ratio=1)
    for a in list(anomalies)[:limit]:
        table.add_row(
            f"[{_SEVERITY_STYLE.get(a.severity.value, '')}]{a.severity.value}",
            a.detector,
            a.action.value,
            a.summary,
        )
    return table
