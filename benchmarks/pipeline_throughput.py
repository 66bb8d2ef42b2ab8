"""Events per second of one burnguard worker, next to a bare aiokafka consumer and a bare Faust agent.

Run: ``.venv/bin/python benchmarks/pipeline_throughput.py`` (a few minutes). It starts a private
broker (``scripts/kafka-local`` in a temporary directory; ``BURNGUARD_KAFKA_BOOTSTRAP`` if set
instead), preloads N events of a simulated fleet into a fresh topic (8 partitions, keyed by root
task as agents send them), then times how fast each consumer drains that topic from the
beginning, each run in a fresh subprocess with its own consumer group, the median of ``--runs``:

- ``aiokafka`` — a bare ``AIOKafkaConsumer`` that only decodes each value with ``orjson``: the ceiling;
- ``faust``    — a bare Faust agent that only counts the records: Faust's own floor;
- ``worker``   — the burnguard worker as ``burnguard worker`` runs it (``streams.worker.run_worker``),
  every detector on: routing by workflow, the internal topic, detection with one engine per
  partition, checkpoints into the changelogged table, anomalies and task summaries produced;
- ``frames``   — the same worker with ``BURNGUARD_FRAMES=1``: one frame per destination partition
  per ingest batch on the internal topic instead of one record per event (schemas.frames).

A run's clock starts when the first record arrives (connecting, joining the group and creating
topics are not counted) and stops when the last one has been processed (for the worker: folded
into an engine). ``÷ aiokafka`` compares with the ceiling of the same run; machines are noisy.

``--tree LABEL=DIR`` adds a worker row running the code of another checkout (e.g. a ``git
worktree`` of a branch): a before/after comparison in one run, on one broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kafka import REPO, fleet_records, kafka_broker, preload, run_child, tag, worker_env

PARTITIONS = 8

_AIOKAFKA = r"""
import asyncio, json, resource, sys, time
import orjson
from aiokafka import AIOKafkaConsumer
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
bootstrap, topic, group, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

async def main():
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen, first = 0, None
    try:
        while seen < n:
            batches = await consumer.getmany(timeout_ms=500)
            if first is None and batches:
                first, cpu0 = time.perf_counter(), cpu()
            for records in batches.values():
                for r in records:
                    orjson.loads(r.value)
                seen += len(records)
        done, cpu1 = time.perf_counter(), cpu()
    finally:
        await consumer.stop()
    print("BENCH-RESULT", json.dumps({"n": seen, "s": done - first, "cpu_s": cpu1 - cpu0}))

asyncio.run(main())
"""

_FAUST = r"""
import json, os, resource, signal, sys, time
import faust
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
bootstrap, topic, app_id, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
app = faust.App(app_id, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
                consumer_auto_offset_reset="earliest", autodiscover=False)
source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
marks = {"seen": 0}

