"""The ``burnguard`` command line (CONTRACT §4)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from burnguard.commands import terminal_help
from burnguard.commands.admin import config_app, schema_app
from burnguard.commands.common import (
    BootstrapOption,
    ConfigOption,
    console,
    exit_with,
    load_or_exit,
    stream_settings,
)
from burnguard.commands.entry import BurnguardApp
from burnguard.commands.kill import kill_app
from burnguard.commands.pipeline import alerter, worker
from burnguard.commands.silence import silence_app
from detectors.config import Autonomy

if TYPE_CHECKING:
    from burnguard.simulator import FleetSimulator

terminal_help.install()
# markdown: docstrings wrap to the terminal (rich mode keeps their source line breaks) and `code` shows as code
app = BurnguardApp(
    help="burnguard: stop AI agents from burning money.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
app.add_typer(schema_app, name="schema")
app.add_typer(config_app, name="config")
app.add_typer(silence_app, name="silence")
app.add_typer(kill_app, name="kill")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"burnguard {version('burnguard')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print burnguard's version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """burnguard: stop AI agents from burning money."""


@app.command()
def replay(
    events: Annotated[Path, typer.Argument(help="JSONL cost events (gzip allowed), or - for stdin.", allow_dash=True)],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Where to write anomalies, one JSON per line (- for stdout).", allow_dash=True
        ),
    ],
    config: ConfigOption = None,
    autonomy: Annotated[Autonomy | None, typer.Option(help="Override every workflow's autonomy for this run.")] = None,
    dlq: Annotated[
        Path | None, typer.Option(help="Write rejected lines here with their reason (- for stdout).", allow_dash=True)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")] = False,
) -> None:
    """Run the detectors over a file of cost events, in event time, without Kafka.

    Exit 0 when something was read; 1 when the input cannot be read through (nothing is written) or
    holds no cost event (the outputs are written: the dead letters say why); 2 for a usage error."""
    from burnguard.files import InputError, UsageError, atomic_output, check_input, check_output, refuse_collisions
    from burnguard.replay import failure, replay_file
    from burnguard.report import cost_notices, detector_table, stats_table

    try:
        check_input(events)
        check_output("--out", out)
        check_output("--dlq", dlq)
        refuse_collisions({"--out": out, "--dlq": dlq}, [events, *([config] if config else [])])
    except UsageError as exc:
        exit_with(str(exc), 2)
    cfg = load_or_exit(config)
    name = "standard input" if str(events) == "-" else str(events)
    show = not quiet and console.is_terminal
    progress = Progress(
        TextColumn("replaying"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
    )
    total = None if name == "standard input" or _is_gzip(events) else events.stat().st_size
    try:
        with progress, atomic_output(out) as sink, atomic_output(dlq) if dlq else _null() as dlq_sink:
            bar = progress.add_task("replay", total=total)
            result = replay_file(
                events,
                sink,
                config=cfg,
                autonomy=autonomy,
                dlq=dlq_sink,
                on_bytes=(lambda n: progress.advance(bar, n)) if show else None,
            )
    except InputError as exc:
        to_files = str(out) != "-" and str(dlq) != "-"
        exit_with(f"{exc}; {'nothing was written: ' if to_files else ''}get the whole file and run again", 1)
    to_stdout = str(out) == "-" or str(dlq) == "-"
    if not quiet:
        out_console = console if to_stdout else Console()
        out_console.print(
            stats_table(result.engine.stats, lines=result.lines, seconds=result.seconds, rejected=len(result.rejected))
        )
        out_console.print(detector_table(result.anomalies))
        for notice in cost_notices(result.engine.stats):
            out_console.print(f"[yellow]notice:[/] {notice}", markup=True, highlight=False)
        for number, reason in result.rejected[:5]:
            out_console.print(f"[yellow]line {number} rejected:[/] {escape(reason)}")
        if len(result.rejected) > 5:
            out_console.print(
                f"[yellow]… {len(result.rejected) - 5} more rejected lines[/] (use --dlq FILE to keep them)"
            )
        out_console.print(f"anomalies written to [bold]{'standard output' if str(out) == '-' else escape(str(out))}[/]")
    why = failure(result, name)
    if why is not None:
        if result.objects:  # every line rejected: where to see why
            why += f"; the rejected lines are in {dlq}" if dlq else "; see them all with --dlq FILE"
        exit_with(why, 1)


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@app.command()
def simulate(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="JSONL file to write the fleet's events to (- for stdout).", allow_dash=True),
    ] = None,
    hours: Annotated[float, typer.Option(help="Simulated hours.")] = 48.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same fleet).")] = 7,
    scale: Annotated[float, typer.Option(help="Multiplies task arrival rates.")] = 1.0,
    incidents: Annotated[bool, typer.Option("--incidents/--no-incidents", help="Inject the demo's incidents.")] = True,
    to_kafka: Annotated[
        bool, typer.Option("--to-kafka", help="Produce the events to the events topic instead of a file.")
    ] = False,
    rate: Annotated[
        float, typer.Option(help="With --to-kafka: events per second (0: as fast as the broker takes them).", min=0)
    ] = 1000.0,
    bootstrap: BootstrapOption = None,
) -> None:
    """Write the demo's simulated fleet, with its injected incidents, as JSONL cost events.

    With `--to-kafka`, produce them to the events topic instead (key: the root task id), at `--rate`
    events per second.
    """
    from burnguard.files import InputError, UsageError, check_output
    from burnguard.simulator import DEFAULT_INCIDENTS, FleetSimulator, write_jsonl

    check_fleet_size(hours, scale, DEFAULT_INCIDENTS if incidents else ())
    if not to_kafka:
        if out is None:
            exit_with("give --out FILE, or --to-kafka to produce to Kafka", 2)
        try:
            check_output("--out", out)
        except UsageError as exc:
            exit_with(str(exc), 2)
    sim = FleetSimulator(seed=seed, hours=hours, scale=scale, incidents=DEFAULT_INCIDENTS if incidents else ())
    if to_kafka:
        _simulate_to_kafka(sim, rate, bootstrap)
        return
    assert out is not None
    shown = "standard output" if str(out) == "-" else str(out)
    try:
        with console.status(f"simulating {hours:g} h of fleet into {shown}"):
            count = write_jsonl(sim.events(), out)
    except BrokenPipeError:
        raise  # the reader went away (| head): typer exits quietly
    except (InputError, OSError) as exc:
        exit_with(f"cannot write {shown}: {getattr(exc, 'strerror', None) or exc}", 1)
    console.print(f"wrote {count:,} events to [bold]{escape(shown)}[/]; injected incidents:")
    for inc in sim.incidents:
        console.print(f"  - {inc.kind}: {inc.description}")


def check_fleet_size(hours: float, scale: float, incidents: tuple[str, ...]) -> None:
    """Exit 2, saying the minimum, unless a fleet of ``hours`` (simulated hours) at ``scale`` (times
    the default arrival rates) can hold ``incidents``."""
    from burnguard.simulator.incidents import min_hours

    if hours <= 0:
        exit_with(f"--hours {hours:g}: give a number of simulated hours above 0 (the default is 48)", 2)
    if scale <= 0:
        exit_with(f"--scale {scale:g}: give a factor above 0 (1.0 is the default fleet)", 2)
    least = min_hours(incidents)
    if hours < least:
        exit_with(
            f"--hours {hours:g}: the injected incidents need at least {least:g} simulated hours; "
            f"give --hours {least:g} or more",
            2,
        )


def _simulate_to_kafka(sim: FleetSimulator, rate: float, bootstrap: str | None) -> None:
    import asyncio

    from streams.feed import produce_events
    from streams.topics import BrokerUnreachable

    settings = stream_settings(bootstrap=bootstrap)
    progress = Progress(
        TextColumn(f"producing to {settings.events_topic}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        bar = progress.add_task("produce", total=None, speed="")
        started = time.monotonic()

        def advance(n: int) -> None:
            progress.advance(bar, n)
            done = progress.tasks[0].completed
            progress.update(bar, speed=f"{done / max(time.monotonic() - started, 1e-9):,.0f} events/s")

        try:
            count = asyncio.run(produce_events(settings, sim.events(), rate=rate, on_sent=advance))
        except BrokerUnreachable as exc:
            exit_with(str(exc), 1)
    console.print(f"produced {count:,} events to [bold]{settings.events_topic}[/] at {settings.bootstrap}")


@app.command()
def demo(
    hours: Annotated[float, typer.Option(help="Simulated hours of fleet.")] = 48.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    pace: Annotated[
        float, typer.Option(help="Seconds of wall time the live view spends (0: as fast as possible).")
    ] = 45.0,
    autonomy: Annotated[
        Autonomy | None,
        typer.Option(help="Autonomy of every workflow in the demo.", show_default="act; with --config, the file's"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write every anomaly here (JSONL; - for stdout).", allow_dash=True)
    ] = None,
    alerts: Annotated[
        bool, typer.Option("--alerts/--no-alerts", help="Print the Slack/PagerDuty notifications that would be sent.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Score this detector config (YAML, see README) on the demo's incidents.",
            exists=True, dir_okay=False,
        ),
    ] = None,
) -> None:
    """The whole job on an embedded fleet: simulate, detect, alert, kill, and score it."""
    from burnguard.demo import run_demo
    from burnguard.files import InputError, UsageError, atomic_output, check_output, refuse_collisions
    from burnguard.simulator import DEFAULT_INCIDENTS

    check_fleet_size(hours, 1.0, DEFAULT_INCIDENTS)
    try:
        check_output("--out", out)
        if config is not None and out is not None:
            refuse_collisions({"--out": out}, [config])
    except UsageError as exc:
        exit_with(str(exc), 2)
    cfg = load_or_exit(config) if config is not None else None
    if autonomy is None and cfg is None:
        autonomy = Autonomy.ACT
    try:
        with atomic_output(out) if out is not None else _null() as sink:
            ok = run_demo(
                hours=hours,
                seed=seed,
                pace_s=pace,
                autonomy=autonomy,
                out=sink,
                alerts=alerts,
                config=cfg,
                screen=console if str(out) == "-" else None,  # stdout carries the anomalies
            )
    except InputError as exc:
        exit_with(str(exc), 1)
    if out is not None:
        console.print(f"anomalies written to {'standard output' if str(out) == '-' else escape(str(out))}")
    raise typer.Exit(0 if ok else 1)


app.command()(worker)
app.command()(alerter)


def main() -> None:  # pragma: no cover - console entry point
    app()
