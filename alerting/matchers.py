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

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from detectors.registry import PARAMS
from schemas.anomaly import SCOPE_KEYS, Action, Anomaly, AnomalyStatus, Severity

__all__ = ["KNOWN_VALUES", "LABEL_NAMES", "Matchers", "labels_of"]

LABEL_NAMES: tuple[str, ...] = (*SCOPE_KEYS, "detector", "severity", "action", "metric", "status")
#: the values an enumerated label can take: a matcher that none of them satisfies can never match.
#: Detectors: the registry's, the engine's ``unpriced_model`` notice and the kill switch's
#: ``kill_unacknowledged`` escalation (streams.killswitch_records.ESCALATION_DETECTOR).
KNOWN_VALUES: dict[str, tuple[str, ...]] = {
    "severity": tuple(s.value for s in Severity),
    "action": tuple(a.value for a in Action),
    "status": tuple(s.value for s in AnomalyStatus),
    "detector": (*PARAMS, "unpriced_model", "kill_unacknowledged"),
}


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
        which = "labels" if len(unknown) > 1 else "label"
        raise ValueError(f"unknown {which} {', '.join(unknown)}: the labels are {', '.join(LABEL_NAMES)}")
    return names


def never_matching(match: dict[str, str], match_re: dict[str, str]) -> list[str]:
    """A sentence for each condition on an enumerated label that none of its values satisfies.

    >>> never_matching({"severity": "high"}, {})
    ['severity=high can never match: severity is one of info, warning, critical']
    >>> never_matching({}, {"action": "page|halt"})
    ['action=~page|halt can never match: action is one of none, alert, kill']
    """
    found = []
    for name, value in match.items():
        if name in KNOWN_VALUES and value not in KNOWN_VALUES[name]:
            found.append(f"{name}={value} can never match: {name} is one of {', '.join(KNOWN_VALUES[name])}")
    for name, pattern in match_re.items():
        known = KNOWN_VALUES.get(name)
        if known and not any(re.fullmatch(pattern, v) for v in known):
            found.append(f"{name}=~{pattern} can never match: {name} is one of {', '.join(known)}")
    return found


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
                raise ValueError(f"{name}=~{pattern} is not a regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _can_match(self) -> Matchers:
        problems = never_matching(self.match, self.match_re)
        if problems:
            raise ValueError("; ".join(problems))
        return self

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
