"""Memory per active task: one Engine holding 1M root tasks in flight, next to simpler baselines.

Run: ``.venv/bin/python benchmarks/task_memory.py`` (two to three minutes; no Kafka). Each row is a
fresh subprocess that builds N entries and reports how much its resident memory grew (RSS, from
``/proc/self/statm``, after a garbage collection) divided by N:

- ``task ids``   — a dict of N task-id strings (``{id: None}``): the least any per-task state costs;
- ``bare dicts`` — N small dicts (id, scope, cost, steps, start), keyed by id: a naive ledger;
- ``TaskState``  — N :class:`~detectors.ledger.TaskState` objects keyed by id: the ledger alone;
- ``engine``     — an :class:`~detectors.engine.Engine` with every detector on, fed N root tasks
  (``task_started`` with a budget, then one priced model step; none finishes) spread over 100
  workflows of 20 teams, as validated ``CostEvent`` s. The workflows' detectors are created by a
  warm-up before the first reading, so the growth is the tasks' own. Event time stays within 50 s,
  so no task expires.

For the engine it also reports the checkpoint bytes per task (``orjson`` of
:meth:`TaskState.to_dict`, as :meth:`Engine.snapshot` and the Kafka worker's table entries carry
them), and, in a second run with ``tracemalloc`` on (``--trace-tasks`` tasks), where the bytes of a
task are allocated (file and line), which says what would shrink it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import gc, json, sys, time
mode, n = sys.argv[1], int(sys.argv[2])
trace = len(sys.argv) > 3 and sys.argv[3] == "trace"
T0 = 1_793_606_400.0
PAGE = 4096

def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE

def task_id(i: int) -> str:
    return f"wf-{i % 100:02d}-{i:012x}"  # 18 characters, like the simulator's "pr-review-a3a5080795"

def events(i: int, ts: float):
    # a root task in flight: started with a $1 budget, one priced model step
    base = {"tenant": "acme", "team": f"team-{i % 20}", "workflow": f"wf-{i % 100:02d}", "agent": "agent-x",
            "task_id": task_id(i)}
    yield {**base, "event_id": f"{task_id(i)}#0", "ts": ts, "kind": "task_started", "budget_usd": 1.0}
    yield {**base, "event_id": f"{task_id(i)}#1", "ts": ts + 0.5, "kind": "step", "category": "model",
           "name": "gpt-4o-mini", "provider": "openai", "input_tokens": 1200, "output_tokens": 150, "cost_usd": 0.0004}

result = {}
if mode == "ids":
    before = rss()
    held = {task_id(i): None for i in range(n)}
elif mode == "dicts":
    before = rss()
    held = {}
    for i in range(n):
        tid = task_id(i)
        held[tid] = {"root_task_id": tid, "team": f"team-{i % 20}", "workflow": f"wf-{i % 100:02d}",
                     "cost_usd": 0.0004 * (i % 7), "steps": 1, "started_ts": T0 + i * 50.0 / n}
else:
    from schemas.events import CostEvent
    if mode == "taskstate":
        from detectors.ledger import TaskState
        before = rss()
        held = {}
        for i in range(n):
            started, step = (CostEvent.model_validate(e) for e in events(i, T0 + i * 50.0 / n))
            task = held[started.root] = TaskState.open(started)
            task.apply(started, 0.0)
            task.apply(step, step.cost_usd)
    else:
        import orjson
        from detectors.engine import Engine
        engine = Engine()
        for w in range(100):  # warm-up: every workflow's detectors and burn-rate scopes exist
            for e in events(w, T0 - 1.0):
                e = {**e, "task_id": f"warm-{w}", "event_id": f"warm-{w}-{e['kind']}"}
                engine.process(CostEvent.model_validate(e))
        if trace:
            import tracemalloc
            tracemalloc.start(1)
            snap0 = tracemalloc.take_snapshot()
        before = rss()
        started_at = time.perf_counter()
        for i in range(n):
            for raw in [orjson.dumps(e) for e in events(i, T0 + i * 50.0 / n)]:
                engine.process(CostEvent.model_validate_json(raw))  # as the worker: from the record's bytes
        result["events_per_s"] = 2 * n / (time.perf_counter() - started_at)
        assert engine.live_tasks == n + 100, engine.live_tasks
        if trace:
            snap1 = tracemalloc.take_snapshot()
            stats = snap1.compare_to(snap0, "lineno")
            result["traced_bytes"] = sum(s.size_diff for s in stats)
            top = []
            import linecache
            for s in stats[:10]:
                frame = s.traceback[0]
                if frame.filename == "<string>":  # this script's feeding line: what the engine kept of the JSON
                    where, code = "(event JSON)", "strings of the event kept by the engine (ids, names)"
                else:
                    path = frame.filename
                    for root in ("/detectors/", "/schemas/", "/streams/", "/site-packages/"):
                        if root in path:
                            path = (root.strip("/") + "/" if root != "/site-packages/" else "") + path.split(root, 1)[1]
                            break
                    where = f"{path}:{frame.lineno}"
                    code = linecache.getline(frame.filename, frame.lineno).strip()
                top.append([where, code, s.size_diff, s.count_diff])
            result["top"] = top
            tracemalloc.stop()
        held = engine
        after = rss()  # before the checkpoint below: its bytes are not the tasks' memory
        result["checkpoint_bytes"] = sum(len(orjson.dumps(t.to_dict())) for t in engine._tasks.values())
        result["seen_ids"] = len(engine._seen)
if mode != "engine":
    after = rss()
result.update({"n": n, "grew": after - before, "rss_mb": after / 1e6})
print("BENCH-RESULT", json.dumps(result))
"""