@app.agent(source)
async def count(stream):
    async for _ in stream:
        if not marks["seen"]:
            marks["first"], marks["cpu"] = time.perf_counter(), cpu()
        marks["seen"] += 1
        if marks["seen"] == n:
            result = {"n": n, "s": time.perf_counter() - marks["first"], "cpu_s": cpu() - marks["cpu"]}
            print("BENCH-RESULT", json.dumps(result), flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

# log level info, as the worker's default: at warning or above Faust's spinner sets the root logger
# to DEBUG and every aiokafka debug record is built, which would slow Faust, not measure it
faust.Worker(app, loglevel="info", quiet=True, redirect_stdouts=False).execute_from_commandline()
"""

_WORKER = r"""
import json, os, resource, signal, sys, time
import streams.worker
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
from streams.settings import StreamSettings
n = int(sys.argv[1])
create_app = streams.worker.create_app

def create_measured_app(*args, **kwargs):
    # the worker's own app, plus a timer that notes when the first event was routed and when the
    # last one was folded into an engine (10 ms resolution)
    app = create_app(*args, **kwargs)
    stats = app.burnguard_pipeline.stats
    marks = {}

    @app.timer(0.01)
    async def watch():
        now = time.perf_counter()
        if "first" not in marks and stats.routed:
            marks["first"], marks["cpu"] = now, cpu()
        if "done" not in marks and stats.events + stats.dead_letters + stats.redelivered >= n:
            marks["done"] = now
            result = {"n": stats.events, "s": now - marks["first"], "cpu_s": cpu() - marks["cpu"],
                      "anomalies": stats.anomalies,
                      "summaries": stats.summaries, "batches": stats.batches,
                      "checkpoint_mb": stats.checkpoint_bytes / 1e6}
            print("BENCH-RESULT", json.dumps(result), flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

    return app

streams.worker.create_app = create_measured_app
streams.worker.run_worker(StreamSettings.from_env())
"""


def measure(kind: str, bootstrap: str, topic: str, n: int, runs: int, tree: Path) -> dict[str, Any]:
    """The median of ``runs`` fresh-process runs of one consumer over the preloaded topic."""
    samples = []
    for _ in range(runs):
        if kind == "aiokafka":
            r = run_child(_AIOKAFKA, [bootstrap, topic, f"bench-{tag()}", str(n)])
        elif kind == "faust":
            r = run_child(_FAUST, [bootstrap, topic, f"bench-{tag()}", str(n)])
        else:
            env = worker_env(bootstrap, PARTITIONS, events_topic=topic, frames="1" if kind == "frames" else "0")
            try:
                r = run_child(_WORKER, [str(n)], env={**env, "PYTHONPATH": str(tree)}, cwd=tree)
            finally:
                shutil.rmtree(env["BURNGUARD_DATA_DIR"], ignore_errors=True)
        samples.append(r)
    times = sorted(x["s"] for x in samples)
    s = statistics.median(times)
    median_run = min(samples, key=lambda x: abs(x["s"] - s))
    cpu_us = statistics.median(x["cpu_s"] for x in samples) / n * 1e6
    return {**median_run, "s": s, "eps": n / s, "spread": (times[-1] - times[0]) / s, "cpu_us": cpu_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per consumer (the median is reported)")
    parser.add_argument("--events", type=int, default=100_000, help="events preloaded into the topic")
    parser.add_argument(
        "--only", nargs="*", choices=["aiokafka", "faust", "worker", "frames"], help="consumers to run"
    )
    parser.add_argument(
        "--tree", action="append", default=[], metavar="LABEL=DIR", help="also time the worker of another checkout"
    )
    args = parser.parse_args()
    kinds = args.only or ["aiokafka", "faust", "worker", "frames"]
    rows: list[tuple[str, str, Path]] = [(k, k, REPO) for k in kinds]
    for spec in args.tree:
        label, _, path = spec.partition("=")
        rows.append((f"worker ({label})", "worker", Path(path).resolve()))

    console = Console(width=None if sys.stdout.isatty() else 120)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    with console.status(f"simulating a fleet of {args.events:,} events"):
        records = fleet_records(args.events)
    n = len(records)
    results: dict[str, dict[str, Any]] = {}
    with kafka_broker() as bootstrap:
        topic = f"bench-{tag()}-events"
        with console.status(f"preloading {n:,} events into {topic} ({PARTITIONS} partitions)"):
            took = asyncio.run(preload(bootstrap, topic, records, PARTITIONS))
        console.print(f"preloaded {n:,} events in {took:.1f} s at {bootstrap}")
        for label, kind, tree in rows:
            with console.status(f"{label}: {args.runs} runs"):
                results[label] = measure(kind, bootstrap, topic, n, args.runs, tree)
            console.print(f"  {label}: {results[label]['eps']:,.0f} events/s")
    load += " before, " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " after"

    table = Table(
        title=f"pipeline throughput: {n:,} events, {PARTITIONS} partitions, median of {args.runs} runs",
        title_justify="left",
    )
    for col in ("consumer", "events/s", "seconds", "÷ aiokafka", "spread", "CPU µs/event", "anomalies", "checkpointed"):
        table.add_column(col, justify="left" if col == "consumer" else "right")
    base = results.get("aiokafka")
    for label, r in results.items():
        table.add_row(
            label,
            f"{r['eps']:,.0f}",
            f"{r['s']:.2f}",
            f"{r['eps'] / base['eps']:.3f}" if base else "-",
            f"{r['spread']:.0%}",
            f"{r['cpu_us']:,.1f}",
            f"{r['anomalies']:,}" if "anomalies" in r else "",
            f"{r['checkpoint_mb']:.0f} MB" if "checkpoint_mb" in r else "",
        )
    console.print(table)
    console.print(
        "spread = (slowest - fastest) / median; CPU µs/event = the consumer process's CPU time (all its "
        "threads) over the timed span, per event: what the machine's other load does not change. "
        f"target: >= 20,000 events/s per worker. {os.cpu_count()} CPUs, shared with the broker; "
        f"load average {load}."
    )


if __name__ == "__main__":
    main()
