"""Scoring a run against the simulator's ground truth: detected or not, how fast, money saved."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich.table import Table

from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity

__all__ = ["IncidentScore", "Scorecard", "score_run"]

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

    def table(self) -> Table:
        table = Table(title="Scorecard", title_justify="left")
        table.add_column("incident", no_wrap=True)
        table.add_column("detected by", no_wrap=True)
        table.add_column("delay", justify="right", no_wrap=True)
        table.add_column("action", no_wrap=True)
        table.add_column("spent /\nunchecked", justify="right", no_wrap=True)
        table.add_column("saved", justify="right", no_wrap=True)
        for s in self.incidents:
            inc = s.incident
            detected = "\n".join(sorted(s.detectors)) if s.detected else "[bold red]MISSED"
            delay = _duration(s.delay_s) if s.delay_s is not None else "-"
            action = "killed" if s.kill else ("alerted" if s.detected else "-")
            money = saved = "-"
            if inc.cost_without_kill_usd is not None and s.spent_usd is not None:
                money = f"${s.spent_usd:,.2f} / ${inc.cost_without_kill_usd:,.2f}"
                pct = 100 * (1 - s.spent_usd / inc.cost_without_kill_usd) if inc.cost_without_kill_usd > 0 else 0
                saved = f"{pct:.0f}%"
            table.add_row(inc.kind, detected, delay, action, money, saved)
        table.caption = (
            "unchecked: what the incident's task would have spent with nobody to stop it\n"
            f"false alerts (warning+ not explained by an incident): {len(self.false_alerts)}   "
            f"false kills: {len(self.false_kills)}"
        )
        return table


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _explains(incident: IncidentLike, anomaly: Anomaly) -> bool:
    if not incident.start_ts - 60 <= anomaly.ts <= incident.end_ts + _AFTERMATH_S:
        return False
    if incident.root_task_id is not None:
        return anomaly.scope.get("root_task_id") == incident.root_task_id
    # A workflow-level incident is explained at its own level or seen from above (team, tenant).
    return all(anomaly.scope.get(k, v) == v for k, v in incident.scope.items() if k != "root_task_id") and (
        "root_task_id" not in anomaly.scope or anomaly.detector in ("retry_rate", "runaway_task", "stale_task")
    )


def score_run(
    incidents: Iterable[IncidentLike], anomalies: Iterable[Anomaly], spent_by_root: dict[str, float]
) -> Scorecard:
    """Match every firing anomaly to the incident that explains it; the rest are false alerts."""
    scores = [IncidentScore(inc) for inc in incidents]
    false_alerts: list[Anomaly] = []
    false_kills: list[Anomaly] = []
    for a in anomalies:
        if a.status is not AnomalyStatus.FIRING or a.severity is Severity.INFO:
            continue
        matched = [s for s in scores if _explains(s.incident, a)]
        for s in matched:
            if s.first is None or a.ts < s.first.ts:
                s.first = a
            s.detectors.add(a.detector)
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
