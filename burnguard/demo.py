"""``burnguard demo``: the whole job on an embedded fleet, no broker and no network.

The built-in simulator produces a fleet with injected incidents; the same engine as ``replay`` and
the Kafka worker watches it; a kill halts the simulated agent (its later events never happen, and
its task reports ``outcome: killed``, as the SDK's task context does); the scorecard compares what
was caught, how fast and how much money it saved against the simulator's ground truth.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from alerting import AlertPipeline, ConsoleReceiver, load_alerting_config
from burnguard.scorecard import Scorecard, score_run
from detectors.config import Autonomy
from detectors.engine import Engine
from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity
from schemas.timefmt import format_ts

__all__ = ["DemoRun", "run_demo", "simulate_and_detect"]

#: How long a kill takes to halt a simulated agent (command → listener → cancelled task).
HALT_LATENCY_S = 1.0


class DemoRun:
    """One pass of the fleet through the engine, halting killed tasks as their runtime would."""

    def __init__(self, *, hours: float, seed: int, autonomy: Autonomy, scale: float = 1.0) -> None:
        from burnguard.simulator import DEFAULT_INCIDENTS, FleetSimulator

        self.sim = FleetSimulator(seed=seed, hours=hours, scale=scale, incidents=DEFAULT_INCIDENTS)
        self.engine = Engine(autonomy=autonomy)
        self.anomalies: list[Anomaly] = []
        self.kills: dict[str, float] = {}
        self.spent_by_root: dict[str, float] = {}
        self.saved_usd = 0.0
        self.events = 0
        self.sim_ts = self.sim.start_ts
        self._incident_roots = {i.root_task_id for i in self.sim.incidents if i.root_task_id}

    def feed(self, event: dict[str, Any]) -> list[Anomaly]:
        root = event.get("root_task_id") or event["task_id"]
        self.sim_ts = float(event["ts"])
        killed_at = self.kills.get(root)
        if killed_at is not None and self.sim_ts > killed_at + HALT_LATENCY_S:
            self.saved_usd += float(event.get("cost_usd") or 0.0)
            return []
        self.events += 1
        found, reason = self.engine.process_obj(event)
        if reason is not None:
            raise RuntimeError(f"the simulator produced an invalid event: {reason}")
        if root in self._incident_roots:
            self.spent_by_root[root] = self.spent_by_root.get(root, 0.0) + float(event.get("cost_usd") or 0.0)
        for anomaly in found:
            if anomaly.action is Action.KILL and anomaly.scope.get("root_task_id"):
                self._halt(anomaly, event)
        self.anomalies.extend(found)
        return found

    def _halt(self, anomaly: Anomaly, event: dict[str, Any]) -> None:
        root = anomaly.scope["root_task_id"]
        if root in self.kills:
            return
        self.kills[root] = anomaly.ts
        finished = {
            "event_id": f"{root}#killed",
            "ts": anomaly.ts + HALT_LATENCY_S,
            "kind": "task_finished",
            "tenant": event["tenant"],
            "team": event["team"],
            "workflow": event["workflow"],
            "task_id": root,
            "root_task_id": root,
            "outcome": "killed",
        }
        self.anomalies.extend(self.engine.process_obj(finished)[0])

    def close(self) -> Scorecard:
        self.anomalies.extend(self.engine.advance_to(self.engine.max_ts + self.engine.config.lateness_s))
        return score_run(self.sim.incidents, self.anomalies, self.spent_by_root)


def simulate_and_detect(
    *, hours: float = 48.0, seed: int = 7, autonomy: Autonomy = Autonomy.ACT
) -> tuple[DemoRun, Scorecard]:
    """The demo without a screen (for tests and benchmarks)."""
    run = DemoRun(hours=hours, seed=seed, autonomy=autonomy)
    for event in run.sim.events():
        run.feed(event)
    return run, run.close()


def _view(run: DemoRun, recent: deque[Anomaly], wall_s: float) -> Group:
    stats = run.engine.stats
    hours = max(1e-9, (run.sim_ts - run.sim.start_ts) / 3600)
    head = Table.grid(padding=(0, 3))
    for _ in range(6):
        head.add_column()
    head.add_row(
        f"[bold]fleet time[/] {format_ts(run.sim_ts)[:16]}",
        f"[bold]events[/] {run.events:,}",
        f"[bold]spend[/] ${stats.spend_usd:,.2f} (${stats.spend_usd / hours:,.2f}/h)",
        f"[bold]live tasks[/] {run.engine.live_tasks:,}",
        f"[bold]open anomalies[/] {len(run.engine.episodes.open)}",
        f"[bold]kills[/] {len(run.kills)}  [green]saved ${run.saved_usd:,.2f}[/]",
    )
    table = Table(expand=True, title="latest anomalies", title_justify="left")
    table.add_column("event time", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("summary", ratio=1)
    style = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
    for a in list(recent)[::-1]:
        status = "resolved" if a.status is AnomalyStatus.RESOLVED else a.severity.value
        table.add_row(format_ts(a.ts)[11:19], f"[{style.get(status, 'green')}]{status}", a.action.value, a.summary)
    return Group(Panel(head, title=f"burnguard demo — {wall_s:.0f} s"), table)


def run_demo(
    *,
    hours: float,
    seed: int,
    pace_s: float,
    autonomy: Autonomy,
    out: IO[bytes] | None,
    alerts: bool = False,
    screen: Console | None = None,
) -> bool:
    """Run the demo on ``screen`` (default: stdout); every anomaly also goes to ``out`` (JSON lines)
    when given (the caller opens and closes it). True when every incident was detected and no kill
    was wrong."""
    console = screen or Console()
    live_screen = console.is_terminal
    run = DemoRun(hours=hours, seed=seed, autonomy=autonomy)
    # what would reach Slack and PagerDuty: the default alerting pipeline, printed by a console receiver
    pipeline, receiver = AlertPipeline(load_alerting_config(None)), ConsoleReceiver(console)
    span = max(1.0, hours * 3600)
    console.print(
        f"[bold]burnguard demo[/]: {hours:g} h of a simulated fleet ({len(run.sim.incidents)} injected incidents), "
        f"autonomy [bold]{autonomy.value}[/], no broker, no network."
    )
    recent: deque[Anomaly] = deque(maxlen=12)
    started = time.monotonic()
    sink = out
    try:
        live = Live(_view(run, recent, 0), console=console, refresh_per_second=4, transient=False)
        with live if live_screen else contextlib.nullcontext():
            for i, event in enumerate(run.sim.events()):
                for a in run.feed(event):
                    if alerts:
                        receiver.show(pipeline.process(a, now=a.ts))
                    if a.severity is not Severity.INFO:
                        recent.append(a)
                    if sink is not None:
                        sink.write(a.to_json() + b"\n")
                    if not live_screen and a.status is AnomalyStatus.FIRING and a.severity is Severity.CRITICAL:
                        console.print(f"{format_ts(a.ts)} [red]{a.severity.value}[/] {a.action.value}: {a.summary}")
                if i % 2000 == 0:
                    if live_screen:
                        live.update(_view(run, recent, time.monotonic() - started))
                    ahead = pace_s * (run.sim_ts - run.sim.start_ts) / span - (time.monotonic() - started)
                    if live_screen and ahead > 0:
                        time.sleep(min(ahead, 0.5))
            scorecard = run.close()
            if alerts:
                receiver.show(pipeline.flush(run.sim_ts + 3600))
            if live_screen:
                live.update(_view(run, recent, time.monotonic() - started))
    finally:
        if sink is not None:
            sink.flush()
    console.print(scorecard.table())
    for a in scorecard.false_alerts[:10]:
        console.print(f"  [yellow]false alert[/] {a.detector} {a.severity.value}: {a.summary}")
    stats = run.engine.stats
    console.print(
        f"{run.events:,} events, ${stats.spend_usd:,.2f} spent, {stats.anomalies} anomalies, {len(run.kills)} kills, "
        f"${run.saved_usd:,.2f} never spent thanks to kills; {time.monotonic() - started:.1f} s."
    )
    verdict = (
        "[green]every incident detected, no false kill[/]"
        if scorecard.ok
        else "[red]an incident was missed or a kill was wrong[/]"
    )
    console.print(verdict)
    if alerts:
        console.print(f"{len(receiver.sent)} notifications would have been sent to Slack and PagerDuty.")
    return scorecard.ok
