"""What every command shares: the error console, common options, config and settings loaders that
turn a bad file or setting into a clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from detectors.config import BurnguardConfig, ConfigError, load_config

if TYPE_CHECKING:
    from streams.settings import StreamSettings

console = Console(stderr=True)
BootstrapOption = Annotated[
    str | None,
    typer.Option(
        envvar="BURNGUARD_KAFKA_BOOTSTRAP",
        show_default="127.0.0.1:9092",
        help="Kafka bootstrap servers host:port[,...].",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (see README).", exists=True, dir_okay=False),
]


def load_or_exit(config: Path | None) -> BurnguardConfig:
    """The detector configuration, or exit 2 with what to fix."""
    try:
        return load_config(config)
    except ConfigError as exc:
        console.print(
            f"[red]error:[/] {exc}\nFix the file, then check it with [bold]burnguard config validate {config}[/]."
        )
        raise typer.Exit(2) from None


def stream_settings(**overrides: Any) -> StreamSettings:
    """BURNGUARD_* settings with ``overrides``, or exit 2 with the bad setting named."""
    from streams.settings import SettingsError, StreamSettings

    try:
        return StreamSettings.from_env(**overrides)
    except SettingsError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
