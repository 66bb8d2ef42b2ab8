"""``burnguard silence add|list|expire``: time-limited mutes of matching anomalies.

Where a silence lives decides who obeys it, so there is no silent default: with a broker configured
(``BURNGUARD_KAFKA_BOOTSTRAP`` or ``--bootstrap``) the commands read and write the compacted
silences topic that every running ``burnguard alerter`` follows (obeyed within a second, no
restart); with ``--file`` (or ``BURNGUARD_SILENCES``) they edit a JSON file, for an alerter started
with ``--silences FILE`` or for offline use. With neither they say so and exit 2.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from burnguard.commands.common import BootstrapOption, console, exit_with, stream_settings, who

if TYPE_CHECKING:
    from pydantic import ValidationError

    from alerting.silences import Silence, SilenceStore

T = TypeVar("T")
silence_app = typer.Typer(help="Silences: time-limited mutes of matching anomalies.", no_args_is_help=True)
FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        envvar="BURNGUARD_SILENCES",
        help="Use this JSON file instead of Kafka (offline, or an alerter started with --silences FILE).",
        dir_okay=False,
    ),
]


def _matchers(pairs: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            console.print(
                f"[red]error:[/] {what} {pair!r}: write LABEL=VALUE, e.g. {what} workflow=support-triage",
                soft_wrap=True,
            )
            raise typer.Exit(2)
        out[name.strip()] = value
    return out


def sentences(exc: ValidationError) -> str:
    """A pydantic error as plain sentences: each problem once, no error type, no URL."""
    found: list[str] = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        text = msg if err["type"] == "value_error" or not where else f"{where}: {msg}"
        if text not in found:
            found.append(text)
    return "; ".join(found)


def _kafka(file: Path | None, bootstrap: str | None) -> bool:
    """True to use the silences topic, False for the file; exit 2 when neither is configured."""
    if file is not None:
        return False
    if bootstrap or os.environ.get("BURNGUARD_KAFKA_BOOTSTRAP", "").strip():
        return True
    console.print(
        "[red]error:[/] no broker and no silences file: set BURNGUARD_KAFKA_BOOTSTRAP (or --bootstrap) so every "
        "running alerter obeys the silence, or give --file FILE for an alerter started with --silences FILE",
        soft_wrap=True,
    )
    raise typer.Exit(2)


def _run_kafka(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio

    from aiokafka.errors import KafkaError

    from streams.topics import BrokerUnreachable

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its connection errors are said below, once
    try:
        return asyncio.run(coro)
    except BrokerUnreachable as exc:
        exit_with(str(exc), 1)
    except (OSError, TimeoutError, KafkaError) as exc:
        console.print(
            f"[red]error:[/] cannot read or write the silences topic: {type(exc).__name__}: {exc}", soft_wrap=True
        )
        raise typer.Exit(1) from None


def _store(file: Path) -> SilenceStore:
    from alerting.silences import SilencesFileError, SilenceStore

    try:
        return SilenceStore(file)
    except SilencesFileError as exc:
        exit_with(str(exc), 1)


def _write(file: Path | None, bootstrap: str | None, silence: Silence, *, new: bool) -> str:
    """Record ``silence`` (new, or its new state); say where, for the user's message."""
    if file is None:
        from streams.silences_topic import publish_silence

        settings = stream_settings(bootstrap=bootstrap)
        _run_kafka(publish_silence(settings, silence))
        return f"on {settings.silences_topic}: every running alerter obeys it"
    from alerting.silences import SilencesFileError

    store = _store(file)
    try:
        if new:
            store.add(silence)
        else:
            store.expire(silence.silence_id, time.time())
    except SilencesFileError as exc:
        exit_with(str(exc), 1)
    return f"in {file}: only an alerter started with --silences {file} obeys it"


def _read(file: Path | None, bootstrap: str | None) -> dict[str, Silence]:
    if file is not None:
        store = _store(file)
        return dict(store.silences)
    from streams.silences_topic import read_silences

    return _run_kafka(read_silences(stream_settings(bootstrap=bootstrap)))