def run(mode: str, n: int, trace: bool = False) -> dict[str, Any]:
    args = [sys.executable, "-c", _CHILD, mode, str(n)] + (["trace"] if trace else [])
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, check=False, timeout=1800)
    lines = [line.split("BENCH-RESULT ", 1)[1] for line in out.stdout.splitlines() if "BENCH-RESULT " in line]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks in flight")
    parser.add_argument("--trace-tasks", type=int, default=100_000, help="tasks in the tracemalloc run (0: none)")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 120)
    n = args.tasks
    results = {}
    for mode in ("ids", "dicts", "taskstate", "engine"):
        with console.status(f"{mode}: {n:,} tasks"):
            results[mode] = run(mode, n)
    traced = None
    if args.trace_tasks:
        with console.status(f"engine with tracemalloc: {args.trace_tasks:,} tasks"):
            traced = run("engine", args.trace_tasks, trace=True)

    labels = {"ids": "task ids", "dicts": "bare dicts", "taskstate": "TaskState", "engine": "engine"}
    table = Table(title=f"memory per active task, {n:,} root tasks in flight", title_justify="left")
    for col in ("held", "RSS growth", "bytes/task", "÷ task ids", "checkpoint bytes/task", "process RSS"):
        table.add_column(col, justify="left" if col == "held" else "right")
    base = results["ids"]["grew"] / n
    for mode, r in results.items():
        per = r["grew"] / n
        table.add_row(
            labels[mode],
            f"{r['grew'] / 1e6:,.0f} MB",
            f"{per:,.0f}",
            f"{per / base:.1f}x",
            f"{r['checkpoint_bytes'] / n:,.0f}" if "checkpoint_bytes" in r else "",
            f"{r['rss_mb']:,.0f} MB",
        )
    console.print(table)
    engine = results["engine"]
    console.print(
        f"engine: {engine['events_per_s']:,.0f} events/s while filling; its event-id dedup memory holds "
        f"{engine['seen_ids']:,} ids (bounded, not per task). target: < 1,024 bytes per active task."
    )
    if traced is not None:
        m = traced["n"]
        top = Table(
            title=f"where an engine task's bytes are allocated (tracemalloc, {m:,} tasks, 2 events each)",
            title_justify="left",
        )
        for col in ("allocated at", "code", "bytes/task", "objects/task"):
            top.add_column(col, justify="right" if col.endswith("/task") else "left", overflow="fold")
        for where, code, size, count in traced["top"]:
            top.add_row(where, escape(code[:70]), f"{size / m:,.0f}", f"{count / m:.2f}")
        top.add_row("all traced", "", f"{traced['traced_bytes'] / m:,.0f}", "")
        console.print(top)


if __name__ == "__main__":
    main()
