"""End-to-end latency of one burnguard worker: event produced → anomaly on ``burnguard.anomalies``.

Run: ``.venv/bin/python benchmarks/pipeline_latency.py`` (about three minutes). It starts a private
broker (``scripts/kafka-local``; ``BURNGUARD_KAFKA_BOOTSTRAP`` if set instead) and, for each offered
load in ``--rates``, a fresh ``burnguard worker`` process (every detector on, fresh app id and
topics, 8 partitions), then for ``--warmup`` + ``--duration`` seconds produces:

- background load: a simulated fleet (the demo's workflows and incidents) at the offered rate,
  keyed by root task as agents send them, each event stamped with the time it is sent: event time
  runs with the wall clock, as in production (replaying the 48-hour fleet in seconds would run
  the engine's once-a-minute event-time tick thousands of times a second);
- probes, every ``--probe-every`` seconds: a root task with a $1.00 budget whose one step costs
  $0.90, so the step crosses ``task_budget``'s 80 % warning on arrival (a rule: no warm-up, no
  baseline), spread over 8 workflows so they cross different partitions.

The latency of a probe is the time from handing its step to the producer (its Kafka timestamp)
to the arrival of its ``task_budget`` anomaly at a consumer of the anomalies topic, on the same
host clock; only probes sent after the warm-up count. A worker that cannot keep up with the
offered load shows it as a latency that grows through the run (``first → last``) and as probes
that never arrive within ``--grace`` seconds after the load stops (``late``): then the
percentiles are lower bounds. ``achieved`` is the rate the load generator actually reached.

``--tree LABEL=DIR`` adds runs of the worker of another checkout (e.g. a ``git worktree``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kafka import REPO, fleet_events, kafka_broker, tag, worker_env

PARTITIONS = 8
PROBE_WORKFLOWS = 8


def probe_records(probe_id: str, ts: float, workflow: int) -> list[tuple[bytes, bytes]]:
    """A probe task's events (started with a $1 budget, one $0.90 step, finished), as records."""
    from streams.feed import encode_event

    base = {"tenant": "bench", "team": "latency", "workflow": f"probe-{workflow}", "task_id": probe_id}
    return [
        encode_event({**base, "event_id": f"{probe_id}#0", "ts": ts, "kind": "task_started", "budget_usd": 1.0}),
        encode_event(
            {**base, "event_id": f"{probe_id}#1", "ts": ts, "kind": "step", "category": "tool", "cost_usd": 0.9}
        ),
        encode_event({**base, "event_id": f"{probe_id}#2", "ts": ts, "kind": "task_finished", "outcome": "success"}),
    ]


