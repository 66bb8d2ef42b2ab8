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
from collections.abc import Sequence
from typing import IO, Any

from rich.console import Console
from rich.live import Live

from alerting import AlertPipeline, ConsoleReceiver, load_alerting_config
from burnguard.demo_view import LiveView, day_time
from burnguard.scorecard import IncidentLike, Scorecard, score_run
from detectors.config import Autonomy, BurnguardConfig
from detectors.engine import Engine
from schemas.anomaly import Action, Anomaly, AnomalyStatus, Severity

__all__ = ["DemoRun", "HaltingRun", "run_demo", "simulate_and_detect"]

#: How long a kill takes to halt a simulated agent (command → listener → cancelled task), seconds.
HALT_LATENCY_S = 1.0
#: How long after the fleet's last event the alert preview runs its timers on, seconds.
_ALERTS_AFTER_S = 3600.0


class HaltingRun:
    """Events through one engine, halting killed tasks as their runtime would: a killed root task's
    later events never happen (their money is :attr:`saved_usd`) and it reports ``outcome: killed``.

    ``incidents`` is the ground truth the run is scored against (their root tasks' spend is kept in
    :attr:`spent_by_root`); ``config`` is the detector configuration (``None``: the built-in
    defaults); ``autonomy``, when given, overrides every workflow's. ``anomalies`` holds everything
    the engine emitted, in order: what :meth:`feed` and :meth:`finish` return, the resolutions of
    killed tasks included. The demo is one; the detection-quality benchmark runs its corpus through it.
    """

    def __init__(
        self,
        incidents: Sequence[IncidentLike],
        *,
        autonomy: Autonomy | None,
        config: BurnguardConfig | None = None,
    ) -> None:
        self.incidents = list(incidents)
        self.engine = Engine(config, autonomy=autonomy)
        self.anomalies: list[Anomaly] = []
        self.kills: dict[str, float] = {}
        self.spent_by_root: dict[str, float] = {}
        self.saved_usd = 0.0
        self.events = 0
        self.sim_ts = 0.0
        self._incident_roots = {i.root_task_id for i in self.incidents if i.root_task_id}

    def feed(self, event: dict[str, Any]) -> list[Anomaly]:
        """Run one simulated event through the engine; return (and record) every anomaly it led to,
        those of halting a killed task included."""
        root = event.get("root_task_id") or event["task_id"]
        self.sim_ts = float(event["ts"])
        killed_at = self.kills.get(root)
        if killed_at is not None and self.sim_ts > killed_at + HALT_LATENCY_S:
            self.saved_usd += float(event.get("cost_usd") or 0.0)
            return []
        self.events += 1
        emitted = self._process(event)
        if root in self._incident_roots:
            self.spent_by_root[root] = self.spent_by_root.get(root, 0.0) + float(event.get("cost_usd") or 0.0)
        i = 0
        while i < len(emitted):  # a halt's own anomalies may kill again
            anomaly = emitted[i]
            if anomaly.action is Action.KILL and anomaly.scope.get("root_task_id"):
                emitted.extend(self._halt(anomaly, event))
            i += 1
        self.anomalies.extend(emitted)
        return emitted

    def _process(self, event: dict[str, Any]) -> list[Anomaly]:
        found, reason = self.engine.process_obj(event)
        if reason is not None:
            raise RuntimeError(f"the simulator produced an invalid event: {reason}")
        return list(found)

    def _halt(self, anomaly: Anomaly, event: dict[str, Any]) -> list[Anomaly]:
        """The killed task reports ``outcome: killed``; return what the engine makes of it."""
        root = anomaly.scope["root_task_id"]
        if root in self.kills:
            return []
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
        return self._process(finished)

    def finish(self) -> list[Anomaly]:
        """The fleet is over: let the engine's clock pass the lateness window; return (and record)
        what that emits (the last resolutions)."""
        emitted = list(self.engine.advance_to(self.engine.max_ts + self.engine.config.lateness_s))
        self.anomalies.extend(emitted)
        return emitted

    def scorecard(self, *, scope_only: bool = False) -> Scorecard:
        """This run against its incidents (``scope_only``: see :func:`burnguard.scorecard.score_run`)."""
        return score_run(self.incidents, self.anomalies, self.spent_by_root, scope_only=scope_only)

    def close(self) -> Scorecard:
        self.finish()
        return self.scorecard()


class DemoRun(HaltingRun):
    """One pass of a simulated fleet (:attr:`sim`) through the engine, halting killed tasks.

    ``hours``, ``seed`` and ``scale`` shape the fleet (every default incident injected); the rest is
    :class:`HaltingRun`'s.
    """

    def __init__(
        self,
        *,
        hours: float,
        seed: int,
        autonomy: Autonomy | None,
        scale: float = 1.0,
        config: BurnguardConfig | None = None,
    ) -> None:
        from burnguard.simulator import DEFAULT_INCIDENTS, FleetSimulator

        self.sim = FleetSimulator(seed=seed, hours=hours, scale=scale, incidents=DEFAULT_INCIDENTS)
        super().__init__(self.sim.incidents, autonomy=autonomy, config=config)
        self.sim_ts = self.sim.start_ts


