"""Scoring of the detection-quality benchmark: one corpus item's run against its labels, then sums.

Matching is the scorecard's (:func:`burnguard.scorecard.score_run` with ``scope_only``): an anomaly
explains an incident when their scopes are nested and its event time lies in the incident's window;
never by detector name. What explains no incident is a false alert; false alerts are counted in
**episodes**: one scope and one detector within one 15-minute bucket of event time (warning and
critical only). A **false kill** is a kill that explains no incident: of a task that is no incident's
task, outside every workflow-wide incident. A **collateral kill** is the kill of a task that is no
incident's own task but lies inside a workflow-wide incident (a task that merely follows its
workflow's new normal, e.g. after a routing regression): counted apart, as the issue's complaint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from burnguard.scorecard import IncidentLike, Scorecard
from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity

__all__ = [
    "DEADLINES_S",
    "EPISODE_S",
    "TARGETS",
    "ItemResult",
    "aggregate",
    "episodes",
    "non_incident_kills",
    "percentile",
    "score_item",
]

EPISODE_S = 900.0
#: the issue's deadlines from onset (seconds); the metered kinds take those of their fleet cousins
DEADLINES_S: dict[str, float] = {
    "retry_storm": 300.0,
    "traffic_flood": 300.0,
    "routing_regression": 900.0,
    "context_bloat": 5400.0,
    "metered_spike": 300.0,
    "metered_flood": 300.0,
    "metered_level_shift": 900.0,
}
TARGETS = {
    "detected_within_deadline_share": 0.95,
    "false_episodes_per_10k_tasks": 2.0,
    "false_kills": 0,
    "runaway_spent_share_before_kill": 0.10,
    "real_alone_kills": 0,
    "real_alone_alerts": 3,
}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0..1) of ``values``; ``None`` when empty.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([], 0.5)
    (2.0, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _alerting(anomalies: Iterable[Anomaly]) -> list[Anomaly]:
    return [a for a in anomalies if a.status is AnomalyStatus.FIRING and a.severity is not Severity.INFO]


def episodes(anomalies: Iterable[Anomaly]) -> set[tuple[str, tuple[tuple[str, str], ...], int]]:
    """The alert episodes among ``anomalies``: (detector, scope, 15-minute bucket) of each firing
    warning or critical anomaly."""
    return {(a.detector, tuple(sorted(a.scope.items())), int(a.ts // EPISODE_S)) for a in _alerting(anomalies)}


def non_incident_kills(anomalies: Iterable[Anomaly], incidents: Iterable[IncidentLike]) -> list[Anomaly]:
    """The kills (firing, ``action: kill``) of root tasks that are no incident's task."""
    roots = {i.root_task_id for i in incidents if i.root_task_id}
    return [
        a for a in anomalies
        if a.status is AnomalyStatus.FIRING and a.action is Action.KILL and a.scope.get("root_task_id") not in roots
    ]


@dataclass
class ItemResult:
    """What one corpus item's run scored; ``incidents`` are JSON-able lines (see :func:`score_item`)."""

    name: str
    split: str
    family: str
    tasks: int
    events: int
    incidents: list[dict[str, Any]] = field(default_factory=list)
    #: false alert episodes, false kills and collateral kills per detector
    false_episodes: dict[str, int] = field(default_factory=dict)
    false_kills: dict[str, int] = field(default_factory=dict)
    collateral_kills: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    alerts: int = 0  # distinct firing warning/critical anomaly ids
    alert_lines: list[str] = field(default_factory=list)


def _kind(incident: IncidentLike) -> str:
    cohort = (getattr(incident, "details", None) or {}).get("cohort")
    return f"{incident.kind} ({cohort})" if cohort else incident.kind


def score_item(
    name: str, split: str, family: str, tasks: int, events: int, card: Scorecard, anomalies: Sequence[Anomaly]
) -> ItemResult:
    """One item's figures from its scorecard (matched ``scope_only``) and everything its run emitted."""
    result = ItemResult(name, split, family, tasks, events)
    for s in card.incidents:
        inc = s.incident
        deadline = DEADLINES_S.get(inc.kind)
        uncapped = inc.cost_without_kill_usd
        share = s.spent_usd / uncapped if s.spent_usd is not None and uncapped else None
        result.incidents.append({
            "kind": _kind(inc),
            "workflow": inc.scope.get("workflow"),
            "detected": s.detected,
            "delay_s": s.delay_s,
            "deadline_s": deadline,
            "within_deadline": s.delay_s is not None and (deadline is None or s.delay_s <= deadline),
            "by_detector": {d: max(0.0, a.ts - inc.start_ts) for d, a in sorted(s.first_by_detector.items())},
            "killed": s.kill is not None,
            "spent_usd": s.spent_usd,
            "uncapped_usd": uncapped,
            "spent_share": share,
        })
    for detector, *_ in episodes(card.false_alerts):
        result.false_episodes[detector] = result.false_episodes.get(detector, 0) + 1
    false_ids = {a.anomaly_id for a in card.false_kills}
    for a in card.false_kills:
        result.false_kills[a.detector] = result.false_kills.get(a.detector, 0) + 1
    for a in non_incident_kills(anomalies, [s.incident for s in card.incidents]):
        if a.anomaly_id not in false_ids:
            result.collateral_kills[a.detector] = result.collateral_kills.get(a.detector, 0) + 1
    alerting = _alerting(anomalies)
    result.kills = len({a.scope.get("root_task_id") for a in alerting if a.action is Action.KILL})
    seen: dict[str, Anomaly] = {}
    for a in alerting:
        seen.setdefault(a.anomaly_id, a)
    result.alerts = len(seen)
    result.alert_lines = [f"{a.detector} {a.severity.value}: {a.summary}" for a in seen.values()]
    return result


