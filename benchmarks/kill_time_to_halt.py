"""Time to halt through the real broker: triggering event produced → signed command → listener's ack.

Run: ``.venv/bin/python benchmarks/kill_time_to_halt.py`` (about two minutes). It starts a private
broker (``scripts/kafka-local``; ``BURNGUARD_KAFKA_BOOTSTRAP`` if set instead) and, for each offered
background load in ``--rates`` (the default ends with 0: the same run's baseline without load), a
fresh ``burnguard worker`` (autonomy ``act``, a kill key, 8 partitions), then for ``--warmup`` +
``--duration`` seconds produces the demo fleet at the offered rate (event time = wall clock, as in
``pipeline_latency.py``) and, every ``--probe-every`` seconds, a runaway probe: a root task with a
$1.00 budget whose one step costs $1.10, so ``task_budget`` goes critical on arrival and the policy
kills it. A listener in this process plays the agent: it reads the kill-switch topic, verifies the
signature and expiry with the key, and acknowledges at once (``halted_at`` = when it verified).

Per probe sent after the warm-up: **event → command** (the command's ``issued_at`` − the probe
step's send time), **command → listener** (arrival at the listener − ``issued_at``), and **event →
halt** (``halted_at`` − send time), all on this host's clock; plus, as a cross-check, the
``time_to_halt_s`` the worker itself recorded in the anomaly's resolution. ``late`` probes got no
command within ``--grace`` seconds after the load stopped (the percentiles are then lower bounds).
Target (issue 5): event → halt under 1 s at 5,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
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
from pipeline_latency import WorkerProcess, percentile

PARTITIONS = 8
KEY = "bench-kill-key"


def probe_records(probe_id: str, ts: float, workflow: int) -> list[tuple[bytes, bytes]]:
    """A runaway probe: started with a $1 budget, then one $1.10 step (critical, killed); never finished."""
    from streams.feed import encode_event

    base = {"tenant": "bench", "team": "halt", "workflow": f"probe-{workflow}", "task_id": probe_id}
    return [
        encode_event({**base, "event_id": f"{probe_id}#0", "ts": ts, "kind": "task_started", "budget_usd": 1.0}),
        encode_event(
            {**base, "event_id": f"{probe_id}#1", "ts": ts, "kind": "step", "category": "tool", "cost_usd": 1.1}
        ),
    ]


async def run_load(
    env: dict[str, str], events: list[dict[str, Any]], rate: float, args: Any, worker: WorkerProcess
) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    from schemas.killswitch import KillAck, KillCommand
    from streams.feed import encode_event

    bootstrap = env["BURNGUARD_KAFKA_BOOTSTRAP"]
    events_topic = env["BURNGUARD_EVENTS_TOPIC"]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    listener = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    resolutions = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    await producer.start()
    await listener.start()
    await resolutions.start()
    for consumer, topic in (
        (listener, env["BURNGUARD_KILLSWITCH_TOPIC"]),
        (resolutions, env["BURNGUARD_ANOMALIES_TOPIC"]),
    ):
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
    sent: dict[str, float] = {}  # probe (root task) -> send time of its runaway step
    halts: dict[str, dict[str, float]] = {}  # probe -> times
    recorded: dict[str, float] = {}  # probe -> the worker's own time_to_halt_s
    decided: dict[str, float] = {}  # probe -> its kill anomaly's Kafka timestamp
    issued: dict[str, float] = {}  # probe -> its command's issued_at
    rejected = 0
    stop = asyncio.Event()

    async def listen() -> None:
        nonlocal rejected
        while not stop.is_set():
            for records in (await listener.getmany(timeout_ms=20)).values():
                for r in records:
                    arrived = time.time()
                    command = KillCommand.model_validate_json(r.value)
                    root = command.target.root_task_id or ""
                    if command.verify([KEY.encode()], arrived) is not None:
                        rejected += 1
                        continue
                    if root not in sent or root in halts:
                        continue
                    halted = time.time()
                    issued[root] = command.issued_at
                    ack = KillAck(command_id=command.command_id, halted_at=halted, halted_by="bench-listener")
                    await producer.send(
                        env["BURNGUARD_KILL_ACKS_TOPIC"],
                        key=command.command_id.encode(),
                        value=ack.model_dump_json(by_alias=True).encode(),
                    )
                    halts[root] = {
                        "event_to_command": command.issued_at - sent[root],
                        "command_to_listener": arrived - command.issued_at,
                        "event_to_halt": halted - sent[root],
                    }

    async def read_resolutions() -> None:
        while not stop.is_set():
            for records in (await resolutions.getmany(timeout_ms=100)).values():
                for r in records:
                    a = orjson.loads(r.value)
                    root = a.get("scope", {}).get("root_task_id", "")
                    if a.get("status") == "resolved" and "time_to_halt_s" in a.get("evidence", {}):
                        recorded[root] = a["evidence"]["time_to_halt_s"]
                    elif a.get("status") == "firing" and a.get("action") == "kill":
                        decided[root] = r.timestamp / 1000  # when the worker handed the anomaly to Kafka

    async def send_probe(probe_id: str, n: int) -> None:
        t = time.time()
        (k0, v0), (k1, v1) = probe_records(probe_id, t, n % 8)
        await producer.send(events_topic, key=k0, value=v0)
        await producer.send(events_topic, key=k1, value=v1)
        sent[probe_id] = t

    tasks = [asyncio.ensure_future(listen()), asyncio.ensure_future(read_resolutions())]
    run = tag()
    try:
        deadline = time.monotonic() + 120
        n = 0
        while not halts:  # wait for the worker: a probe a second until one is halted
            if worker.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not come up; see {worker.log}")
            await send_probe(f"ready-{run}-{n}", n)
            n += 1
            await asyncio.sleep(1.0)
        started = time.monotonic()
        i, probes, next_probe = 0, 0, started
        measured: list[str] = []
        while (elapsed := time.monotonic() - started) < args.warmup + args.duration:
            due = min(len(events), int(elapsed * rate))
            now = time.time()
            for _ in range(min(due - i, 250)):  # in slices, so the probes keep their pace when the load lags
                key, value = encode_event({**events[i], "ts": now})
                await producer.send(events_topic, key=key, value=value)
                i += 1
            if time.monotonic() >= next_probe:
                probe_id = f"probe-{run}-{probes}"
                await send_probe(probe_id, probes)
                if elapsed >= args.warmup:
                    measured.append(probe_id)
                probes += 1
                next_probe += args.probe_every
            await asyncio.sleep(0.002)
        achieved = i / (time.monotonic() - started)
        await producer.flush()
        deadline = time.monotonic() + args.grace
        while time.monotonic() < deadline and any(p not in halts or p not in recorded for p in measured):
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for client in (listener, resolutions):
            await client.stop()
        await producer.stop()
    done = [p for p in measured if p in halts]
    return {
        "achieved": achieved,
        "probes": len(measured),
        "late": len(measured) - len(done),
        "rejected": rejected,
        "times": {k: [halts[p][k] for p in done] for k in ("event_to_command", "command_to_listener", "event_to_halt")},
        "recorded": [recorded[p] for p in done if p in recorded],
        "anomaly_to_command": [issued[p] - decided[p] for p in done if p in decided],
    }


def measure(bootstrap: str, events: list[dict[str, Any]], rate: float, args: Any) -> dict[str, Any]:
    from streams.settings import StreamSettings
    from streams.topics import ensure_topics

    t = tag()
    env = worker_env(
        bootstrap,
        PARTITIONS,
        killswitch_topic=f"bench-{t}-killswitch",
        kill_acks_topic=f"bench-{t}-killswitch-acks",
        kill_proposals_topic=f"bench-{t}-kill-proposals",
        kill_internal_topic=f"bench-{t}-kill-issued",
        autonomy="act",
        kill_keys=KEY,
    )
    asyncio.run(ensure_topics(StreamSettings.from_env(env)))
    log = Path(tempfile.gettempdir()) / f"{env['BURNGUARD_APP_ID']}.log"
    worker = WorkerProcess(env, REPO, log)
    try:
        needed = events[: int(rate * (args.warmup + args.duration)) + 1]
        result = asyncio.run(run_load(env, needed, rate, args, worker))
    finally:
        worker.stop()
        shutil.rmtree(env["BURNGUARD_DATA_DIR"], ignore_errors=True)
    key_logged = KEY in log.read_text(errors="replace")
    if not args.keep_logs:
        log.unlink(missing_ok=True)
    return {**result, "log": str(log), "key_logged": key_logged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[5000.0, 1000.0, 0.0], help="background loads, events/s"
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before probes count")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load with counted probes")
    parser.add_argument("--probe-every", type=float, default=0.5, help="seconds between runaway probes")
    parser.add_argument("--grace", type=float, default=20.0, help="seconds to wait for halts after the load")
    parser.add_argument("--keep-logs", action="store_true", help="keep the workers' logs (in the temp directory)")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 140)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    most = int(max(args.rates) * (args.warmup + args.duration)) + 1
    with console.status(f"simulating a fleet of {most:,} events"):
        events = fleet_events(max(1, most))
    rows = []
    with kafka_broker() as bootstrap:
        for rate in args.rates:
            with console.status(f"background load {rate:,.0f} events/s"):
                rows.append((rate, measure(bootstrap, events, rate, args)))
    load += " before, " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " after"
    table = Table(
        title=f"time to halt, runaway step produced -> listener's ack ({args.duration:g} s of probes every "
        f"{args.probe_every * 1000:g} ms after {args.warmup:g} s of warm-up; ms)",
        title_justify="left",
    )
    columns: tuple[str, ...] = ("offered/s", "achieved/s", "probes", "late", "event→command p50/p99")
    columns += ("anomaly→command p50/p99", "command→listener p50/p99")
    for col in (*columns, "event→halt p50/p99", "worker's record p50/p99", "key in log"):
        table.add_column(col, justify="right")
    for rate, r in rows:
        bound = "≥ " if r["late"] else ""

        def pair(values: list[float], bound: str = bound) -> str:
            if not values:
                return "-"
            return f"{bound}{percentile(values, 0.5) * 1000:,.0f} / {bound}{percentile(values, 0.99) * 1000:,.0f}"

        times = r["times"]
        table.add_row(
            f"{rate:,.0f}",
            f"{r['achieved']:,.0f}",
            str(r["probes"]),
            str(r["late"]),
            pair(times["event_to_command"]),
            pair(r["anomaly_to_command"]),
            pair(times["command_to_listener"]),
            pair(times["event_to_halt"]),
            pair(r["recorded"]),
            "YES" if r["key_logged"] else "no",
        )
    console.print(table)
    console.print(
        f"late = no command within {args.grace:g} s after the load stopped (then the percentiles are lower bounds); "
        "offered 0 = the same run's baseline without background load; anomaly→command = the kill switch's own "
        "hop (the kill anomaly's Kafka timestamp to the command's issued_at); the worker's record = "
        f"time_to_halt_s in the resolution it published. load average {load}. "
        "target: event → halt < 1 s at 5,000 events/s."
    )


if __name__ == "__main__":
    main()
