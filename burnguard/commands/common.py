"""What every command shares: the error console, common options, config and settings loaders that
turn a bad file or setting into a clear message and exit code 2."""

from __future__ import annotations

import getpass
import textwrap
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
        print_config_error(exc, "detectors", check=True)
        raise typer.Exit(2) from None


def print_config_error(exc: ConfigError, kind: str | None = None, *, check: bool = False) -> None:
    """A bad config file on stderr: one line when the file as a whole is wrong (unreadable, not
    YAML, not a mapping), else a header and one ``location: message`` per error (wrapped to the
    terminal, continuation lines indented); ``check`` adds the ``config validate`` command to run."""
    path = escape(exc.path)
    if len(exc.errors) == 1 and exc.errors[0][0].startswith(("<", "line ")):
        loc, msg = exc.errors[0]
        where = "" if loc in ("<file>", "<root>") else f" {loc}:"
        console.print(f"[red]error:[/] {path}:{escape(where)} {escape(msg)}", soft_wrap=True)
        return
    what = f" ({kind} config)" if kind else ""
    console.print(f"[red]error:[/] {path}: {len(exc.errors)} error(s){what}", soft_wrap=True)
    for loc, msg in exc.errors:
        print_item("  ", loc, msg)
    if check:
        console.print(f"Fix the file, then check it with [bold]burnguard config validate {path}[/].", soft_wrap=True)


def print_item(prefix: str, loc: str, msg: str) -> None:
    """``prefix loc: msg`` on stderr, wrapped to the terminal with the continuation lines indented."""
    text = textwrap.fill(
        f"{prefix}{loc}: {msg}",
        width=max(console.width, 40),
        subsequent_indent="      ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def settings_config(settings: StreamSettings) -> BurnguardConfig:
    """The detector configuration the worker runs with: ``settings.config_file`` (``--config``, else
    ``BURNGUARD_CONFIG``), else the built-in defaults; or exit 2 with what to fix."""
    return load_or_exit(Path(settings.config_file) if settings.config_file else None)


def stream_settings(**overrides: Any) -> StreamSettings:
    """BURNGUARD_* settings with ``overrides``, or exit 2 with the bad setting named."""
    from streams.settings import SettingsError, StreamSettings

    try:
        return StreamSettings.from_env(**overrides)
    except SettingsError as exc:
        exit_with(str(exc), 2)


def exit_with(message: str, code: int) -> NoReturn:
    """Print ``error: message`` as one line on stderr (never wrapped) and exit with ``code``:
    2 for a command line that cannot work, 1 for a run that failed."""
    console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def who(by: str | None) -> str:
    """``by``, else the login name (``unknown`` when there is none): who decided or silenced."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
