"""Settings of a valid detector config that can never take effect: the warnings of ``config validate``.

Each warning is a ``(location, message)`` pair like an error. The scope an override names is
resolved with :meth:`BurnguardConfig.resolve`, the engine's own resolution, the parts its ``match``
leaves open standing for a name no override mentions.
"""

from __future__ import annotations

from detectors.config import Autonomy, BurnguardConfig, Match, Override, ResolvedSettings
from detectors.registry import KILL_CAPABLE, PARAMS

__all__ = ["config_warnings"]

#: stands for a tenant, team or workflow that no override names
_UNNAMED = "\x00unnamed"
_KILLS = (Autonomy.APPROVE, Autonomy.ACT)


def config_warnings(cfg: BurnguardConfig) -> list[tuple[str, str]]:
    """Everything in ``cfg`` that is valid but can never take effect."""
    out: list[tuple[str, str]] = []
    out += _never_kill("defaults.kill_detectors", cfg.defaults.kill_detectors)
    defaults = cfg.resolve(_UNNAMED, _UNNAMED, _UNNAMED)
    if cfg.defaults.autonomy in _KILLS and not _killers(defaults):
        out.append(("defaults.autonomy", _no_killer(cfg.defaults.autonomy, "by default")))
    out += _disabled_knobs("defaults", cfg.defaults.detectors, defaults)
    for i, override in enumerate(cfg.overrides):
        where = f"overrides.{i}"
        settings = cfg.resolve(*_scope(override.match))
        out += _never_kill(f"{where}.kill_detectors", override.kill_detectors or ())
        if not _has_leaf(override.model_dump(exclude={"match"}, exclude_none=True)):
            out.append((where, f"sets nothing for {_named(override.match)}: give it a setting or remove it"))
            continue
        autonomy = settings.policy.autonomy
        if _shapes_kills(override) and autonomy in _KILLS and not _killers(settings):
            out.append((where, _no_killer(autonomy, f"for {_named(override.match)}")))
        if autonomy not in _KILLS:
            for key in ("kill_scope", "kill_cooldown_s"):
                if getattr(override, key) is not None:
                    out.append(
                        (
                            f"{where}.{key}",
                            f"has no effect: autonomy for {_named(override.match)} is {autonomy.value}, "
                            "which never kills (unless --autonomy says approve or act)",
                        )
                    )
        out += _disabled_knobs(f"{where}", override.detectors, settings)
    return out + _shadowed(cfg.overrides)


def _shadowed(overrides: tuple[Override, ...]) -> list[tuple[str, str]]:
    """Settings a later override with the same ``match`` sets again: the later one always wins."""
    out = []
    for i, earlier in enumerate(overrides):
        mine = _flat(earlier.model_dump(exclude={"match"}, exclude_none=True))
        for j in range(i + 1, len(overrides)):
            if overrides[j].match != earlier.match:
                continue
            again = sorted(mine & _flat(overrides[j].model_dump(exclude={"match"}, exclude_none=True)))
            out += [(f"overrides.{i}.{key}", f"never takes effect: overrides.{j} has the same match and sets it too")
                    for key in again]
            mine -= set(again)
    return out


def _flat(value: dict[str, object], prefix: str = "") -> set[str]:
    """The dotted paths of the leaves of a nested mapping."""
    out: set[str] = set()
    for key, item in value.items():
        path = f"{prefix}{key}"
        out |= _flat(item, f"{path}.") if isinstance(item, dict) else {path}
    return out


def _has_leaf(value: object) -> bool:
    return any(_has_leaf(v) for v in value.values()) if isinstance(value, dict) else True


def _scope(match: Match) -> tuple[str, str, str]:
    return (match.tenant or _UNNAMED, match.team or _UNNAMED, match.workflow or _UNNAMED)


def _named(match: Match) -> str:
    return ", ".join(f"{k} {v}" for k, v in match.model_dump(exclude_none=True).items())


def _killers(settings: ResolvedSettings) -> list[str]:
    """The detectors that may halt a task in this scope: listed, able to kill, and enabled."""
    return [n for n in settings.policy.kill_detectors if n in KILL_CAPABLE and settings.params[n].enabled]


def _no_killer(autonomy: Autonomy, scope: str) -> str:
    return (
        f"autonomy {autonomy.value} {scope}, but no detector that can kill is both in kill_detectors and enabled, "
        f"so nothing is ever {'killed' if autonomy is Autonomy.ACT else 'proposed for a kill'}; "
        f"the detectors that can kill: {', '.join(sorted(KILL_CAPABLE))}"
    )


def _never_kill(where: str, names: tuple[str, ...]) -> list[tuple[str, str]]:
    idle = [n for n in names if n in PARAMS and n not in KILL_CAPABLE]
    if not idle:
        return []
    return [
        (
            where,
            f"{', '.join(idle)} never {'kills' if len(idle) == 1 else 'kill'} (only "
            f"{', '.join(sorted(KILL_CAPABLE))} can), so listing {'it' if len(idle) == 1 else 'them'} has no effect",
        )
    ]


def _shapes_kills(override: Override) -> bool:
    """Whether the override sets what decides if anything can be killed in its scope."""
    enables = any(
        getattr(override.detectors, n) is not None and getattr(override.detectors, n).enabled is not None
        for n in KILL_CAPABLE
    )
    return override.autonomy is not None or override.kill_detectors is not None or enables


def _disabled_knobs(where: str, detectors: object, settings: ResolvedSettings) -> list[tuple[str, str]]:
    """Knobs set for a detector that is switched off in this scope (they change nothing)."""
    out = []
    for name in PARAMS:
        section = getattr(detectors, name, None)
        if section is None or settings.params[name].enabled:
            continue
        knobs = sorted(k for k in section.model_fields_set if k != "enabled" and getattr(section, k) is not None)
        if knobs:
            out.append(
                (f"{where}.detectors.{name}", f"{', '.join(knobs)} set, but {name} is disabled here: no effect")
            )
    return out
