"""A small agent loop instrumented with burnguard's SDK, which can be told to run away.

Each step is a model call (reported with its tokens; burnguard prices it) and, every third step, a
tool call. With ``--runaway`` the loop never ends on its own: it spends until a kill command halts
it, then exits cleanly (status 0) after its task has finished as ``killed`` and the command has been
acknowledged. It prints one JSON object per line on stdout (``ready``, ``halted``, ``finished``), so
a test or a demo can drive it.

    export BURNGUARD_KILL_KEYS=...   # or BURNGUARD_KILL_KEYS_FILE=path (one key per line)
    python examples/runaway_agent.py --bootstrap 127.0.0.1:9092 --task-id demo-1 --runaway --rate 20

Needs only the SDK (aiokafka and pydantic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from burnguard_sdk import (
    CostReporter,
    Guard,
    Halted,
    KillSwitchListener,
    SyncCostReporter,
    SyncKillSwitchListener,
    TaskRun,
)


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.time(), **fields}), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--bootstrap", default=os.environ.get("BURNGUARD_KAFKA_BOOTSTRAP"), help="Kafka bootstrap servers")
    p.add_argument("--team", default="demo-team")
    p.add_argument("--workflow", default="demo-workflow")
    p.add_argument("--agent", default="runaway-agent")
    p.add_argument("--task-id", default=None, help="default: a random id")
    p.add_argument("--budget-usd", type=float, default=None, help="reported on task_started")
    p.add_argument("--runaway", action="store_true", help="loop forever, spending, until halted")
    p.add_argument("--steps", type=int, default=10, help="steps before finishing when not running away")
    p.add_argument("--rate", type=float, default=20.0, help="steps per second")
    p.add_argument("--model", default="gpt-4o-mini")
    p.add_argument("--provider", default="openai")
    p.add_argument("--sync", action="store_true", help="use the synchronous API (background threads)")
    p.add_argument("--events-topic", default=None, help="default: agent-cost-events")
    p.add_argument("--killswitch-topic", default=None, help="default: burnguard.killswitch")
    p.add_argument("--acks-topic", default=None, help="default: burnguard.killswitch.acks")
    p.add_argument("--lookback-s", type=float, default=3600.0, help="how far back to read kill commands")
    return p.parse_args(argv)


def step(run: TaskRun, args: argparse.Namespace, n: int) -> None:
    """One step's spending: a model call whose prompt grows with the loop (a runaway's signature)."""
    run.model_call(args.model, provider=args.provider, input_tokens=1000 + 50 * n, output_tokens=200, duration_ms=40)
    if n % 3 == 2:
        run.tool_call("web_search", cost_usd=0.005, duration_ms=120)


def settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    reporter = {"team": args.team, "workflow": args.workflow, "agent": args.agent, "topic": args.events_topic}
    listener = {"agent": args.agent, "workflow": args.workflow, "team": args.team, "topic": args.killswitch_topic,
                "acks_topic": args.acks_topic, "lookback_s": args.lookback_s}  # fmt: skip
    return reporter, listener


def report_end(run: TaskRun, guard: Guard | None, steps: int) -> None:
    command = guard.halted_by if guard is not None else None
    if command is not None:
        say("halted", command_id=command.command_id, reason=command.reason, steps=steps)
    say("finished", task_id=run.task_id, outcome="killed" if run.killed_by else (run.outcome or "success"), steps=steps)


async def run_async(args: argparse.Namespace) -> None:
    reporter_kw, listener_kw = settings(args)
    async with CostReporter(args.bootstrap, **reporter_kw) as reporter, \
            KillSwitchListener(args.bootstrap, **listener_kw) as listener:  # fmt: skip
        await listener.wait_ready(60)
        run = reporter.task(args.task_id, budget_usd=args.budget_usd)
        say("ready", task_id=run.task_id, mode="async")
        steps, guard = 0, None
        try:
            async with run, listener.guard(run) as guard:
                while args.runaway or steps < args.steps:
                    step(run, args, steps)
                    steps += 1
                    await asyncio.sleep(1 / args.rate)
        except Halted as before:  # a command issued before the task started: it never ran
            say("halted", command_id=before.command.command_id, reason=before.command.reason, steps=0)
        report_end(run, guard, steps)
        await reporter.flush(30)


def run_sync(args: argparse.Namespace) -> None:
    reporter_kw, listener_kw = settings(args)
    with SyncCostReporter(args.bootstrap, **reporter_kw) as reporter, \
            SyncKillSwitchListener(args.bootstrap, **listener_kw) as listener:  # fmt: skip
        listener.wait_ready(60)
        run = reporter.task(args.task_id, budget_usd=args.budget_usd)
        say("ready", task_id=run.task_id, mode="sync")
        steps, guard = 0, None
        try:
            with run, listener.guard(run) as guard:
                while args.runaway or steps < args.steps:
                    guard.check()  # raises Halted once a kill command names this task
                    step(run, args, steps)
                    steps += 1
                    guard.wait(1 / args.rate)  # sleeps, but wakes at once when halted
        except Halted as before:
            say("halted", command_id=before.command.command_id, reason=before.command.reason, steps=0)
        report_end(run, guard, steps)
        reporter.flush(30)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.bootstrap:
        print("no Kafka: pass --bootstrap or set BURNGUARD_KAFKA_BOOTSTRAP", file=sys.stderr)
        return 2
    try:
        if args.sync:
            run_sync(args)
        else:
            asyncio.run(run_async(args))
    except ValueError as exc:  # no kill keys, bad settings: say so, without a traceback
        print(f"runaway_agent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
