"""How injected incidents change the behaviour of ordinary tasks (times are epoch seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FleetEffects", "RetryStormEffect", "TrafficFloodEffect"]


@dataclass(frozen=True, slots=True)
class RetryStormEffect:
    """Between ``start_ts`` and ``end_ts`` the tool ``target`` fails with probability ``error_rate``."""

    start_ts: float
    end_ts: float
    target: str
    error_rate: float


@dataclass(frozen=True, slots=True)
class TrafficFloodEffect:
    """Between ``start_ts`` and ``end_ts`` tasks arrive ``multiplier`` times as fast as usual."""

    start_ts: float
    end_ts: float
    multiplier: float


@dataclass(slots=True)
class FleetEffects:
    """Lookups the task simulation makes on every call; empty when the fleet is clean."""

    regressions: dict[str, tuple[float, str]] = field(default_factory=dict)  # workflow -> (from_ts, model)
    storms: dict[str, list[RetryStormEffect]] = field(default_factory=dict)
    floods: dict[str, list[TrafficFloodEffect]] = field(default_factory=dict)

    def model_for(self, workflow: str, ts: float, default: str) -> str:
        """The model a call of ``workflow`` made at ``ts`` is routed to."""
        regression = self.regressions.get(workflow)
        if regression is not None and ts >= regression[0]:
            return regression[1]
        return default

    def tool_error_rate(self, workflow: str, tool: str, ts: float, base: float) -> float:
        """Probability (0..1) that a call of ``tool`` at ``ts`` fails."""
        for storm in self.storms.get(workflow, ()):
            if storm.target == tool and storm.start_ts <= ts < storm.end_ts:
                return storm.error_rate
        return base

    def in_storm(self, workflow: str, tool: str, ts: float) -> bool:
        """True while a retry storm on ``tool`` of ``workflow`` is going on."""
        return any(s.target == tool and s.start_ts <= ts < s.end_ts for s in self.storms.get(workflow, ()))
