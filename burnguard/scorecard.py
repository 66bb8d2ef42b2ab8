"""Scoring a run against the simulator's ground truth: detected or not, how fast, money saved."""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table

from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity

__all__ = ["INCIDENT_NAMES", "IncidentScore", "Scorecard", "incident_name", "score_run"]

#: How many false alerts the demo lists before "and N more".
FALSE_ALERTS_LISTED = 20
#: How long after an incident's end a finding still counts as about it (its effects linger).
_AFTERMATH_S = 2 * 3600.0


class IncidentLike(Protocol):
    """What the scorecard reads of an incident (the simulator's ``Incident`` is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def start_ts(self) -> float: ...
    @property
    def end_ts(self) -> float: ...
    @property
    def scope(self) -> dict[str, str]: ...
    @property
    def root_task_id(self) -> str | None: ...
    @property
    def cost_without_kill_usd(self) -> float | None: ...


@dataclass(slots=True)
class IncidentScore:
    incident: IncidentLike
    first: Anomaly | None = None
    detectors: set[str] = field(default_factory=set)
    #: each detector's first anomaly that explains the incident
    first_by_detector: dict[str, Anomaly] = field(default_factory=dict)
    kill: Anomaly | None = None
    spent_usd: float | None = None

    @property
    def detected(self) -> bool:
        return self.first is not None

    @property
    def delay_s(self) -> float | None:
        return None if self.first is None else max(0.0, self.first.ts - self.incident.start_ts)


@dataclass(slots=True)
class Scorecard:
    incidents: list[IncidentScore]
    false_alerts: list[Anomaly]
    false_kills: list[Anomaly]

    @property
    def all_detected(self) -> bool:
        return all(s.detected for s in self.incidents)

    @property
    def ok(self) -> bool:
        return self.all_detected and not self.false_kills

    def table(self, width: int = 80) -> Table:
        """The scorecard, one row per incident, for a terminal ``width`` columns wide: names and
        detectors on one line when that fits, one item per line otherwise; never a word cut."""
        wide = self._table(one_line=True)
        if Console(file=io.StringIO(), width=10_000).measure(wide).maximum <= width:
            return wide
        return self._table(one_line=False)

    def _table(self, *, one_line: bool) -> Table:
        table = Table(title="Scorecard", title_justify="left", caption_justify="left")
        table.add_column("incident", no_wrap=True)
        table.add_column("detected by", no_wrap=True)
        table.add_column("delay", justify="right", no_wrap=True)
        table.add_column("action", no_wrap=True)
        table.add_column("spent / unchecked", justify="right")
        for s in self.incidents:
            inc = s.incident
            name, workflow = incident_name(inc), inc.scope.get("workflow")
            if not one_line and workflow:
                name = name.replace(f" ({workflow})", f"\n({workflow})")
            detected = (", " if one_line else "\n").join(sorted(s.detectors)) if s.detected else "[bold red]MISSED"
            delay = _duration(s.delay_s) if s.delay_s is not None else "-"
            action = "killed" if s.kill else ("alerted" if s.detected else "-")
            money = ""
            if inc.cost_without_kill_usd is not None and s.spent_usd is not None:
                money = f"${s.spent_usd:,.2f} / ${inc.cost_without_kill_usd:,.2f}"
                if inc.cost_without_kill_usd > 0:
                    money += f"\n({100 * (1 - s.spent_usd / inc.cost_without_kill_usd):.0f}% saved)"
            table.add_row(name, detected, delay, action, money)
        table.caption = (
            "unchecked: what the incident's task would have spent with nobody to stop it. "
            f"False alerts (warning or worse, explained by no incident): {len(self.false_alerts)}"
            f"{', listed below' if self.false_alerts else ''}; false kills: {len(self.false_kills)}."
        )
        return table

    def false_alert_list(self, limit: int = FALSE_ALERTS_LISTED) -> Table:
        """The false alerts in event order, one entry each, at most ``limit`` then "and N more"."""
        shown = sorted(self.false_alerts, key=lambda a: a.ts)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column()
        for a in shown[:limit]:
            kill = " [bold red]kill[/]" if a.action is Action.KILL else ""
            when = time.strftime("%b %d %H:%M", time.gmtime(a.ts))
            grid.add_row("-", f"{when} [yellow]{a.detector} {a.severity.value}[/]{kill}: {a.summary}")
        if len(shown) > limit:
            grid.add_row("", f"and {len(shown) - limit} more (every anomaly is in [bold]--out FILE[/])")
        return grid

#: what the README calls each kind of incident
INCIDENT_NAMES = {
    "runaway_loop": "runaway loop",
    "retry_storm": "retry storm",
    "routing_regression": "routing regression",
    "traffic_flood": "traffic flood",
    "subagent_explosion": "sub-agent explosion",
    "zombie_task": "zombie task",
}


def incident_name(incident: IncidentLike) -> str:
    """An incident as the README names it: its kind in words and its workflow.

    >>> from types import SimpleNamespace
    >>> incident_name(SimpleNamespace(kind="runaway_loop", scope={"workflow": "code-fix"}))
    'runaway loop (code-fix)'
    """
    name = INCIDENT_NAMES.get(incident.kind, incident.kind.replace("_", " "))
    workflow = incident.scope.get("workflow")
    return f"{name} ({workflow})" if workflow else name


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _explains(incident: IncidentLike, anomaly: Anomaly, *, scope_only: bool = False) -> bool:
    """Whether ``anomaly`` is about ``incident``: its event time lies in the incident's window (from a
    minute before its start to :data:`_AFTERMATH_S` after its end), and its scope fits.

    The demo's rule (``scope_only`` false): a task-level incident is explained only on its own root
    task; a workflow-level one at its own level, from above (team, tenant) or by a task-level finding
    of a detector that judges a task against its workflow. ``scope_only`` drops every reference to
    a detector's name: the scopes must be nested (one contains the other; each key both name agrees),
    so a task-level incident is also explained from above (its workflow's burn rate) and a
    workflow-level one by any finding on one of its tasks.
    """
    if not incident.start_ts - 60 <= anomaly.ts <= incident.end_ts + _AFTERMATH_S:
        return False
    if scope_only:
        return all(anomaly.scope.get(k, v) == v for k, v in incident.scope.items())
    if incident.root_task_id is not None:
        return anomaly.scope.get("root_task_id") == incident.root_task_id
    # A workflow-level incident is explained at its own level or seen from above (team, tenant).
    return all(anomaly.scope.get(k, v) == v for k, v in incident.scope.items() if k != "root_task_id") and (
        "root_task_id" not in anomaly.scope or anomaly.detector in ("retry_rate", "runaway_task", "stale_task")
    )


def score_run(
    incidents: Iterable[IncidentLike],
    anomalies: Iterable[Anomaly],
    spent_by_root: dict[str, float],
    *,
    scope_only: bool = False,
) -> Scorecard:
    """Match every firing anomaly to the incident that explains it; the rest are false alerts.
    ``scope_only``: match by scope and event time alone, never by detector name (see :func:`_explains`;
    the detection-quality benchmark's rule)."""
    scores = [IncidentScore(inc) for inc in incidents]
    false_alerts: list[Anomaly] = []
    false_kills: list[Anomaly] = []
    for a in anomalies:
        if a.status is not AnomalyStatus.FIRING or a.severity is Severity.INFO:
            continue
        matched = [s for s in scores if _explains(s.incident, a, scope_only=scope_only)]
        for s in matched:
            if s.first is None or a.ts < s.first.ts:
                s.first = a
            s.detectors.add(a.detector)
            earlier = s.first_by_detector.get(a.detector)
            if earlier is None or a.ts < earlier.ts:
                s.first_by_detector[a.detector] = a
            if a.action is Action.KILL and s.kill is None:
                s.kill = a
        if not matched:
            false_alerts.append(a)
            if a.action is Action.KILL:
                false_kills.append(a)
    for s in scores:
        root = s.incident.root_task_id
        if root is not None:
            s.spent_usd = spent_by_root.get(root, 0.0)
    return Scorecard(scores, false_alerts, false_kills)


def describe(score: IncidentScore) -> dict[str, Any]:
    """A JSON-able line of the scorecard (for tests and ``--out``)."""
    return {
        "kind": score.incident.kind,
        "detected": score.detected,
        "detectors": sorted(score.detectors),
        "delay_s": score.delay_s,
        "killed": score.kill is not None,
        "spent_usd": score.spent_usd,
        "without_usd": score.incident.cost_without_kill_usd,
    }
