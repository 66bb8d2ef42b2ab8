"""Aggregation groups: anomalies of one route and receiver that share the ``group_by`` labels.

A group's timers follow Alertmanager: the first notification waits ``group_wait`` (so a storm
arriving together becomes one message), later ones go out on ticks ``group_interval`` apart when
something changed, and an unchanged firing group is re-notified every ``repeat_interval``.

The **episode** of a group runs from its first anomaly to the moment all of them have resolved and
been notified; its ``dedup_key`` (PagerDuty incident, Slack thread) is derived from the group key and
the first anomaly's deterministic id, so the same input gives the same key after a restart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from alerting.routing import Route
from alerting.suppression import NotifyLogEntry
from schemas.anomaly import Anomaly

__all__ = ["MAX_DEDUP_KEY", "AggregationGroup", "episode_dedup_key", "group_key"]

MAX_DEDUP_KEY = 255
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:=/-]+")


def group_key(route: Route, labels: dict[str, str]) -> tuple[str, dict[str, str]]:
    """``route_id/receiver/{k=v,…}`` and the group's labels."""
    group_labels = {name: labels.get(name, "") for name in route.group_by}
    body = ",".join(f"{k}={v}" for k, v in group_labels.items())
    return f"{route.route_id}/{route.receiver}/{{{body}}}", group_labels


def episode_dedup_key(key: str, first_anomaly_id: str) -> str:
    """Readable prefix plus a hash of the whole identity, at most 255 characters.

    >>> episode_dedup_key("root/oncall/{workflow=wf,detector=fan_out}", "fan_out-00ab")
    'burnguard/oncall/wf/fan_out/f0d2781243b26f471307'
    >>> len(episode_dedup_key("r/x/{workflow=" + "w" * 900 + "}", "a"))
    255
    """
    digest = hashlib.sha256(f"{key}\n{first_anomaly_id}".encode()).hexdigest()[:20]
    receiver = key.split("/", 2)[1]
    values = [kv.split("=", 1)[1] for kv in key.rsplit("/{", 1)[1].rstrip("}").split(",") if "=" in kv]
    readable = _UNSAFE.sub("_", "/".join(["burnguard", receiver, *[v for v in values if v]]))
    return f"{readable[: MAX_DEDUP_KEY - len(digest) - 1]}/{digest}"


@dataclass
class AggregationGroup:
    key: str
    route_id: str
    receiver: str
    labels: dict[str, str]
    dedup_key: str
    next_flush: float
    alerts: dict[str, Anomaly] = field(default_factory=dict)
    log: NotifyLogEntry = field(default_factory=NotifyLogEntry)
    sequence: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "route_id": self.route_id,
            "receiver": self.receiver,
            "labels": self.labels,
            "dedup_key": self.dedup_key,
            "next_flush": self.next_flush,
            "alerts": [a.model_dump(mode="json", by_alias=True) for a in self.alerts.values()],
            "log": self.log.snapshot(),
            "sequence": self.sequence,
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> AggregationGroup:
        alerts = (Anomaly.model_validate(a) for a in data["alerts"])
        return cls(
            key=data["key"],
            route_id=data["route_id"],
            receiver=data["receiver"],
            labels=dict(data["labels"]),
            dedup_key=data["dedup_key"],
            next_flush=float(data["next_flush"]),
            alerts={a.anomaly_id: a for a in alerts},
            log=NotifyLogEntry.restore(data["log"]),
            sequence=int(data["sequence"]),
        )
