"""An operator's side of approve mode: read the pending proposals, approve or deny one.

The proposals topic is compacted and keyed by command id: the latest record of an id is its state
(``pending`` from the worker, then ``approved`` or ``denied`` from ``burnguard kill``). Approving
signs the command with the first kill key (mode ``approved``, its own expiry from now), publishes
it on the kill-switch topic, then records the decision; the worker reads the decision and tracks
the command's ack like any other.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from schemas.killswitch import KillCommand, KillMode
from schemas.timefmt import format_ts
from streams.compacted import records_to_end, table_reader
from streams.killswitch_keys import KillKeys
from streams.killswitch_records import KillProposal, ProposalStatus
from streams.settings import StreamSettings

__all__ = ["MIN_PREFIX", "DecisionError", "decide", "find_proposal", "read_proposals", "short_ids"]

#: the fewest characters of an id's hash (after ``kill-``) that ``kill approve|deny|show`` accept,
#: and the fewest ``kill list`` shows
MIN_PREFIX = 8
_MIN_GIVEN = 4
_KILL = "kill-"


class DecisionError(ValueError):
    """The id cannot be decided (unknown, ambiguous, expired, already decided); the message says why."""


def _hash(command_id: str) -> str:
    return command_id.removeprefix(_KILL)


def short_ids(command_ids: list[str], minimum: int = MIN_PREFIX) -> dict[str, str]:
    """The shortest prefix of each id, with at least ``minimum`` characters after ``kill-``, that no
    other id starts with (as git abbreviates commits); :func:`find_proposal` accepts it.

    >>> list(short_ids(["kill-9a28c39974725e53", "kill-9a28c3997f000000", "kill-1bc5df3e4cb29800"]).values())
    ['kill-9a28c39974', 'kill-9a28c3997f', 'kill-1bc5df3e']
    """
    out: dict[str, str] = {}
    for command_id in command_ids:
        own = _hash(command_id)
        length = minimum
        while length < len(own) and any(
            _hash(other).startswith(own[:length]) for other in command_ids if other != command_id
        ):
            length += 1
        out[command_id] = command_id[: len(command_id) - len(own) + length]
    return out


def find_proposal(proposals: dict[str, KillProposal], given: str) -> KillProposal:
    """The proposal whose id is ``given`` or starts with it (``kill-`` may be left out); a
    :class:`DecisionError` naming the candidates when several do, or saying none does."""
    given = given.strip()
    if given in proposals:
        return proposals[given]
    prefix = given if given.startswith(_KILL) else _KILL + given
    if len(_hash(prefix)) < _MIN_GIVEN:
        raise DecisionError(f"{given!r} is too short to name a kill proposal: give the id `burnguard kill list` shows")
    found = sorted(c for c in proposals if c.startswith(prefix))
    if not found:
        raise DecisionError(f"no kill proposal {given} (see `burnguard kill list --all`)")
    if len(found) > 1:
        shown = ", ".join(short_ids(found, len(_hash(prefix)) + 1).values())
        raise DecisionError(f"{given} names {len(found)} kill proposals ({shown}): give more of the id")
    return proposals[found[0]]


async def read_proposals(settings: StreamSettings, timeout_s: float = 20.0) -> dict[str, KillProposal]:
    """The latest record of every command id on the proposals topic, read to its current end."""
    topic = settings.kill_proposals_topic
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout_s * 1000), **settings.aiokafka_kwargs())
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for d in described for p in d.get("partitions") or ()]
    if not tps:
        return {}  # no proposal was ever made (the worker creates the topic)
    latest: dict[str, KillProposal] = {}
    async with table_reader(settings, tps, timeout_s) as consumer:
        async for record in records_to_end(consumer, tps, timeout_s):
            if record.value is None:
                continue
            try:
                proposal = KillProposal.model_validate_json(record.value)
            except ValidationError:
                continue  # not ours to judge here; the worker logs bad records
            latest[proposal.command_id] = proposal
    return latest


def check_decidable(proposal: KillProposal | None, command_id: str, now: float) -> KillProposal:
    """The proposal, or :class:`DecisionError` saying why it cannot be approved or denied now."""
    if proposal is None:
        raise DecisionError(f"no kill proposal {command_id} (see `burnguard kill list`)")
    if proposal.status is not ProposalStatus.PENDING:
        raise DecisionError(
            f"kill proposal {command_id} was already {proposal.status.value} "
            f"by {proposal.decided_by or 'someone'} at {format_ts(proposal.decided_at or proposal.proposed_at)}"
        )
    if now >= proposal.expires_at:
        raise DecisionError(
            f"kill proposal {command_id} expired at {format_ts(proposal.expires_at)}: the finding is too old "
            "to act on; if the agent still runs, halt it by hand"
        )
    return proposal


async def decide(
    settings: StreamSettings,
    command_id: str,
    approve: bool,
    by: str,
    keys: KillKeys | None,
    now: float | None = None,
) -> KillProposal:
    """Approve (sign and publish the command, then record the decision) or deny one pending proposal.

    ``command_id`` may be a unique prefix (:func:`find_proposal`). Raises :class:`DecisionError`
    for an unknown, ambiguous, expired or already decided id, or an approval without a kill key."""
    now = time.time() if now is None else now
    found = find_proposal(await read_proposals(settings), command_id)
    proposal = check_decidable(found, found.command_id, now)
    command_id = proposal.command_id
    if approve and keys is None:
        raise DecisionError(
            "approving signs the command: set BURNGUARD_KILL_KEYS or BURNGUARD_KILL_KEYS_FILE "
            "(the keys the agents' listeners verify with)"
        )
    command: KillCommand | None = None
    if approve and keys is not None:
        command = proposal.unsigned_command(KillMode.APPROVED, now, settings.kill_expiry_s).signed(keys.signing)
    decision = proposal.model_copy(
        update={
            "status": ProposalStatus.APPROVED if approve else ProposalStatus.DENIED,
            "decided_at": now,
            "decided_by": by,
            "command": command,
        }
    )
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **settings.aiokafka_kwargs())
    await producer.start()
    try:
        if command is not None:
            body = command.model_dump_json(by_alias=True, exclude_none=True).encode()
            await producer.send_and_wait(settings.killswitch_topic, value=body, key=command.target.key.encode())
        await producer.send_and_wait(settings.kill_proposals_topic, value=decision.to_json(), key=command_id.encode())
    finally:
        await producer.stop()
    return decision
