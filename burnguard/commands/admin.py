"""``burnguard schema export`` and ``burnguard config validate|show``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from burnguard.commands.common import ConfigOption, console, exit_with, load_or_exit
from detectors.config import ConfigError, load_config

schema_app = typer.Typer(help="JSON Schema of the wire contract, for agents in other languages.", no_args_is_help=True)
config_app = typer.Typer(help="Detector configuration files.", no_args_is_help=True)


@schema_app.command("export")
def schema_export(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for the JSON Schema files.")
    ] = Path("schema"),
) -> None:
    """Write JSON Schema for the cost event, anomaly, kill command and kill ack."""
    from burnguard.files import InputError, UsageError, atomic_output, check_output_dir
    from schemas.anomaly import Anomaly
    from schemas.events import CostEvent
    from schemas.killswitch import KillAck, KillCommand

    try:
        check_output_dir("--out", out)
        out.mkdir(parents=True, exist_ok=True)
    except UsageError as exc:
        exit_with(str(exc), 2)
    except OSError as exc:
        exit_with(f"--out {out}: cannot create the directory ({exc.strerror or exc}); give another path", 2)
    for name, model in (
        ("cost_event", CostEvent),
        ("anomaly", Anomaly),
        ("kill", KillCommand),
        ("kill_ack", KillAck),
    ):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["$id"] = f"burnguard.{name}/1"
        path = out / f"burnguard.{name}.v1.schema.json"
        try:
            with atomic_output(path) as fh:
                fh.write((json.dumps(schema, indent=2) + "\n").encode())
        except (InputError, OSError) as exc:
            exit_with(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}", 1)
        console.print(f"wrote {path}")


@config_app.command("validate")
def config_validate(file: Annotated[Path, typer.Argument(help="YAML config file.", dir_okay=False)]) -> None:
    """Check a config file; print every error with its location."""
    try:
        cfg = load_config(file)
    except ConfigError as exc:
        console.print(f"[red]{exc.path}: {len(exc.errors)} error(s)[/]")
        for loc, msg in exc.errors:
            console.print(f"  [bold]{loc}[/]: {msg}")
        raise typer.Exit(1) from None
    console.print(
        f"[green]{file}: valid[/] (version {cfg.version}, "
        f"{len(cfg.overrides)} override(s), {len(cfg.budgets)} budget(s))"
    )


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective configuration (defaults merged with the file) as YAML."""
    import yaml

    cfg = load_or_exit(config)
    sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
