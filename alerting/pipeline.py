"""The alert pipeline: anomalies in, notifications due out. No I/O and no wall clock.

``process(anomaly, now)`` takes one anomaly in (dedup, route, group) and returns every notification
due at ``now``; ``flush(now)`` is the timer tick (call it at :meth:`AlertPipeline.next_flush_at`).
Delivery is the :class:`alerting.dispatch.Dispatcher`'s job.

The state (groups, their notification logs, seen anomaly states, firing anomalies) is a small
versioned dict (:meth:`snapshot` / :meth:`restore`). Take the snapshot once the notifications
returned so far are delivered (or in an outbox): a restarted worker then pages no one twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from alerting.config import AlertingConfig
from alerting.grouping import AggregationGroup, episode_dedup_key, group_key
from alerting.matchers import labels_of
from alerting.notifier import Notification
from alerting.routing import Route, RouteTree
from alerting.silences import SilenceStore
from alerting.suppression import (
    ActiveAnomalies,
    NotifyLogEntry,
    SeenAnomalies,
    build_suppression_chain,
    needs_notification,
)
from schemas.anomaly import Anomaly, AnomalyStatus

__all__ = ["SNAPSHOT_VERSION", "AlertPipeline"]

SNAPSHOT_VERSION = 1


class AlertPipeline:
    def __init__(self, config: AlertingConfig, silences: SilenceStore | None = None) -> None:
        self.config = config
        self.tree = RouteTree(config.route)
        self.silences = silences if silences is not None else SilenceStore()
        self.seen = SeenAnomalies(config.dedup_ttl)
        self.active = ActiveAnomalies(config.inhibit_rules)
        self.chain = build_suppression_chain(self.silences, self.active)
        self.groups: dict[str, AggregationGroup] = {}
        self.stats: Counter[str] = Counter()
        self._routes = self._index(self.tree.root)

    def _index(self, route: Route) -> dict[str, Route]:
        found = {route.route_id: route}
        for child in route.children:
            found.update(self._index(child))
        return found

    # -- intake -------------------------------------------------------------------------------
    def process(self, anomaly: Anomaly, now: float) -> list[Notification]:
        """Take one anomaly in and return the notifications due at ``now``."""
        self.ingest(anomaly, now)
        return self.flush(now)

    def ingest(self, anomaly: Anomaly, now: float) -> bool:
        """Route and group one anomaly; ``False`` when it is a duplicate or stale state."""
        if not self.seen.check_and_add(
            SeenAnomalies.key(anomaly.anomaly_id, anomaly.status.value, anomaly.severity.value), now
        ):
            self.stats["duplicate"] += 1
            return False
        self.stats["taken_in"] += 1
        labels = labels_of(anomaly)
        firing = anomaly.status is AnomalyStatus.FIRING
        took = False
        keys: set[str] = set()
        for route in self.tree.match(labels):
            key, group_labels = group_key(route, labels)
            keys.add(key)
            group = self.groups.get(key)
            current = group.alerts.get(anomaly.anomaly_id) if group else None
            if current is not None and _stale(current, anomaly):
                continue
            if group is None:
                if not firing:
                    continue  # nothing open to resolve
                if self.seen.resolved(anomaly.anomaly_id):
                    continue  # a late firing state of a closed episode: it never reopens (nor its key)
                group = self.groups[key] = AggregationGroup(
                    key=key,
                    route_id=route.route_id,
                    receiver=route.receiver,
                    labels=group_labels,
                    dedup_key=episode_dedup_key(key, anomaly.anomaly_id),
                    next_flush=now + route.group_wait,
                )
            elif not firing and current is None:
                continue
            group.alerts[anomaly.anomaly_id] = anomaly
            took = True
        if not firing:
            # an episode that escalated may now match other routes (``severity: critical``): its
            # resolution also closes the groups that hold an earlier state, or they fire forever
            for key in [k for k, g in self.groups.items() if k not in keys and anomaly.anomaly_id in g.alerts]:
                group = self.groups[key]
                if not _stale(group.alerts[anomaly.anomaly_id], anomaly):
                    group.alerts[anomaly.anomaly_id] = anomaly
                    took = True
        if took and firing:
            self.active.set_firing(anomaly.anomaly_id, labels)
        elif not firing:
            self.active.remove(anomaly.anomaly_id)
        return took

    # -- timers -------------------------------------------------------------------------------
    def next_flush_at(self) -> float | None:
        """When :meth:`flush` next has something to evaluate (``None``: no open group)."""
        return min((g.next_flush for g in self.groups.values()), default=None)

    def flush(self, now: float) -> list[Notification]:
        """Evaluate every group whose timer is due; return the notifications to send, in order."""
        due = sorted((g for g in self.groups.values() if g.next_flush <= now), key=lambda g: (g.next_flush, g.key))
        if not due:
            return []
        self.silences.refresh()
        out: list[Notification] = []
        for group in due:
            route = self._routes.get(group.route_id, self.tree.root)
            notification = self._evaluate(group, route, now)
            group.next_flush = now + route.group_interval
            if notification is not None:
                out.append(notification)
            if not group.alerts:
                del self.groups[group.key]
        self.seen.prune(now)
        self.stats["notifications"] += len(out)
        return out

    def _evaluate(self, group: AggregationGroup, route: Route, now: float) -> Notification | None:
        receiver = self.config.receiver(group.receiver)
        firing: dict[str, int] = {}
        shown: list[Anomaly] = []
        resolved: list[Anomaly] = []
        for anomaly in group.alerts.values():
            if anomaly.status is AnomalyStatus.RESOLVED:
                if anomaly.anomaly_id in group.log.firing:
                    resolved.append(anomaly)
            elif self.chain.reason(anomaly.anomaly_id, labels_of(anomaly), now) is None:
                firing[anomaly.anomaly_id] = anomaly.severity.rank
                shown.append(anomaly)
        resolved_ids = {a.anomaly_id for a in resolved}
        reason = needs_notification(
            group.log, firing, resolved_ids, now, route.repeat_interval, receiver.send_resolved
        )
        for anomaly_id in [k for k, a in group.alerts.items() if a.status is AnomalyStatus.RESOLVED]:
            del group.alerts[anomaly_id]
        still_notified = {k: r for k, r in group.log.firing.items() if k in group.alerts}
        if reason is None:
            group.log.firing = still_notified
            return None
        notification = Notification(
            notification_id=f"{group.dedup_key}#{group.sequence}",
            receiver=group.receiver,
            route_id=group.route_id,
            group_key=group.key,
            group_labels=group.labels,
            dedup_key=group.dedup_key,
            sequence=group.sequence,
            reason=reason,  # type: ignore[arg-type]
            firing=tuple(sorted(shown, key=lambda a: (a.ts, a.anomaly_id))),
            resolved=tuple(sorted(resolved, key=lambda a: (a.ts, a.anomaly_id))),
            created_at=now,
        )
        group.sequence += 1
        group.log = NotifyLogEntry(
            firing={**still_notified, **firing}, resolved=group.log.resolved | resolved_ids, at=now
        )
        return notification

    # -- state ----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "groups": [g.snapshot() for g in self.groups.values()],
            "seen": dict(self.seen.seen),
            "active": dict(self.active.labels),
        }

    def restore(self, data: dict[str, Any]) -> None:
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"alert pipeline snapshot version {data.get('version')!r}, expected {SNAPSHOT_VERSION}")
        self.groups = {g.key: g for g in (AggregationGroup.restore(raw) for raw in data["groups"])}
        self.seen.seen = {str(k): float(v) for k, v in data["seen"].items()}
        self.active = ActiveAnomalies(self.config.inhibit_rules)
        for anomaly_id, labels in data["active"].items():
            self.active.set_firing(anomaly_id, dict(labels))
        self.chain = build_suppression_chain(self.silences, self.active)


def _stale(current: Anomaly, incoming: Anomaly) -> bool:
    """An episode never reopens and never de-escalates: a late firing state loses to what we hold."""
    if current.status is AnomalyStatus.RESOLVED:
        return True
    return incoming.status is AnomalyStatus.FIRING and incoming.severity.rank < current.severity.rank
