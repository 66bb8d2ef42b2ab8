"""Notices about money the engine cannot count: a model it cannot price, a cost sent under a name
the contract does not read. Each is raised once per name, so a step that counts as $0 never does
so in silence (CONTRACT §1, ``cost_usd``)."""

from __future__ import annotations

from detectors.base import Signal
from schemas.anomaly import Severity
from schemas.events import CostEvent

__all__ = ["MISNAMED_COST_DETECTOR", "misnamed_cost_notice", "misnamed_cost_sentence"]

MISNAMED_COST_DETECTOR = "misnamed_cost"


def misnamed_cost_sentence(steps: int, name: str) -> str:
    """What a person reads about ``steps`` steps that sent their cost as ``name``.

    >>> misnamed_cost_sentence(1, "price")[:58]
    '1 step carries `price` but no `cost_usd`: its cost counts '
    >>> print(misnamed_cost_sentence(312, "cost"))  # doctest: +NORMALIZE_WHITESPACE
    312 steps carry `cost` but no `cost_usd`: their cost counts as $0 unless priced from tokens
    (rename the field to cost_usd)
    """
    one = steps == 1
    return (
        f"{steps:,} {'step carries' if one else 'steps carry'} `{name}` but no `cost_usd`: "
        f"{'its' if one else 'their'} cost counts as $0 unless priced from tokens (rename the field to cost_usd)"
    )


def misnamed_cost_notice(event: CostEvent, name: str) -> Signal:
    """The one notice for the first step seen carrying ``name`` instead of ``cost_usd``."""
    return Signal(
        detector=MISNAMED_COST_DETECTOR,
        scope={"tenant": event.tenant, "team": event.team, "workflow": event.workflow},
        ts=event.ts,
        severity=Severity.WARNING,
        metric="misnamed_cost_steps",
        unit="count",
        observed=1.0,
        summary=f"Steps of {event.workflow} send their cost as {name!r}, which burnguard does not read: "
        "they count as $0 (or as priced from tokens); rename the field to cost_usd",
        evidence={"field": name, "event_id": event.event_id},
    )
