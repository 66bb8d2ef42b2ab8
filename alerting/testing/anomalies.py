"""Anomalies for tests and demos, without running a detector."""

from __future__ import annotations

from typing import Any

from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity, anomaly_id_for

__all__ = ["T0", "make_anomaly", "resolved"]

T0 = 1_793_606_400.0  # 2026-11-02T08:00:00Z


def make_anomaly(
    *,
    detector: str = "runaway_task",
    workflow: str = "support-triage",
    task: str | None = "t1",
    team: str = "support",
    tenant: str = "acme",
    severity: Severity | str = Severity.WARNING,
    action: Action | str = Action.ALERT,
    ts: float = T0,
    observed: float = 12.15,
    expected: float | None = 1.2,
    **evidence: Any,
) -> Anomaly:
    """A firing anomaly with a deterministic id, evidence with top budget lines unless given."""
    scope = {"tenant": tenant, "team": team, "workflow": workflow}
    if task is not None:
        scope["root_task_id"] = task
    evidence.setdefault("top_lines", {"model": round(observed * 0.8, 2), "tool": round(observed * 0.2, 2)})
    return Anomaly(
        anomaly_id=anomaly_id_for(detector, scope, ts),
        detector=detector,
        status=AnomalyStatus.FIRING,
        severity=Severity(severity),
        ts=ts,
        detected_at=ts + 0.5,
        scope=scope,
        metric="task_cost_usd",
        unit="USD",
        observed=observed,
        expected=expected,
        threshold=(expected or 1.0) * 3,
        score=observed / ((expected or 1.0) * 3),
        action=Action(action),
        summary=f"{workflow} task {task} spent ${observed:.2f}, {observed / (expected or 1):.0f}x its usual",
        evidence=evidence,
        config_version="test-1",
    )


def resolved(anomaly: Anomaly, ts: float | None = None) -> Anomaly:
    """The same episode, resolved."""
    return anomaly.model_copy(
        update={
            "status": AnomalyStatus.RESOLVED,
            "ts": ts if ts is not None else anomaly.ts + 600,
            "summary": f"{anomaly.summary} — resolved",
        }
    )
