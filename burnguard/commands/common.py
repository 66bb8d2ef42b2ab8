"""What every command shares: the error console, common options, config and settings loaders that
turn a bad file or setting into a clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from detectors.config import BurnguardConfig, ConfigError, load_config

if TYPE_CHECKING:
    from streams.settings import StreamSettings

console = Console(stderr=True)
BootstrapOption = Annotated[
    str | None,
    typer.Option(help="Kafka bootstrap servers host:port[,...] (default: $BURNGUARD_KAFKA_BOOTSTRAP)."),
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


def exit_with(message: str, code: int) -> NoReturn:
    """Print ``error: message`` as one line on stderr (never wrapped) and exit with ``code``:
    2 for a command line that cannot work, 1 for a run that failed."""
    console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)