class WorkerProcess:
    """``burnguard worker --no-web`` of ``tree`` as a subprocess, its output in a file."""

    def __init__(self, env: dict[str, str], tree: Path, log: Path) -> None:
        self.log = log
        full = {k: v for k, v in os.environ.items() if not k.startswith("BURNGUARD_")}
        full.update(env)
        full["PYTHONPATH"] = str(tree)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from burnguard.cli import app; app()", "worker", "--no-web"],
                env=full,
                cwd=tree,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def run_load(
    env: dict[str, str],
    events: list[dict[str, Any]],
    rate: float,
    warmup: float,
    duration: float,
    probe_every: float,
    grace: float,
    worker: WorkerProcess,
) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    from streams.feed import encode_event

    bootstrap = env["BURNGUARD_KAFKA_BOOTSTRAP"]
    events_topic, anomalies_topic = env["BURNGUARD_EVENTS_TOPIC"], env["BURNGUARD_ANOMALIES_TOPIC"]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await producer.start()
    await consumer.start()
    tps = [TopicPartition(anomalies_topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    sent: dict[str, float] = {}  # probe id -> produce time of its trigger (wall clock, s)
    arrived: dict[str, float] = {}  # probe id -> latency (s)
    produced: dict[str, float] = {}  # probe id -> its anomaly's Kafka timestamp - its trigger's (s)
    stop_reading = asyncio.Event()

    async def read_anomalies() -> None:
        while not stop_reading.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            now = time.time()
            for records in batches.values():
                for r in records:
                    a = orjson.loads(r.value)
                    root = a.get("scope", {}).get("root_task_id", "")
                    if a.get("detector") == "task_budget" and a.get("status") == "firing" and root in sent:
                        arrived.setdefault(root, now - sent[root])
                        produced.setdefault(root, r.timestamp / 1000 - sent[root])

    async def send_probe(probe_id: str, n: int) -> None:
        t = time.time()
        started, step, finished = probe_records(probe_id, t, n % PROBE_WORKFLOWS)
        await producer.send(events_topic, key=started[0], value=started[1])
        await producer.send(events_topic, key=step[0], value=step[1], timestamp_ms=int(t * 1000))
        sent[probe_id] = t
        await producer.send(events_topic, key=finished[0], value=finished[1])

    reader = asyncio.ensure_future(read_anomalies())
    run = tag()
    try:
        # wait for the worker: a probe a second until one comes back
        deadline = time.monotonic() + 120
        n = 0
        while not arrived:
            if worker.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not come up; see {worker.log}")
            await send_probe(f"ready-{run}-{n}", n)
            n += 1
            await asyncio.sleep(1.0)
        sent.clear()
        arrived.clear()
        produced.clear()
        # the load: the fleet at `rate`, a probe every `probe_every` s
        started = time.monotonic()
        total, i, probes = warmup + duration, 0, 0
        next_probe = started
        measured: list[str] = []
        window: dict[str, float] = {}
        while (elapsed := time.monotonic() - started) < total and i < len(events):
            if elapsed >= warmup and not window:
                window = {"t": time.monotonic(), "cpu": process_cpu_s(worker.proc.pid), "i": i + 3 * probes}
            due = min(len(events), int(elapsed * rate))
            now = time.time()
            while i < due:
                key, value = encode_event({**events[i], "ts": now})
                await producer.send(events_topic, key=key, value=value)
                i += 1
            if time.monotonic() >= next_probe:
                probe_id = f"probe-{run}-{probes}"
                await send_probe(probe_id, probes)
                if elapsed >= warmup:
                    measured.append(probe_id)
                probes += 1
                next_probe += probe_every
            await asyncio.sleep(0.002)
        achieved = i / (time.monotonic() - started)
        if window:
            wall = time.monotonic() - window["t"]
            cpu = process_cpu_s(worker.proc.pid) - window["cpu"]
            offered = i + 3 * probes - window["i"]  # the fleet's events and the probes' (three each)
            window = {"share": cpu / wall, "us_per_event": cpu / max(1, offered) * 1e6}
        await producer.flush()
        # let the probes in flight arrive
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p not in arrived for p in measured):
            await asyncio.sleep(0.1)
    finally:
        stop_reading.set()
        await reader
        await consumer.stop()
        await producer.stop()
    latencies = [arrived[p] for p in measured if p in arrived]
    third = max(1, len(measured) // 3)
    first = [arrived[p] for p in measured[:third] if p in arrived]
    last = [arrived[p] for p in measured[-third:] if p in arrived]
    return {
        "achieved": achieved,
        "probes": len(measured),
        "late": len(measured) - len(latencies),
        "latencies": latencies,
        "in_worker": [produced[p] for p in measured if p in produced],
        "worker_cpu": window.get("share", float("nan")),
        "worker_us": window.get("us_per_event", float("nan")),
        "first_p50": statistics.median(first) if first else float("nan"),
        "last_p50": statistics.median(last) if last else float("nan"),
    }


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system, all threads) of process ``pid`` so far, in seconds (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(bootstrap: str, tree: Path, events: list[dict[str, Any]], rate: float, args: Any) -> dict[str, Any]:
    from streams.settings import StreamSettings
    from streams.topics import ensure_topics

    env = worker_env(bootstrap, PARTITIONS)
    asyncio.run(ensure_topics(StreamSettings.from_env(env)))
    log = Path(tempfile.gettempdir()) / f"{env['BURNGUARD_APP_ID']}.log"
    worker = WorkerProcess(env, tree, log)
    try:
        needed = events[: int(rate * (args.warmup + args.duration)) + 1]
        result = asyncio.run(
            run_load(env, needed, rate, args.warmup, args.duration, args.probe_every, args.grace, worker)
        )
    finally:
        worker.stop()
        shutil.rmtree(env["BURNGUARD_DATA_DIR"], ignore_errors=True)
    if not args.keep_logs:
        log.unlink(missing_ok=True)
    return {**result, "log": str(log)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[5000.0, 1000.0], help="offered loads, events/s")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before probes count")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load with counted probes")
    parser.add_argument("--probe-every", type=float, default=0.05, help="seconds between probes")
    parser.add_argument("--grace", type=float, default=20.0, help="seconds to wait for probes after the load")
    parser.add_argument(
        "--tree", action="append", default=[], metavar="LABEL=DIR", help="also run the worker of another checkout"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the workers' logs (in the temp directory)")
    args = parser.parse_args()
    trees = [("worker", REPO)] + [
        (f"worker ({label})", Path(path).resolve()) for label, _, path in (t.partition("=") for t in args.tree)
    ]
    console = Console(width=None if sys.stdout.isatty() else 120)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    most = int(max(args.rates) * (args.warmup + args.duration)) + 1
    with console.status(f"simulating a fleet of {most:,} events"):
        events = fleet_events(most)
    rows = []
    with kafka_broker() as bootstrap:
        for label, tree in trees:
            for rate in args.rates:
                with console.status(f"{label} at {rate:,.0f} events/s"):
                    r = measure(bootstrap, tree, events, rate, args)
                rows.append((label, rate, r))
                if args.keep_logs:
                    console.print(f"  worker log: {r['log']}")
                lat = r["latencies"]
                console.print(
                    f"  {label} at {rate:,.0f}/s: p50 {percentile(lat, 0.5) * 1000 if lat else float('nan'):,.0f} ms,"
                    f" {r['late']} of {r['probes']} probes late"
                )
    load += " before, " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " after"
    table = Table(
        title=f"end-to-end latency, event produced -> anomaly arrived ({args.duration:g} s of probes every "
        f"{args.probe_every * 1000:g} ms, after {args.warmup:g} s of warm-up)",
        title_justify="left",
    )
    columns = (
        "worker",
        "offered/s",
        "achieved/s",
        "probes",
        "late",
        "p50 ms",
        "p99 ms",
        "max ms",
        "first → last p50",
        "p50 to produced",
        "worker CPU",
    )
    for col in columns:
        table.add_column(col, justify="left" if col == "worker" else "right")
    for label, rate, r in rows:
        lat = r["latencies"]
        bound = "≥ " if r["late"] else ""

        def ms(q: float, lat: list[float] = lat, bound: str = bound) -> str:
            return f"{bound}{percentile(lat, q) * 1000:,.0f}" if lat else "-"

        table.add_row(
            label,
            f"{rate:,.0f}",
            f"{r['achieved']:,.0f}",
            str(r["probes"]),
            str(r["late"]),
            ms(0.5),
            ms(0.99),
            ms(1.0),
            f"{r['first_p50'] * 1000:,.0f} → {r['last_p50'] * 1000:,.0f} ms",
            f"{statistics.median(r['in_worker']) * 1000:,.0f} ms" if r["in_worker"] else "-",
            f"{r['worker_cpu']:.0%} ({r['worker_us']:,.0f} µs/ev)",
        )
    console.print(table)
    console.print(
        f"late = no anomaly within {args.grace:g} s after the load stopped (then the percentiles are lower bounds); "
        "to produced = until the worker handed the anomaly to Kafka (its record's timestamp); worker CPU = "
        "its CPU time over the probed span, as a share of one core and per event offered. "
        f"load average {load}. target: p99 < 500 ms at 5,000 events/s."
    )


if __name__ == "__main__":
    main()
