"""The console entry point's last line of defence: what a user sees when a command fails."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

import typer
from rich.markup import escape

from burnguard.commands.common import console

__all__ = ["BurnguardApp"]


class BurnguardApp(typer.Typer):
    """The console entry point (``burnguard = "burnguard.cli:app"``): no traceback and no box ever
    reaches a user. A usage error is one line (``error: Invalid value for '--hours': …; see
    burnguard demo --help``, exit 2); an unexpected error is one line naming it and asking for a
    report (the traceback with ``BURNGUARD_DEBUG=1``, exit 1); Ctrl-C exits 130 with one line —
    also when the KeyboardInterrupt surfaced wrapped in another error (pydantic-core reports one
    raised inside a serializer as a ``PydanticSerializationError``): the SIGINT is remembered."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        interrupted: list[int] = []

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            interrupted.append(signum)
            raise KeyboardInterrupt

        own = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_sigint) if own else None
        try:
            self._run(interrupted, *args, **kwargs)
        finally:
            if own:
                signal.signal(signal.SIGINT, previous)

    def _run(self, interrupted: list[int], *args: Any, **kwargs: Any) -> None:
        from typer.exceptions import Abort, TyperException

        try:
            code = super().__call__(*args, **{**kwargs, "standalone_mode": False})
        except TyperException as exc:  # typer's own click: bad options and arguments
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                ctx = getattr(exc, "ctx", None)
                see = f"; see {ctx.command_path} --help" if ctx is not None else ""
                message = exc.format_message().rstrip(".")
                console.print(f"[red]error:[/] {escape(message)}{escape(see)}", soft_wrap=True)
            raise SystemExit(getattr(exc, "exit_code", 2)) from None
        except Abort:
            console.print("[red]error:[/] aborted: the input ended unexpectedly", soft_wrap=True)
            raise SystemExit(1) from None
        except Exception as exc:
            if interrupted:  # Ctrl-C, surfaced as another error
                console.print("interrupted", soft_wrap=True)
                raise SystemExit(130) from None
            if os.environ.get("BURNGUARD_DEBUG", "").strip() not in ("", "0"):
                raise
            console.print(
                f"[red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))}; this is a bug in burnguard, "
                "please report it (BURNGUARD_DEBUG=1 shows the traceback)",
                soft_wrap=True,
            )
            raise SystemExit(1) from None
        if code == 130:  # typer turns KeyboardInterrupt into exit code 130
            console.print("interrupted", soft_wrap=True)
        raise SystemExit(code if isinstance(code, int) else 0)
