"""The ``burnguard`` command line (CONTRACT §4)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
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

from detectors.config import Autonomy, BurnguardConfig, ConfigError, load_config

if TYPE_CHECKING:
    from burnguard.simulator import FleetSimulator
    from streams.settings import StreamSettings

app = typer.Typer(help="burnguard: stop AI agents from burning money.", no_args_is_help=True, add_completion=False)
schema_app = typer.Typer(help="JSON Schema of the wire contract, for agents in other languages.", no_args_is_help=True)
config_app = typer.Typer(help="Detector configuration files.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(config_app, name="config")

console = Console(stderr=True)
BootstrapOption = Annotated[
    str | None,
    typer.Option(help="Kafka bootstrap servers host:port[,...] (default: $BURNGUARD_KAFKA_BOOTSTRAP)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (see README).", exists=True, dir_okay=False),
]


def _load(config: Path | None) -> BurnguardConfig:
    try:
        return load_config(config)
    except ConfigError as exc:
        console.print(
            f"[red]error:[/] {exc}\nFix the file, then check it with [bold]burnguard config validate {config}[/]."
        )
        raise typer.Exit(2) from None


@app.command()
def replay(
    events: Annotated[Path, typer.Argument(help="JSONL cost events (gzip allowed), or - for stdin.", allow_dash=True)],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write anomalies, one JSON per line.", dir_okay=False)
    ],
    config: ConfigOption = None,
    autonomy: Annotated[Autonomy | None, typer.Option(help="Override every workflow's autonomy for this run.")] = None,
    dlq: Annotated[
        Path | None, typer.Option(help="Write rejected lines here with their reason.", dir_okay=False)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")] = False,
) -> None:
    """Run the detectors over a file of cost events, in event time, without Kafka."""
    from burnguard.replay import replay_file
    from burnguard.report import detector_table, stats_table

    cfg = _load(config)
    if str(events) != "-" and not events.is_file():
        console.print(f"[red]error:[/] no such file: {events}")
        raise typer.Exit(2)
    total = events.stat().st_size if str(events) != "-" else None
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
    compressed = str(events).endswith(".gz")
    with progress, out.open("wb") as sink, dlq.open("wb") if dlq else _null() as dlq_sink:
        bar = progress.add_task("replay", total=None if compressed else total)
        result = replay_file(
            events,
            sink,
            config=cfg,
            autonomy=autonomy,
            dlq=dlq_sink,
            on_bytes=(lambda n: progress.advance(bar, n)) if show else None,
        )
    if not quiet:
        out_console = Console()
        out_console.print(
            stats_table(result.engine.stats, lines=result.lines, seconds=result.seconds, rejected=len(result.rejected))
        )
        out_console.print(detector_table(result.anomalies))
        for number, reason in result.rejected[:5]:
            out_console.print(f"[yellow]line {number} rejected:[/] {reason}")
        if len(result.rejected) > 5:
            out_console.print(
                f"[yellow]… {len(result.rejected) - 5} more rejected lines[/] (use --dlq FILE to keep them)"
            )
        out_console.print(f"anomalies written to [bold]{out}[/]")


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@app.command()
def simulate(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="JSONL file to write the fleet's events to.", dir_okay=False),
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
    """Write the demo's simulated fleet (with its injected incidents) as JSONL cost events, or
    produce it to Kafka (``--to-kafka``, key = root task id) at ``--rate`` events per second."""
    from burnguard.simulator import DEFAULT_INCIDENTS, FleetSimulator, write_jsonl

    sim = FleetSimulator(seed=seed, hours=hours, scale=scale, incidents=DEFAULT_INCIDENTS if incidents else ())
    if to_kafka:
        _simulate_to_kafka(sim, rate, bootstrap)
        return
    if out is None:
        console.print("[red]error:[/] give --out FILE, or --to-kafka to produce to Kafka")
        raise typer.Exit(2)
    with console.status(f"simulating {hours:g} h of fleet into {out}"):
        count = write_jsonl(sim.events(), out)
    console.print(f"wrote {count:,} events to [bold]{out}[/]; injected incidents:")
    for inc in sim.incidents:
        console.print(f"  - {inc.kind}: {inc.description}")


def _stream_settings(**overrides: Any) -> StreamSettings:
    from streams.settings import SettingsError, StreamSettings

    try:
        return StreamSettings.from_env(**overrides)
    except SettingsError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _simulate_to_kafka(sim: FleetSimulator, rate: float, bootstrap: str | None) -> None:
    import asyncio

    from streams.feed import produce_events
    from streams.topics import BrokerUnreachable

    settings = _stream_settings(bootstrap=bootstrap)
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
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.print(f"produced {count:,} events to [bold]{settings.events_topic}[/] at {settings.bootstrap}")


@app.command()
def worker(
    config: ConfigOption = None,
    bootstrap: BootstrapOption = None,
    web_host: Annotated[str | None, typer.Option(help="Address the web server binds to (default 127.0.0.1).")] = None,
    web_port: Annotated[int | None, typer.Option(help="Port of the web server (default 6066).", min=1)] = None,
    web: Annotated[bool | None, typer.Option("--web/--no-web", help="Run the web server (default: on).")] = None,
    autonomy: Annotated[
        Autonomy | None, typer.Option(help="Override every workflow's autonomy for this worker.")
    ] = None,
) -> None:
    """Run the Kafka pipeline: read cost events, detect, publish anomalies and task summaries.

    Settings come from BURNGUARD_* environment variables (see streams/settings.py: BURNGUARD_KAFKA_BOOTSTRAP,
    BURNGUARD_CONFIG, BURNGUARD_APP_ID, BURNGUARD_DATA_DIR, BURNGUARD_PARTITIONS, topic names, and
    BURNGUARD_KAFKA_SECURITY_PROTOCOL / _SASL_MECHANISM / _SASL_USERNAME / _SASL_PASSWORD[_FILE] / _SSL_CAFILE);
    options override them.
    """
    from streams.topics import BrokerUnreachable
    from streams.worker import run_worker

    settings = _stream_settings(
        bootstrap=bootstrap,
        config_file=str(config) if config is not None else None,
        web_host=web_host,
        web_port=web_port,
        web_enabled=web,
        autonomy=autonomy.value if autonomy is not None else None,
    )
    cfg = _load(Path(settings.config_file) if settings.config_file else None)
    try:
        run_worker(settings, cfg)
    except BrokerUnreachable as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


@app.command()
def demo(
    hours: Annotated[float, typer.Option(help="Simulated hours of fleet.")] = 48.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    pace: Annotated[
        float, typer.Option(help="Seconds of wall time the live view spends (0: as fast as possible).")
    ] = 45.0,
    autonomy: Annotated[Autonomy, typer.Option(help="Autonomy of every workflow in the demo.")] = Autonomy.ACT,
    out: Annotated[Path | None, typer.Option(help="Also write every anomaly here (JSONL).", dir_okay=False)] = None,
    alerts: Annotated[
        bool, typer.Option("--alerts/--no-alerts", help="Print the Slack/PagerDuty notifications that would be sent.")
    ] = False,
) -> None:
    """The whole job on an embedded fleet: simulate, detect, alert, kill, and score it."""
    from burnguard.demo import run_demo

    ok = run_demo(hours=hours, seed=seed, pace_s=pace, autonomy=autonomy, out=out, alerts=alerts)
    raise typer.Exit(0 if ok else 1)


@schema_app.command("export")
def schema_export(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for the JSON Schema files.", file_okay=False)
    ] = Path("schema"),
) -> None:
    """Write JSON Schema for the cost event, anomaly, kill command and kill ack."""
    from schemas.anomaly import Anomaly
    from schemas.events import CostEvent
    from schemas.killswitch import KillAck, KillCommand

    out.mkdir(parents=True, exist_ok=True)
    for name, model in (
        ("cost_event", CostEvent),
        ("anomaly", Anomaly),
        ("kill", KillCommand),
        ("kill_ack", KillAck),
    ):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["$id"] = f"burnguard.{name}/1"
        path = out / f"burnguard.{name}.v1.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
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

    cfg = _load(config)
    sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


silence_app = typer.Typer(help="Silences: time-limited mutes of matching anomalies.", no_args_is_help=True)
app.add_typer(silence_app, name="silence")
SilencesOption = Annotated[
    Path,
    typer.Option("--file", envvar="BURNGUARD_SILENCES", help="Silences file (JSON) the worker reads.", dir_okay=False),
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
    from alerting.silences import Silence, SilenceStore

    now = time.time()
    try:
        matchers = Matchers(match=_matchers(match, "--match"), match_re=_matchers(match_re, "--match-re"))
        silence = Silence(
            matchers=matchers, starts_at=now, ends_at=now + parse_duration(duration), created_by=by, comment=comment
        )
    except (ValidationError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    SilenceStore(file).add(silence)
    typer.echo(silence.silence_id)


@silence_app.command("list")
def silence_list(
    file: SilencesOption = Path("burnguard-silences.json"),
    expired: Annotated[bool, typer.Option("--expired", help="Include ended silences.")] = False,
) -> None:
    """The silences in force (or all of them with --expired)."""
    from rich.table import Table

    from alerting.silences import SilenceStore
    from schemas.timefmt import format_ts

    now = time.time()
    table = Table("id", "matchers", "ends", "by", "comment")
    for s in SilenceStore(file).list(now, include_expired=expired):
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
    from alerting.silences import SilenceStore

    try:
        SilenceStore(file).expire(silence_id, time.time())
    except KeyError:
        console.print(f"[red]error:[/] no silence {silence_id} in {file}")
        raise typer.Exit(1) from None
    console.print(f"silence {silence_id} expired")


def main() -> None:  # pragma: no cover - console entry point
    app()
