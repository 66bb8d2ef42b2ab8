"""Operator configuration: detector knobs, budgets and autonomy per workflow, team or tenant.

A YAML file, validated by pydantic; every error names its location. Settings resolve from the
global ``defaults`` through the ``overrides`` whose ``match`` fits, least specific first (tenant,
then team, then workflow), so a workflow override beats a team one. With no file at all the
built-in defaults apply and the learned detectors are already useful.

.. code-block:: yaml

    version: "2026-11-23.1"
    defaults:
      autonomy: advise
      detectors:
        runaway_task: {critical_factor: 6}
    overrides:
      - match: {workflow: support-triage}
        autonomy: act
        detectors:
          task_budget: {ceiling_usd: 2.5}
    budgets:
      - {name: research-monthly, match: {team: research}, period: month, amount_usd: 5000}
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, create_model, model_validator

from detectors.base import DetectorParams
from detectors.budgets import MoneyBudget
from detectors.config_file import ConfigError, known_names, load_yaml_model
from detectors.registry import PARAMS

__all__ = [
    "Autonomy",
    "BurnguardConfig",
    "ConfigError",
    "Match",
    "Override",
    "PolicySettings",
    "ResolvedSettings",
    "load_config",
    "load_yaml_model",
]


class Autonomy(StrEnum):
    """Staged autonomy: watch, advise, act with approval, act alone."""

    OBSERVE = "observe"
    ADVISE = "advise"
    APPROVE = "approve"
    ACT = "act"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Which scope an override or budget applies to; every key given must be equal."""

    tenant: str | None = None
    team: str | None = None
    workflow: str | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if self.tenant is None and self.team is None and self.workflow is None:
            raise ValueError("match needs at least one of tenant, team, workflow")
        return self

    @property
    def specificity(self) -> int:
        return 4 * (self.workflow is not None) + 2 * (self.team is not None) + (self.tenant is not None)

    def fits(self, tenant: str, team: str | None, workflow: str | None) -> bool:
        return (
            (self.tenant is None or self.tenant == tenant)
            and (self.team is None or self.team == team)
            and (self.workflow is None or self.workflow == workflow)
        )


def _partial(model: type[BaseModel]) -> type[BaseModel]:
    """The same fields and bounds, all optional: an override states only what it changes, and a
    bound broken there is reported by ``config validate``, not by the engine when the scope resolves."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        optional: Any = Optional[info.annotation]  # noqa: UP045 - built at run time from a type object
        fields[name] = (Annotated[optional, *info.metadata] if info.metadata else optional, None)
    return create_model(f"Partial{model.__name__}", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


DetectorSettings: type[BaseModel] = create_model(
    "DetectorSettings",
    __config__=ConfigDict(extra="forbid", frozen=True),
    **{name: (cls, cls()) for name, cls in PARAMS.items()},  # type: ignore[call-overload]
)
PartialDetectorSettings: type[BaseModel] = create_model(
    "PartialDetectorSettings",
    __config__=ConfigDict(extra="forbid", frozen=True),
    **{name: (_partial(cls) | None, None) for name, cls in PARAMS.items()},  # type: ignore[call-overload]
)

KILL_DETECTORS_DEFAULT = ("task_budget", "runaway_task", "retry_rate", "fan_out", "stale_task", "young_runaway")


def _known_detectors(names: tuple[str, ...]) -> tuple[str, ...]:
    return known_names("detector", names, tuple(PARAMS))


#: detector names, each one of :data:`detectors.registry.PARAMS`
DetectorNames = Annotated[tuple[str, ...], AfterValidator(_known_detectors)]


class PolicySettings(_Strict):
    """What burnguard may do on its own for a scope."""

    autonomy: Autonomy = Autonomy.ADVISE
    kill_detectors: DetectorNames = Field(
        default=KILL_DETECTORS_DEFAULT, description="detectors whose critical findings may halt a task"
    )
    kill_scope: Literal["task", "agent", "workflow"] = "task"
    kill_cooldown_s: float = Field(default=300.0, ge=0, description="seconds between kills of one target")
    max_learned_kills: int = Field(
        default=0, ge=0, description="tasks of one workflow a learned baseline may kill per kill_window_s (0: any)"
    )
    kill_window_s: float = Field(default=3600.0, gt=0, description="the window of max_learned_kills, in seconds")


class Defaults(PolicySettings):
    detectors: DetectorSettings = Field(default_factory=DetectorSettings)  # type: ignore[valid-type]


class Override(_Strict):
    match: Match
    autonomy: Autonomy | None = None
    kill_detectors: DetectorNames | None = None
    kill_scope: Literal["task", "agent", "workflow"] | None = None
    kill_cooldown_s: float | None = Field(default=None, ge=0)
    max_learned_kills: int | None = Field(default=None, ge=0)
    kill_window_s: float | None = Field(default=None, gt=0)
    detectors: PartialDetectorSettings = Field(default_factory=PartialDetectorSettings)  # type: ignore[valid-type]


class ResolvedSettings(BaseModel):
    """Settings in force for one (tenant, team, workflow)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    policy: PolicySettings
    params: dict[str, DetectorParams]
    #: the indices (in ``overrides``) of the overrides that fit the scope, in the order applied
    applied: tuple[int, ...] = ()