@silence_app.command("add")
def silence_add(
    match: Annotated[list[str], typer.Option("--match", "-m", help="LABEL=VALUE (equality); repeatable.")] = [],  # noqa: B006
    match_re: Annotated[list[str], typer.Option("--match-re", help="LABEL=REGEX (fully anchored); repeatable.")] = [],  # noqa: B006
    duration: Annotated[str, typer.Option(help="How long, e.g. 30m, 2h, 1h30m.")] = "2h",
    comment: Annotated[str, typer.Option(help="Why (shown in list).")] = "",
    by: Annotated[str, typer.Option(help="Who silenced it.", show_default="the login name")] = "",
    bootstrap: BootstrapOption = None,
    file: FileOption = None,
) -> None:
    """Silence matching anomalies from now for --duration; prints the new silence's id.

    Labels: tenant, team, workflow, agent, task_id, root_task_id, detector, severity (info, warning,
    critical), action (none, alert, kill), metric, status (firing, resolved). A matcher no value of
    its label can satisfy is refused.
    """
    from pydantic import ValidationError

    from alerting.config import parse_duration
    from alerting.matchers import Matchers
    from alerting.silences import Silence

    use_kafka = _kafka(file, bootstrap)
    now = time.time()
    try:
        matchers = Matchers(match=_matchers(match, "--match"), match_re=_matchers(match_re, "--match-re"))
        seconds = parse_duration(float(duration) if duration.strip().replace(".", "", 1).isdigit() else duration)
        if seconds <= 0:
            raise ValueError(f"{duration!r} is no time: a silence lasts more than 0 seconds, e.g. 30m or 2h")
        silence = Silence(matchers=matchers, starts_at=now, ends_at=now + seconds, created_by=who(by), comment=comment)
    except ValidationError as exc:
        console.print(f"[red]error:[/] {sentences(exc)}", soft_wrap=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        console.print(f"[red]error:[/] --duration: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    where = _write(None if use_kafka else file, bootstrap, silence, new=True)
    typer.echo(silence.silence_id)
    console.print(f"silence {silence.silence_id} ({silence.conditions()}) until {_when(silence.ends_at)} {where}")


def _when(ts: float) -> str:
    from schemas.timefmt import format_ts

    return format_ts(ts)[:16].replace("T", " ") + " UTC"


@silence_app.command("list")
def silence_list(
    expired: Annotated[bool, typer.Option("--expired", help="Include ended silences.")] = False,
    bootstrap: BootstrapOption = None,
    file: FileOption = None,
) -> None:
    """The silences the alerters obey now (or all of them with --expired)."""
    use_kafka = _kafka(file, bootstrap)
    now = time.time()
    silences = sorted(_read(None if use_kafka else file, bootstrap).values(), key=lambda s: (s.starts_at, s.silence_id))
    shown = [s for s in silences if expired or now < s.ends_at]
    if not shown:
        console.print("no silence in force" + ("" if expired else " (--expired also lists the ended ones)"))
        return
    from burnguard.commands.lines import fit_columns

    rows = [
        [
            s.silence_id,
            _when(s.ends_at).removesuffix(" UTC")[5:] + ("" if s.active(now) else " (ended)"),
            s.created_by,
            s.conditions(),
            s.comment,
        ]
        for s in shown
    ]
    for line in fit_columns(["id", "ends UTC", "by", "matchers", "comment"], rows, Console().width):
        typer.echo(line)


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="The id `silence add` printed.")],
    bootstrap: BootstrapOption = None,
    file: FileOption = None,
) -> None:
    """End a silence now."""
    use_kafka = _kafka(file, bootstrap)
    current = _read(None if use_kafka else file, bootstrap).get(silence_id)
    if current is None:
        where = f"in {file}" if file is not None else "on the silences topic"
        console.print(
            f"[red]error:[/] no silence {silence_id} {where} (see burnguard silence list --expired)", soft_wrap=True
        )
        raise typer.Exit(1)
    now = time.time()
    if not now < current.ends_at:
        console.print(f"silence {silence_id} already ended at {_when(current.ends_at)}")
        return
    _write(None if use_kafka else file, bootstrap, current.ended(now), new=False)
    console.print(f"silence {silence_id} expired")
