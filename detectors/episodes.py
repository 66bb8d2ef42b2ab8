"""Anomaly episodes: a detector's signals on one scope become one firing → resolved story.

One episode per (detector, scope): the first firing signal opens it with a deterministic id
(:func:`schemas.anomaly.anomaly_id_for`), a higher severity escalates it under the same id, and a
clearing signal — or the end of the task it is about — resolves it. The autonomy policy decides
each emission's ``action``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detectors.base import Signal
from detectors.config import Autonomy, PolicySettings
from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity, anomaly_id_for

__all__ = ["EpisodeBook", "decide_action"]

EpisodeKey = tuple[str, tuple[tuple[str, str], ...]]


def decide_action(
    signal: Signal,
    policy: PolicySettings,
    autonomy: Autonomy,
    already_killed: bool,
    proposed: str | None = None,
) -> tuple[Action, dict[str, Any]]:
    """What the policy does with a firing signal, and the evidence that explains the decision.

    ``observe`` records only; ``advise`` alerts; ``approve`` alerts and proposes a kill for a
    critical, kill-eligible finding of a detector allowed to kill; ``act`` kills it outright.
    ``proposed`` is the command id of the kill already proposed for the signal's task: one
    runaway task gets one proposal, and the findings after it alert and name that proposal.
    """
    if signal.severity is Severity.INFO or autonomy is Autonomy.OBSERVE:
        return Action.NONE, {"autonomy": autonomy.value}
    may_kill = (
        signal.kill_eligible and signal.severity is Severity.CRITICAL and signal.detector in policy.kill_detectors
    )
    note: dict[str, Any] = {"autonomy": autonomy.value}
    if may_kill and already_killed:
        note["kill"] = "already halted by an earlier command"
        return Action.ALERT, note
    if may_kill and autonomy is Autonomy.ACT:
        note["kill_scope"] = policy.kill_scope
        return Action.KILL, note
    if may_kill and autonomy is Autonomy.APPROVE and proposed:
        note["kill"] = f"already proposed for this task: burnguard kill show {proposed}"
        note["kill_proposal"] = proposed
        return Action.ALERT, note
    if may_kill and autonomy is Autonomy.APPROVE:
        note["kill_proposed"] = True
        note["kill_scope"] = policy.kill_scope
    return Action.ALERT, note


class EpisodeBook:
    """The open episodes, indexed by key and by root task so a finished task resolves its own."""

    def __init__(self, config_version: str, clock: Callable[[], float]) -> None:
        self.config_version = config_version
        self.clock = clock
        self.open: dict[EpisodeKey, Anomaly] = {}
        self.by_root: dict[str, list[EpisodeKey]] = {}

    @staticmethod
    def key(signal: Signal) -> EpisodeKey:
        return signal.detector, tuple(sorted(signal.scope.items()))

    def episode_id(self, signal: Signal) -> str:
        """The id the signal's episode has, or will have when this signal opens it."""
        current = self.open.get(self.key(signal))
        return current.anomaly_id if current else anomaly_id_for(signal.detector, signal.scope, signal.ts)

    def fire(self, signal: Signal, action: Action, note: dict[str, Any]) -> Anomaly | None:
        """Open or escalate the signal's episode; ``None`` when it is already open at this severity."""
        key = self.key(signal)
        current = self.open.get(key)
        if current is not None and signal.severity.rank <= current.severity.rank:
            return None
        episode_id = current.anomaly_id if current else anomaly_id_for(signal.detector, signal.scope, signal.ts)
        anomaly = Anomaly(
            anomaly_id=episode_id,
            detector=signal.detector,
            status=AnomalyStatus.FIRING,
            severity=signal.severity,
            ts=signal.ts,
            detected_at=self.clock(),
            scope=dict(signal.scope),
            metric=signal.metric,
            unit=signal.unit,
            observed=signal.observed,
            expected=signal.expected,
            threshold=signal.threshold,
            score=signal.score,
            action=action,
            summary=signal.summary,
            evidence={
                **signal.evidence,
                **note,
                "episode_start": current.evidence.get("episode_start", signal.ts) if current else signal.ts,
            },
            config_version=self.config_version,
        )
        self.open[key] = anomaly
        root = signal.scope.get("root_task_id")
        if current is None and root is not None:
            self.by_root.setdefault(root, []).append(key)
        return anomaly

    def is_open(self, signal: Signal) -> bool:
        return self.key(signal) in self.open

    def clear(self, signal: Signal) -> Anomaly | None:
        """Resolve the signal's episode with its latest evidence; ``None`` when none is open."""
        key = self.key(signal)
        if key not in self.open:
            return None
        return self._resolve(key, signal.ts, signal.summary or "condition cleared", signal.observed)

    def resolve_root(self, root_task_id: str, ts: float, reason: str) -> list[Anomaly]:
        """Resolve every open episode about one root task (it finished, or was dropped)."""
        return [self._resolve(key, ts, reason, None) for key in self.by_root.pop(root_task_id, []) if key in self.open]

    def _resolve(self, key: EpisodeKey, ts: float, reason: str, observed: float | None) -> Anomaly:
        firing = self.open.pop(key)
        root = firing.scope.get("root_task_id")
        if root is not None and root in self.by_root:
            keys = [k for k in self.by_root[root] if k != key]
            if keys:
                self.by_root[root] = keys
            else:
                del self.by_root[root]
        start = float(firing.evidence.get("episode_start", firing.ts))
        return firing.model_copy(
            update={
                "status": AnomalyStatus.RESOLVED,
                "ts": max(ts, firing.ts),
                "detected_at": self.clock(),
                "observed": firing.observed if observed is None else observed,
                "action": Action.NONE,
                "summary": f"Resolved: {reason}. Was: {firing.summary}",
                "evidence": {
                    **firing.evidence,
                    "resolution": reason,
                    "duration_s": round(max(0.0, ts - start), 3),
                },
            }
        )

    def snapshot(self) -> list[dict[str, Any]]:
        return [a.model_dump(mode="json", by_alias=True) for a in self.open.values()]

    def restore(self, items: list[dict[str, Any]]) -> None:
        self.open.clear()
        self.by_root.clear()
        for item in items:
            anomaly = Anomaly.model_validate(item)
            key: EpisodeKey = (anomaly.detector, tuple(sorted(anomaly.scope.items())))
            self.open[key] = anomaly
            root = anomaly.scope.get("root_task_id")
            if root is not None:
                self.by_root.setdefault(root, []).append(key)
