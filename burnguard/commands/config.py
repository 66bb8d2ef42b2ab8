"""``burnguard config validate|show``: check a detector or alerting config, print the settings in force."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from burnguard.commands.common import (
    ConfigOption,
    console,
    print_config_error,
    print_item,
    settings_config,
    stream_settings,
)
from detectors.config_file import ConfigError, read_yaml_mapping

__all__ = ["Kind", "config_app", "detect_kind"]

config_app = typer.Typer(help="Detector and alerting configuration files.", no_args_is_help=True)


class Kind(StrEnum):
    DETECTORS = "detectors"
    ALERTING = "alerting"


def detect_kind(raw: dict[str, Any]) -> Kind:
    """An alerting config has ``route`` or ``receivers``, or only alerting keys; anything else is a
    detector config (whose validation then names the keys it does not know)."""
    from alerting.config import ALERTING_KEYS
    from detectors.config import BurnguardConfig

    keys = set(raw)
    if keys & {"route", "receivers"}:
        return Kind.ALERTING
    if keys and keys <= set(ALERTING_KEYS) and not keys & set(BurnguardConfig.model_fields):
        return Kind.ALERTING
    return Kind.DETECTORS


@config_app.command("validate")
def config_validate(
    file: Annotated[Path, typer.Argument(help="YAML config file: detectors or alerting.", dir_okay=False)],
    kind: Annotated[
        Kind | None,
        typer.Option(help="What the file configures.", show_default="told from its top-level keys"),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail (exit 1) on warnings too.")] = False,
) -> None:
    """Check a config file: every error with its location, in one pass, then what can never take
    effect (warnings). Exit 1 on an error, or on a warning with --strict."""
    from alerting.config import load_alerting_config
    from alerting.config_check import alerting_warnings
    from detectors.config import load_config
    from detectors.config_check import config_warnings

    try:
        if kind is None:
            kind = detect_kind(read_yaml_mapping(file, "settings (a detector or alerting config)", empty_ok=True))
        if kind is Kind.ALERTING:
            alerting = load_alerting_config(file)
            warnings = alerting_warnings(alerting)
            summary = f"{len(alerting.receivers)} receiver(s), {_count_routes(alerting.route)} route(s)"
        else:
            cfg = load_config(file)
            warnings = config_warnings(cfg)
            summary = f"version {cfg.version}, {len(cfg.overrides)} override(s), {len(cfg.budgets)} budget(s)"
    except ConfigError as exc:
        print_config_error(exc, kind.value if kind is not None else None)
        raise typer.Exit(1) from None
    for loc, msg in warnings:
        print_item("warning: ", loc, msg)
    verdict = "valid" if not warnings else f"valid, {len(warnings)} warning(s)"
    console.print(f"[green]{escape(str(file))}: {verdict}[/] ({kind.value} config: {escape(summary)})", soft_wrap=True)
    if strict and warnings:
        raise typer.Exit(1)


def _count_routes(route: Any) -> int:
    return 1 + sum(_count_routes(child) for child in route.routes)


@config_app.command("show")
def config_show(
    config: ConfigOption = None,
    workflow: Annotated[
        str | None, typer.Option(help="Print the settings resolved for this workflow (with --team, --tenant).")
    ] = None,
    team: Annotated[str | None, typer.Option(help="The workflow's team (overrides matching a team).")] = None,
    tenant: Annotated[
        str | None, typer.Option(help="The workflow's tenant (as for events without one).", show_default="default")
    ] = None,
) -> None:
    """Print the effective configuration (defaults merged with the file) as YAML: the file given,
    else BURNGUARD_CONFIG as the worker reads it, else the built-in defaults. Overrides show only
    what they set. With --workflow (or --team, --tenant), the settings in force for that one scope."""
    import yaml

    settings = stream_settings(config_file=str(config) if config is not None else None)
    cfg = settings_config(settings)
    source = (
        "built-in defaults (no --config, BURNGUARD_CONFIG unset)"
        if settings.config_file is None
        else settings.config_file + ("" if config is not None else " (from BURNGUARD_CONFIG)")
    )
    lines = [f"# {source}"]
    if workflow is None and team is None and tenant is None:
        doc = cfg.model_dump(mode="json", exclude={"overrides", "budgets"})
        doc["overrides"] = [o.model_dump(mode="json", exclude_unset=True) for o in cfg.overrides]
        doc["budgets"] = [b.model_dump(mode="json") for b in cfg.budgets]
    else:
        tenant = tenant or "default"
        resolved = cfg.resolve(tenant, team, workflow)
        scope = {k: v for k, v in (("tenant", tenant), ("team", team), ("workflow", workflow)) if v is not None}
        applied = [
            {"override": i, "match": cfg.overrides[i].match.model_dump(mode="json", exclude_none=True)}
            for i in resolved.applied
        ]
        lines.append("# settings resolved for " + ", ".join(f"{k} {v}" for k, v in scope.items()))
        order = ", ".join(f"overrides.{i}" for i in resolved.applied)
        lines.append(f"# the defaults, then {order} (least specific first)" if applied else "# the defaults alone")
        if settings.autonomy:
            lines.append(f"# BURNGUARD_AUTONOMY={settings.autonomy} overrides the autonomy of every workflow")
        levels: list[tuple[str, str | None, str | None]] = [(tenant, None, None)]
        levels += [(tenant, team, None)] if team is not None else []
        levels += [(tenant, team, workflow)] if workflow is not None else []
        budgets = [b for level in levels for b in cfg.budgets_for(*level)]  # the engine's budgets, per level
        doc = {
            "scope": scope,
            "overrides_applied": applied,
            **resolved.policy.model_dump(mode="json"),
            "detectors": {name: p.model_dump(mode="json") for name, p in resolved.params.items()},
            "budgets": [b.model_dump(mode="json") for b in budgets],
        }
    sys.stdout.write("\n".join(lines) + "\n" + yaml.safe_dump(doc, sort_keys=False))
