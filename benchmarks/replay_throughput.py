"""Events per second of ``burnguard replay`` next to the time to merely parse the same file.

Run: ``.venv/bin/python benchmarks/replay_throughput.py`` (about a minute). For each input it
measures, in fresh subprocesses, the median of N runs of:

- ``json``   — read the lines and ``orjson.loads`` each: the raw ceiling (reading included in every stage);
- ``parse``  — read and validate each line into a ``CostEvent``: what any consumer must do;
- ``replay`` — the full engine, every detector on (``replay_file``, anomalies not kept);

with each one's peak RSS. Ratios are against ``parse`` of the same run, since machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
REAL = (
    Path(os.environ.get("BURNGUARD_SHARED", REPO.parent / "shared"))
    / "data"
    / "mini-swe-agent-swebench.events.jsonl.gz"
)

_CHILD = r"""
import gzip, resource, sys, time, json
mode, path = sys.argv[1], sys.argv[2]
opener = gzip.open if path.endswith(".gz") else open
n = 0
with opener(path, "rb") as fh:  # streamed, as replay reads it: peak RSS is the stage's own memory
    if mode == "json":
        import orjson
        t = time.perf_counter()
        for line in fh:
            orjson.loads(line)
            n += 1
    elif mode == "parse":
        from schemas.events import CostEvent
        t = time.perf_counter()
        for line in fh:
            CostEvent.model_validate_json(line)
            n += 1
    else:
        from detectors.engine import Engine
        engine = Engine()
        t = time.perf_counter()
        for line in fh:
            engine.process_bytes(line)
            n += 1
        engine.advance_to(engine.max_ts + engine.config.lateness_s)
    dt = time.perf_counter() - t
print(json.dumps({"n": n, "s": dt, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _measure(mode: str, path: Path, runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, mode, str(path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    s = statistics.median(x["s"] for x in samples)
    return {
        "n": samples[0]["n"],
        "s": s,
        "eps": samples[0]["n"] / s,
        "rss_mb": max(x["rss_mb"] for x in samples),
    }


def _simulated(target_events: int, tmp: Path) -> Path:
    from burnguard.simulator import DEFAULT_INCIDENTS, FleetSimulator, write_jsonl

    probe = FleetSimulator(seed=11, hours=48.0, incidents=DEFAULT_INCIDENTS)
    scale = max(0.1, target_events / max(1, probe.approx_event_count()))
    path = tmp / "fleet.jsonl"
    write_jsonl(FleetSimulator(seed=11, hours=48.0, scale=scale, incidents=DEFAULT_INCIDENTS).events(), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=300_000, help="size of the simulated fleet")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"burnguard replay throughput (median of {args.runs} runs)", title_justify="left")
    for col in ("input", "events", "stage", "events/s", "seconds", "x parse time", "peak RSS"):
        table.add_column(col, justify="left" if col in ("input", "stage") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [("real trace", REAL)]
        with console.status(f"simulating a ~{args.events:,}-event fleet"):
            inputs.append(("simulated fleet", _simulated(args.events, Path(tmp))))
        for label, path in inputs:
            results = {}
            for mode in ("json", "parse", "replay"):
                with console.status(f"{label}: {mode}"):
                    results[mode] = _measure(mode, path, args.runs)
            for mode, r in results.items():
                table.add_row(
                    label,
                    f"{r['n']:,}",
                    mode,
                    f"{r['eps']:,.0f}",
                    f"{r['s']:.2f}",
                    f"{r['s'] / results['parse']['s']:.2f}x",
                    f"{r['rss_mb']:.0f} MB",
                )
    console.print(table)
    console.print("targets: replay >= 100,000 events/s and <= 3x the parse time")


if __name__ == "__main__":
    main()
