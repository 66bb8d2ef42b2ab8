"""Suppression: the small predicates that keep a notification from going out, and their chain.

Four questions, asked in one place (:func:`build_suppression_chain` and :func:`needs_notification`),
in Alertmanager's order:

1. **duplicate** — this anomaly state (id, status, severity) was already taken in: a redelivery from
   Kafka or a replay after a restart (:class:`SeenAnomalies`, at intake);
2. **silenced** — an active silence matches it (:func:`silenced`);
3. **inhibited** — a firing anomaly matching an inhibit rule's source, with the same ``equal``
   labels, explains it (:class:`ActiveAnomalies`, :func:`inhibited`);
4. **already notified** — the group's notification log shows these anomalies were sent and the
   repeat interval has not passed (:func:`needs_notification`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alerting.config import InhibitRule
from alerting.silences import SilenceStore
from schemas.anomaly import Severity

__all__ = [
    "ActiveAnomalies",
    "NotifyLogEntry",
    "Predicate",
    "SeenAnomalies",
    "SuppressionChain",
    "build_suppression_chain",
    "inhibited",
    "needs_notification",
    "silenced",
]

#: ``(anomaly_id, labels, now) -> reason to suppress, or None``.
Predicate = Callable[[str, dict[str, str], float], str | None]


class SeenAnomalies:
    """Anomaly states already taken in, remembered for ``ttl_s`` (of the pipeline's clock)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.seen: dict[str, float] = {}

    @staticmethod
    def key(anomaly_id: str, status: str, severity: str) -> str:
        return f"{anomaly_id}|{status}|{severity}"

    def check_and_add(self, key: str, now: float) -> bool:
        """``True`` when ``key`` is new (and records it); ``False`` for a duplicate."""
        if key in self.seen:
            return False
        self.seen[key] = now
        return True

    def resolved(self, anomaly_id: str) -> bool:
        """Whether a resolved state of this anomaly was taken in (and is still remembered)."""
        return any(self.key(anomaly_id, "resolved", s) in self.seen for s in Severity)

    def prune(self, now: float) -> None:
        old = [k for k, at in self.seen.items() if at < now - self.ttl_s]
        for k in old:
            del self.seen[k]


class ActiveAnomalies:
    """The firing anomalies, indexed per inhibit rule by the values of the rule's ``equal`` labels."""

    def __init__(self, rules: Sequence[InhibitRule]) -> None:
        self.rules = tuple(rules)
        self.labels: dict[str, dict[str, str]] = {}
        self._sources: list[dict[tuple[str, ...], set[str]]] = [{} for _ in self.rules]

    def _equal_key(self, rule: InhibitRule, labels: dict[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in rule.equal)

    def set_firing(self, anomaly_id: str, labels: dict[str, str]) -> None:
        self.remove(anomaly_id)
        self.labels[anomaly_id] = labels
        for rule, index in zip(self.rules, self._sources, strict=True):
            if rule.source.matches(labels):
                index.setdefault(self._equal_key(rule, labels), set()).add(anomaly_id)

    def remove(self, anomaly_id: str) -> None:
        labels = self.labels.pop(anomaly_id, None)
        if labels is None:
            return
        for rule, index in zip(self.rules, self._sources, strict=True):
            ids = index.get(self._equal_key(rule, labels))
            if ids is not None:
                ids.discard(anomaly_id)
                if not ids:
                    del index[self._equal_key(rule, labels)]

    def inhibitor(self, anomaly_id: str, labels: dict[str, str]) -> str | None:
        """The id of a firing anomaly that inhibits this one, if any (never itself)."""
        for rule, index in zip(self.rules, self._sources, strict=True):
            if rule.target.matches(labels):
                ids = index.get(self._equal_key(rule, labels), set()) - {anomaly_id}
                if ids:
                    return min(ids)
        return None


def silenced(store: SilenceStore) -> Predicate:
    def predicate(anomaly_id: str, labels: dict[str, str], now: float) -> str | None:
        found = store.silencing(labels, now)
        return f"silenced by {found.silence_id}" if found else None

    return predicate


def inhibited(active: ActiveAnomalies) -> Predicate:
    def predicate(anomaly_id: str, labels: dict[str, str], now: float) -> str | None:
        source = active.inhibitor(anomaly_id, labels)
        return f"inhibited by {source}" if source else None

    return predicate


@dataclass
class SuppressionChain:
    """Named predicates asked in order; the first reason found wins. Counts what each one muted."""

    stages: list[tuple[str, Predicate]]
    counts: dict[str, int] = field(default_factory=dict)

    def reason(self, anomaly_id: str, labels: dict[str, str], now: float) -> str | None:
        for name, predicate in self.stages:
            why = predicate(anomaly_id, labels, now)
            if why is not None:
                self.counts[name] = self.counts.get(name, 0) + 1
                return why
        return None


def build_suppression_chain(silences: SilenceStore, active: ActiveAnomalies) -> SuppressionChain:
    """The one place the mute stages are assembled: silences first, then inhibition."""
    return SuppressionChain(stages=[("silenced", silenced(silences)), ("inhibited", inhibited(active))])


@dataclass
class NotifyLogEntry:
    """What a group last told its receiver: firing anomaly id -> severity rank, resolved ids, when."""

    firing: dict[str, int] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)
    at: float | None = None

    def snapshot(self) -> dict[str, Any]:
        return {"firing": self.firing, "resolved": sorted(self.resolved), "at": self.at}

    @classmethod
    def restore(cls, data: dict[str, Any]) -> NotifyLogEntry:
        return cls(firing=dict(data["firing"]), resolved=set(data["resolved"]), at=data["at"])


def needs_notification(
    entry: NotifyLogEntry,
    firing: dict[str, int],
    resolved: set[str],
    now: float,
    repeat_interval: float,
    send_resolved: bool = True,
) -> str | None:
    """Why the group must notify now (``new``, ``escalated``, ``resolved``, ``repeat``), or ``None``.

    ``firing`` maps the visible (not muted) firing anomaly ids to their severity rank; ``resolved``
    holds the ids that were notified as firing and have resolved since.

    >>> needs_notification(NotifyLogEntry(), {"a": 1}, set(), 0, 60)
    'new'
    >>> sent = NotifyLogEntry(firing={"a": 1}, at=0)
    >>> needs_notification(sent, {"a": 1}, set(), 30, 60) is None, needs_notification(sent, {"a": 2}, set(), 30, 60)
    (True, 'escalated')
    >>> needs_notification(sent, {}, {"a"}, 30, 60), needs_notification(sent, {"a": 1}, set(), 60, 60)
    ('resolved', 'repeat')
    """
    if any(aid not in entry.firing for aid in firing):
        return "new"
    if any(rank > entry.firing[aid] for aid, rank in firing.items()):
        return "escalated"
    if send_resolved and resolved - entry.resolved:
        return "resolved"
    if firing and entry.at is not None and now - entry.at >= repeat_interval:
        return "repeat"
    return None