class BurnguardConfig(_Strict):
    version: str = Field(default="builtin-1", min_length=1, max_length=64)
    lateness_s: float = Field(default=300.0, ge=0, le=86_400, description="how late an event may arrive")
    task_ttl_s: float = Field(default=86_400.0, gt=0, description="a task silent this long is dropped from memory")
    max_ahead_s: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="an event more than this many seconds ahead of the stream's event time waits for "
        "others to confirm the jump (below the stale detector's 1800 s floor: an accepted step cannot "
        "make the other tasks look silent)",
    )
    max_behind_s: float | None = Field(
        default=None,
        gt=0,
        description="an event more than this many seconds behind the stream's event time is rejected "
        "(default: task_ttl_s, past which its task would have expired)",
    )
    confirm_events: int = Field(
        default=3, ge=2, le=10_000, description="held events, at or after a jump's time, that confirm it"
    )
    settle_events: int = Field(
        default=200,
        ge=1,
        le=1_000_000,
        description="events the stream processes before an unconfirmed held event is rejected",
    )
    max_held_events: int = Field(
        default=256, ge=1, le=100_000, description="events held ahead of the stream at most (the oldest is rejected)"
    )
    defaults: Defaults = Field(default_factory=Defaults)
    overrides: tuple[Override, ...] = ()
    budgets: tuple[MoneyBudget, ...] = ()
    _cache: dict[tuple[str, str | None, str | None], ResolvedSettings] = PrivateAttr(default_factory=dict)

    @property
    def behind_s(self) -> float:
        """``max_behind_s``, or ``task_ttl_s`` when unset (seconds)."""
        return self.max_behind_s if self.max_behind_s is not None else self.task_ttl_s

    def resolve(self, tenant: str, team: str | None = None, workflow: str | None = None) -> ResolvedSettings:
        """The settings for a scope: defaults, then matching overrides from least to most specific."""
        key = (tenant, team, workflow)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _resolve(self, tenant, team, workflow)
        return found

    def budgets_for(self, tenant: str, team: str | None, workflow: str | None) -> tuple[MoneyBudget, ...]:
        """The budgets whose ``match`` names exactly this scope level."""
        level = {"tenant": tenant, "team": team, "workflow": workflow}
        out = []
        for budget in self.budgets:
            m = budget.match
            keys = {k for k in ("tenant", "team", "workflow") if m.get(k) is not None}
            deepest = "workflow" if workflow is not None else "team" if team is not None else "tenant"
            if deepest in keys and all(level[k] == m[k] for k in keys):
                out.append(budget)
        return tuple(out)


_POLICY_KEYS = ("autonomy", "kill_detectors", "kill_scope", "kill_cooldown_s", "max_learned_kills", "kill_window_s")


def _resolve(config: BurnguardConfig, tenant: str, team: str | None, workflow: str | None) -> ResolvedSettings:
    policy = config.defaults.model_dump(exclude={"detectors"})
    params = {name: getattr(config.defaults.detectors, name).model_dump() for name in PARAMS}
    fitting = [i for i, o in enumerate(config.overrides) if o.match.fits(tenant, team, workflow)]
    applied = tuple(sorted(fitting, key=lambda i: config.overrides[i].match.specificity))  # stable: file order
    for override in (config.overrides[i] for i in applied):
        for key in _POLICY_KEYS:
            value = getattr(override, key)
            if value is not None:
                policy[key] = value
        for name in PARAMS:
            partial = getattr(override.detectors, name)
            if partial is not None:
                params[name].update(partial.model_dump(exclude_none=True))
    return ResolvedSettings(
        policy=PolicySettings(**policy),
        params={name: PARAMS[name](**p) for name, p in params.items()},
        applied=applied,
    )


def load_config(path: str | Path | None) -> BurnguardConfig:
    """Read and validate a YAML config; ``None`` gives the built-in defaults."""
    if path is None:
        return BurnguardConfig()
    return load_yaml_model(path, BurnguardConfig, "version, defaults, overrides, budgets", empty_ok=True)