def simulate_and_detect(
    *,
    hours: float = 48.0,
    seed: int = 7,
    autonomy: Autonomy | None = Autonomy.ACT,
    config: BurnguardConfig | None = None,
) -> tuple[DemoRun, Scorecard]:
    """The demo without a screen (for tests and benchmarks)."""
    run = DemoRun(hours=hours, seed=seed, autonomy=autonomy, config=config)
    for event in run.sim.events():
        run.feed(event)
    return run, run.close()


class _AlertPreview:
    """What would reach Slack and PagerDuty: the default alerting pipeline in event time, printed."""

    def __init__(self, console: Console) -> None:
        config = load_alerting_config(None)
        self.pipeline = AlertPipeline(config)
        self.receiver = ConsoleReceiver(console, config=config)

    def take(self, anomalies: list[Anomaly], now: float) -> None:
        for a in anomalies:
            self.receiver.show(self.pipeline.process(a, now=max(now, a.ts)))
        due = self.pipeline.next_flush_at()
        if due is not None and due <= now:
            self.receiver.show(self.pipeline.flush(now))

    def drain(self, until: float) -> None:
        """Run the grouping timers on to ``until`` (epoch seconds)."""
        while (due := self.pipeline.next_flush_at()) is not None and due <= until:
            self.receiver.show(self.pipeline.flush(due))

    def still_firing(self) -> list[str]:
        """The dedup keys of the groups notified as firing and never resolved (still open at the end)."""
        return sorted(g.dedup_key for g in self.pipeline.groups.values() if g.log.firing)


def run_demo(
    *,
    hours: float,
    seed: int,
    pace_s: float,
    autonomy: Autonomy | None,
    out: IO[bytes] | None,
    alerts: bool = False,
    config: BurnguardConfig | None = None,
    screen: Console | None = None,
) -> bool:
    """Run the demo on ``screen`` (default: stdout); every anomaly also goes to ``out`` (JSON lines)
    when given (the caller opens and closes it). True when every incident was detected and no kill
    was wrong."""
    console = screen or Console()
    live_screen = console.is_terminal
    run = DemoRun(hours=hours, seed=seed, autonomy=autonomy, config=config)
    preview = _AlertPreview(console) if alerts else None
    span = max(1.0, hours * 3600)
    shown = autonomy.value if autonomy is not None else "from the config" if config is not None else "default"
    console.print(
        f"[bold]burnguard demo[/]: {hours:g} h of a simulated fleet ({len(run.sim.incidents)} injected incidents), "
        f"autonomy [bold]{shown}[/], no broker, no network."
    )
    recent: deque[Anomaly] = deque(maxlen=64)
    started = time.monotonic()
    sink = out

    def emit(found: list[Anomaly]) -> None:
        if preview is not None:
            preview.take(found, run.sim_ts)
        for a in found:
            if a.severity is not Severity.INFO:
                recent.append(a)
            if sink is not None:
                sink.write(a.to_json() + b"\n")
            if not live_screen and a.status is AnomalyStatus.FIRING and a.severity is Severity.CRITICAL:
                console.print(f"{day_time(a.ts)} [red]{a.severity.value}[/] {a.action.value}: {a.summary}")

    try:
        live = Live(LiveView(run, recent, 0), console=console, refresh_per_second=4, transient=False)
        with live if live_screen else contextlib.nullcontext():
            for i, event in enumerate(run.sim.events()):
                emit(run.feed(event))
                if i % 2000 == 0:
                    if live_screen:
                        live.update(LiveView(run, recent, time.monotonic() - started))
                    ahead = pace_s * (run.sim_ts - run.sim.start_ts) / span - (time.monotonic() - started)
                    if live_screen and ahead > 0:
                        time.sleep(min(ahead, 0.5))
            emit(run.finish())
            if preview is not None:
                preview.drain(run.sim_ts + _ALERTS_AFTER_S)
            if live_screen:
                live.update(LiveView(run, recent, time.monotonic() - started), refresh=True)
    finally:
        if sink is not None:
            sink.flush()
    scorecard = run.scorecard()
    console.print(scorecard.table(console.width))
    console.print(scorecard.false_alert_list())
    stats = run.engine.stats
    resolved = sum(1 for a in run.anomalies if a.status is AnomalyStatus.RESOLVED)
    console.print(
        f"{run.events:,} events, ${stats.spend_usd:,.2f} spent; {stats.anomalies} anomalies fired, {resolved} resolved "
        f"({time.monotonic() - started:.1f} s).\n"
        f"{len(run.kills)} kills: ${run.saved_usd:,.2f} never spent thanks to them."
    )
    verdict = (
        "[green]every incident detected, no false kill[/]"
        if scorecard.ok
        else "[red]an incident was missed or a kill was wrong[/]"
    )
    console.print(verdict)
    if preview is not None:
        console.print(f"{len(preview.receiver.sent)} notifications would have been sent to Slack and PagerDuty.")
        if still := preview.still_firing():
            console.print(f"Still firing when the fleet ended (no resolve sent yet): {', '.join(still)}")
    return scorecard.ok