def _detector_rows(results: Sequence[ItemResult], tasks: int) -> dict[str, dict[str, Any]]:
    names = sorted(
        {d for r in results for i in r.incidents for d in i["by_detector"]}
        | {d for r in results for d in r.false_episodes}
        | {d for r in results for d in r.false_kills}
        | {d for r in results for d in r.collateral_kills}
    )
    rows: dict[str, dict[str, Any]] = {}
    incidents = [i for r in results for i in r.incidents]
    for d in [*names, "total"]:
        if d == "total":
            delays = [i["delay_s"] for i in incidents if i["delay_s"] is not None]
            found = sum(1 for i in incidents if i["detected"])
            eps = sum(sum(r.false_episodes.values()) for r in results)
            fk = sum(sum(r.false_kills.values()) for r in results)
            ck = sum(sum(r.collateral_kills.values()) for r in results)
        else:
            delays = [i["by_detector"][d] for i in incidents if d in i["by_detector"]]
            found = len(delays)
            eps = sum(r.false_episodes.get(d, 0) for r in results)
            fk = sum(r.false_kills.get(d, 0) for r in results)
            ck = sum(r.collateral_kills.get(d, 0) for r in results)
        rows[d] = {
            "incidents_explained": found,
            "incidents": len(incidents),
            "delay_p50_s": percentile(delays, 0.5),
            "delay_p95_s": percentile(delays, 0.95),
            "false_episodes": eps,
            "false_episodes_per_10k_tasks": 1e4 * eps / tasks if tasks else None,
            "false_kills": fk,
            "collateral_kills": ck,
        }
    return rows


def _kind_rows(results: Sequence[ItemResult]) -> dict[str, dict[str, Any]]:
    by_kind: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for r in results:
        for i in r.incidents:
            by_kind.setdefault(f"{r.family}: {i['kind']}", []).append((r.name, i))
    rows: dict[str, dict[str, Any]] = {}
    for key in sorted(by_kind):
        lines = [i for _, i in by_kind[key]]
        delays = [i["delay_s"] for i in lines if i["delay_s"] is not None]
        shares = [i["spent_share"] for i in lines if i["spent_share"] is not None]
        items = {n for n, _ in by_kind[key]}
        items_ok = {n for n in items if all(i["within_deadline"] for m, i in by_kind[key] if m == n)}
        rows[key] = {
            "incidents": len(lines),
            "detected": sum(1 for i in lines if i["detected"]),
            "within_deadline": sum(1 for i in lines if i["within_deadline"]),
            "deadline_s": lines[0]["deadline_s"],
            "items": len(items),
            "items_all_within_deadline_share": len(items_ok) / len(items),
            "delay_p50_s": percentile(delays, 0.5),
            "delay_p95_s": percentile(delays, 0.95),
            "killed": sum(1 for i in lines if i["killed"]),
            "spent_share_p50": percentile(shares, 0.5),
            "spent_share_max": max(shares) if shares else None,
            "under_10pct": sum(1 for s in shares if s < TARGETS["runaway_spent_share_before_kill"]),
            #: how many of these incidents each detector explained, and its median delay (seconds)
            "by_detector": {
                d: {"explained": len(ds), "delay_p50_s": percentile(ds, 0.5)}
                for d in sorted({d for i in lines for d in i["by_detector"]})
                for ds in [[i["by_detector"][d] for i in lines if d in i["by_detector"]]]
            },
        }
    return rows


def _family_total(results: Sequence[ItemResult], family: str) -> dict[str, Any]:
    chosen = [r for r in results if r.family == family]
    return _detector_rows(chosen, sum(r.tasks for r in chosen))["total"]


def aggregate(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Per split (tuning, held-out): tasks, per incident kind, per detector and in total."""
    out: dict[str, Any] = {}
    for split in ("tuning", "held-out"):
        chosen = [r for r in results if r.split == split]
        tasks = sum(r.tasks for r in chosen)
        out[split] = {
            "items": len(chosen),
            "tasks": tasks,
            "events": sum(r.events for r in chosen),
            "kinds": _kind_rows(chosen),
            "detectors": _detector_rows(chosen, tasks),
            "by_family": {fam: _family_total(chosen, fam) for fam in sorted({r.family for r in chosen})},
        }
    return out
