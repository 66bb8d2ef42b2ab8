"""Labels of an anomaly and the matchers that select on them (routes, silences, inhibit rules).

An anomaly's labels are its scope keys plus ``detector``, ``severity``, ``action``, ``metric`` and
``status``. A label an anomaly lacks matches as the empty string, as in Alertmanager, so
``match_re: {root_task_id: ""}`` selects anomalies about no particular task.

>>> m = Matchers(match={"severity": "critical"}, match_re={"workflow": "support-.*"})
>>> m.matches({"severity": "critical", "workflow": "support-triage"})
True
>>> m.matches({"severity": "critical", "workflow": "research"})
False
"""

from __future__ import annotations

import re
from functools import cached_property

from pydantic import BaseModel, ConfigDict, field_validator

from schemas.anomaly import SCOPE_KEYS, Anomaly

__all__ = ["LABEL_NAMES", "Matchers", "labels_of"]

LABEL_NAMES: tuple[str, ...] = (*SCOPE_KEYS, "detector", "severity", "action", "metric", "status")


def labels_of(anomaly: Anomaly) -> dict[str, str]:
    """The labels routing, grouping, silences and inhibition see; absent scope keys are ``""``."""
    labels = {key: anomaly.scope.get(key, "") for key in SCOPE_KEYS}
    labels.update(
        detector=anomaly.detector,
        severity=anomaly.severity.value,
        action=anomaly.action.value,
        metric=anomaly.metric,
        status=anomaly.status.value,
    )
    return labels


def _known(names: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(names) - set(LABEL_NAMES))
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; known: {list(LABEL_NAMES)}")
    return names


class Matchers(BaseModel):
    """Equality (``match``) and fully anchored regular-expression (``match_re``) conditions; all must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: dict[str, str] = {}
    match_re: dict[str, str] = {}

    @field_validator("match")
    @classmethod
    def _match_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _known(value)

    @field_validator("match_re")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in _known(value).items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match_re.{name}: not a regular expression ({exc})") from None
        return value

    @cached_property
    def _compiled(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        return tuple((name, re.compile(pattern)) for name, pattern in self.match_re.items())

    @property
    def empty(self) -> bool:
        return not self.match and not self.match_re

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k, "") == v for k, v in self.match.items()) and all(
            rx.fullmatch(labels.get(k, "")) is not None for k, rx in self._compiled
        )
