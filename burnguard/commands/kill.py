"""``burnguard kill list|show|approve|deny``: the operator's half of approve mode.

A workflow in autonomy ``approve`` does not kill on its own: the worker publishes a pending
proposal (its alert shows the exact ``burnguard kill approve ID``). ``approve`` signs the command
with the first key of ``BURNGUARD_KILL_KEYS`` / ``BURNGUARD_KILL_KEYS_FILE`` and publishes it;
``deny`` records that nobody should. Kafka settings as for ``burnguard worker`` (BURNGUARD_*).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from burnguard.commands.common import BootstrapOption, console, exit_with, stream_settings, who

if TYPE_CHECKING:
    from streams.killswitch_keys import KillKeys
    from streams.killswitch_records import KillProposal
    from streams.settings import StreamSettings

T = TypeVar("T")

kill_app = typer.Typer(help="Kill proposals (autonomy approve): list, show, approve, deny.", no_args_is_help=True)
IdArgument = Annotated[
    str, typer.Argument(help="The proposal's id, or a unique prefix of it, as in the alert or `kill list`.")
]
ByOption = Annotated[str | None, typer.Option("--by", help="Who decides.", show_default="the login name")]


@kill_app.command("list")
def kill_list(
    bootstrap: BootstrapOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Also decided and expired proposals.")] = False,
) -> None:
    """The pending, unexpired kill proposals (or all of them with --all), one line each; the id
    shown is what `kill show|approve|deny` take."""
    from burnguard.commands.kill_view import list_lines, status_of
    from streams.killswitch_proposals import read_proposals

    settings = stream_settings(bootstrap=bootstrap)
    now = time.time()
    proposals = _run(read_proposals(settings), settings)
    shown = [
        p
        for p in sorted(proposals.values(), key=lambda p: (p.proposed_at, p.command_id))
        if all_ or status_of(p, now) == "pending"
    ]
    if not shown:
        console.print("no pending kill proposal" + ("" if all_ else " (--all also lists decided and expired ones)"))
        return
    for line in list_lines(shown, list(proposals), now, Console().width, with_status=all_):
        typer.echo(line)


@kill_app.command("show")
def kill_show(
    command_id: IdArgument,
    bootstrap: BootstrapOption = None,
) -> None:
    """Every detail of one kill proposal: target, detector, reason, evidence, times, status, and
    the exact commands that approve or deny it."""
    from burnguard.commands.kill_view import detail_lines
    from streams.killswitch_proposals import DecisionError, find_proposal, read_proposals

    settings = stream_settings(bootstrap=bootstrap)
    proposals = _run(read_proposals(settings), settings)
    try:
        proposal = find_proposal(proposals, command_id)
    except DecisionError as exc:
        exit_with(str(exc), 1)
    for line in detail_lines(proposal, time.time()):
        typer.echo(line)


@kill_app.command("approve")
def kill_approve(
    command_id: IdArgument,
    bootstrap: BootstrapOption = None,
    by: ByOption = None,
) -> None:
    """Sign the proposed kill (mode approved) and publish it to the agents' listeners."""
    from streams.killswitch_keys import KillKeysError, load_kill_keys

    try:
        keys = load_kill_keys()
    except KillKeysError as exc:
        exit_with(str(exc), 2)
    decision = _decide(command_id, True, by, keys, bootstrap)
    assert decision.command is not None
    target = decision.target
    console.print(f"approved: kill {decision.command_id} of {target.scope.value} {target.key} sent")


@kill_app.command("deny")
def kill_deny(
    command_id: IdArgument,
    bootstrap: BootstrapOption = None,
    by: ByOption = None,
) -> None:
    """Refuse the proposed kill: nothing is sent, and the decision is recorded."""
    decision = _decide(command_id, False, by, None, bootstrap)
    console.print(f"denied: kill {decision.command_id} of {decision.target.scope.value} {decision.target.key}")


def _decide(
    command_id: str, approve: bool, by: str | None, keys: KillKeys | None, bootstrap: str | None
) -> KillProposal:
    from streams.killswitch_proposals import DecisionError, decide

    settings = stream_settings(bootstrap=bootstrap)
    try:
        return _run(decide(settings, command_id, approve, who(by), keys), settings)
    except DecisionError as exc:
        exit_with(str(exc), 1)


def _run(coro: Coroutine[Any, Any, T], settings: StreamSettings) -> T:
    """Run one Kafka exchange; a broker that does not answer is one line saying what to do."""
    from aiokafka.errors import KafkaConnectionError, KafkaError

    from streams.topics import unreachable_message

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its connection errors are said below, once
    try:
        return asyncio.run(coro)
    except (KafkaConnectionError, OSError) as exc:
        console.print(f"[red]error:[/] {unreachable_message(settings, exc)}", soft_wrap=True)
        raise typer.Exit(1) from None
    except (TimeoutError, KafkaError) as exc:
        console.print(
            f"[red]error:[/] Kafka at {settings.bootstrap} did not answer: {type(exc).__name__}: {exc}", soft_wrap=True
        )
        raise typer.Exit(1) from None
