"""``burnguard schema export``; ``config_app`` (``burnguard config validate|show``) lives in
:mod:`burnguard.commands.config`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from burnguard.commands.common import console, exit_with
from burnguard.commands.config import config_app

__all__ = ["config_app", "schema_app"]

schema_app = typer.Typer(help="JSON Schema of the wire contract, for agents in other languages.", no_args_is_help=True)


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
