"""``burnguard silence add|list|expire``: time-limited mutes over the silences file the worker reads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from burnguard.commands.common import console, exit_with

silence_app = typer.Typer(help="Silences: time-limited mutes of matching anomalies.", no_args_is_help=True)
SilencesOption = Annotated[
    Path,
    typer.Option("--file", envvar="BURNGUARD_SILENCES", help="Silences file (JSON) the worker reads."),
]


def _matchers(pairs: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            console.print(f"[red]error:[/] {what} {pair!r}: write LABEL=VALUE")
            raise typer.Exit(2)
        out[name.strip()] = value
    return out


@silence_app.command("add")
def silence_add(
    match: Annotated[list[str], typer.Option("--match", "-m", help="LABEL=VALUE (equality); repeatable.")] = [],  # noqa: B006
    match_re: Annotated[list[str], typer.Option("--match-re", help="LABEL=REGEX (fully anchored); repeatable.")] = [],  # noqa: B006
    duration: Annotated[str, typer.Option(help="How long, e.g. 30m, 2h, 1h30m.")] = "2h",
    comment: Annotated[str, typer.Option(help="Why (shown in list).")] = "",
    by: Annotated[str, typer.Option(help="Who silenced it.")] = "",
    file: SilencesOption = Path("burnguard-silences.json"),
) -> None:
    """Silence matching anomalies from now for --duration (labels: tenant, team, workflow, agent,
    task_id, root_task_id, detector, severity, action, metric, status)."""
    from pydantic import ValidationError

    from alerting.config import parse_duration
    from alerting.matchers import Matchers
    from alerting.silences import Silence, SilencesFileError, SilenceStore

    now = time.time()
    try:
        matchers = Matchers(match=_matchers(match, "--match"), match_re=_matchers(match_re, "--match-re"))
        silence = Silence(
            matchers=matchers, starts_at=now, ends_at=now + parse_duration(duration), created_by=by, comment=comment
        )
    except (ValidationError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    try:
        SilenceStore(file).add(silence)
    except SilencesFileError as exc:
        exit_with(str(exc), 1)
    typer.echo(silence.silence_id)


@silence_app.command("list")
def silence_list(
    file: SilencesOption = Path("burnguard-silences.json"),
    expired: Annotated[bool, typer.Option("--expired", help="Include ended silences.")] = False,
) -> None:
    """The silences in force (or all of them with --expired)."""
    from rich.table import Table

    from alerting.silences import SilencesFileError, SilenceStore
    from schemas.timefmt import format_ts

    now = time.time()
    table = Table("id", "matchers", "ends", "by", "comment")
    try:
        found = SilenceStore(file).list(now, include_expired=expired)
    except SilencesFileError as exc:
        exit_with(str(exc), 1)
    for s in found:
        conditions = [f"{k}={v}" for k, v in s.matchers.match.items()]
        conditions += [f"{k}=~{v}" for k, v in s.matchers.match_re.items()]
        table.add_row(
            s.silence_id,
            " ".join(conditions),
            format_ts(s.ends_at)[:19] + ("" if s.active(now) else " (ended)"),
            s.created_by,
            s.comment,
        )
    Console().print(table)


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="The id `silence add` printed.")],
    file: SilencesOption = Path("burnguard-silences.json"),
) -> None:
    """End a silence now."""
    from alerting.silences import SilencesFileError, SilenceStore

    try:
        SilenceStore(file).expire(silence_id, time.time())
    except SilencesFileError as exc:
        exit_with(str(exc), 1)
    except KeyError:
        console.print(f"[red]error:[/] no silence {silence_id} in {file}")
        raise typer.Exit(1) from None
    console.print(f"silence {silence_id} expired")
