"""What the engine counts (:class:`EngineStats`) and how it words a rejected event."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

__all__ = ["EngineStats", "describe_validation_error"]


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every bad field and why, e.g. ``cost_usd: Input should be >= 0``."""
    by_field: dict[str, list[str]] = {}
    for err in exc.errors():
        # a union reports one error per member: name the field once, with each member's complaint
        loc = (
            ".".join(str(p) for p in err["loc"] if not str(p).endswith(("-str", "bool", "int", "float", "none")))
            or "event"
        )
        by_field.setdefault(loc, []).append(err["msg"])
    parts = [f"{loc}: {' or '.join(dict.fromkeys(msgs))}" for loc, msgs in list(by_field.items())[:8]]
    return "; ".join(parts)


@dataclass(slots=True)
class EngineStats:
    events: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: int = 0
    late_after_finish: int = 0
    tasks_started: int = 0
    tasks_finished: int = 0
    tasks_expired: int = 0
    spend_usd: float = 0.0
    unpriced_steps: int = 0
    #: steps that carried a cost under a name of ``schemas.events.MISNAMED_COST_FIELDS`` and no
    #: ``cost_usd``, by that name
    misnamed_cost: dict[str, int] = field(default_factory=dict)
    anomalies: int = 0
    kills: int = 0
    by_detector: dict[str, int] = field(default_factory=dict)
