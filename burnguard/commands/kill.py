"""``burnguard kill list|approve|deny``: the operator's half of approve mode.

A workflow in autonomy ``approve`` does not kill on its own: the worker publishes a pending
proposal (its alert shows the exact ``burnguard kill approve ID``). ``approve`` signs the command
with the first key of ``BURNGUARD_KILL_KEYS`` / ``BURNGUARD_KILL_KEYS_FILE`` and publishes it;
``deny`` records that nobody should. Kafka settings as for ``burnguard worker`` (BURNGUARD_*).
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from burnguard.commands.common import BootstrapOption, console, exit_with, stream_settings

if TYPE_CHECKING:
    from streams.killswitch_keys import KillKeys
    from streams.killswitch_records import KillProposal

T = TypeVar("T")

kill_app = typer.Typer(help="Kill proposals (autonomy approve): list, approve, deny.", no_args_is_help=True)
ByOption = Annotated[str | None, typer.Option("--by", help="Who decides (default: the login name).")]


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@kill_app.command("list")
def kill_list(
    bootstrap: BootstrapOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Also decided and expired proposals.")] = False,
) -> None:
    """The pending, unexpired kill proposals (or all of them with --all)."""
    from rich.table import Table

    from schemas.timefmt import format_ts
    from streams.killswitch_proposals import read_proposals
    from streams.killswitch_records import ProposalStatus

    settings = stream_settings(bootstrap=bootstrap)
    now = time.time()
    proposals = _run(read_proposals(settings))
    table = Table()
    table.add_column("id", no_wrap=True)  # copied into `kill approve`: never cut
    table.add_column("target", no_wrap=True)
    table.add_column("detector")
    table.add_column("reason", ratio=1)
    table.add_column("proposed (UTC)", no_wrap=True)
    table.add_column("expires (UTC)", no_wrap=True)
    if all_:
        table.add_column("status")
    for p in sorted(proposals.values(), key=lambda p: p.proposed_at):
        pending = p.status is ProposalStatus.PENDING and now < p.expires_at
        if not (pending or all_):
            continue
        status = p.status.value if p.status is not ProposalStatus.PENDING or pending else "expired"
        table.add_row(
            p.command_id,
            f"{p.target.scope.value} {p.target.key}",
            str(p.anomaly.get("detector", "")),
            p.reason,
            format_ts(p.proposed_at)[5:16].replace("T", " "),
            format_ts(p.expires_at)[5:16].replace("T", " "),
            *([status] if all_ else []),
        )
    Console().print(table)


@kill_app.command("approve")
def kill_approve(
    command_id: Annotated[str, typer.Argument(help="The proposal's id, as in the alert or `kill list`.")],
    bootstrap: BootstrapOption = None,
    by: ByOption = None,
) -> None:
    """Sign the proposed kill (mode approved) and publish it to the agents' listeners."""
    from streams.killswitch_keys import KillKeysError, load_kill_keys

    try:
        keys = load_kill_keys()
    except KillKeysError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    decision = _decide(command_id, True, by, keys, bootstrap)
    assert decision.command is not None
    target = decision.target
    console.print(f"approved: kill {command_id} of {target.scope.value} {target.key} sent")


@kill_app.command("deny")
def kill_deny(
    command_id: Annotated[str, typer.Argument(help="The proposal's id, as in the alert or `kill list`.")],
    bootstrap: BootstrapOption = None,
    by: ByOption = None,
) -> None:
    """Refuse the proposed kill: nothing is sent, and the decision is recorded."""
    _decide(command_id, False, by, None, bootstrap)
    console.print(f"denied: kill {command_id}")


def _decide(
    command_id: str, approve: bool, by: str | None, keys: KillKeys | None, bootstrap: str | None
) -> KillProposal:
    from streams.killswitch_proposals import DecisionError, decide

    settings = stream_settings(bootstrap=bootstrap)
    try:
        return _run(decide(settings, command_id, approve, _who(by), keys))
    except DecisionError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


def _run(coro: Coroutine[Any, Any, T]) -> T:
    from aiokafka.errors import KafkaError

    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # its "Unable connect" lines: the one error below says it
    try:
        return asyncio.run(coro)
    except (OSError, TimeoutError, KafkaError) as exc:
        exit_with(
            f"cannot reach Kafka: {type(exc).__name__}: {exc}; start a broker or point --bootstrap at a running one",
            1,
        )
    finally:
        client_log.setLevel(level)
