"""The kill switch's agents, table and timer in the worker's Faust app (logic: :mod:`streams.killswitch`).

Topology (``P`` partitions each; every key but the commands' is the command id)::

    detect, for each anomaly it publishes on burnguard.anomalies:
        ├─ action kill ──▶ burnguard.killswitch (key = target id, signed, autonomous)
        │              └─▶ burnguard.kill-commands-issued (internal: the issued command)
        └─ kill proposed ─▶ burnguard.kill-commands-issued (internal: the proposal)
    burnguard.kill-commands-issued + burnguard.killswitch.acks + burnguard.kill-proposals
        └─ kill-track: table kill-commands (changelog) ──▶ burnguard.kill-proposals (pending, once)
                                                       └─▶ burnguard.anomalies (resolution with time to
                                                           halt; kill_unacknowledged escalation)

Commands leave from the detect agent itself, in the batch that decided them, not from a consumer
of the anomalies topic: that hop waited behind the detect batches in the worker's one consumer
(seconds under load, ``benchmarks/kill_time_to_halt.py``). They are at least once like the
anomalies: a batch processed again after a crash sends its commands again, with the same ids.

Outstanding commands live in the changelogged table, written through the internal topic by the
partition that owns their command id, so a crash or a rebalance loses none: the next owner
recovers the table and escalates what is still unacknowledged. The three tracked topics have the
same key and partition count, so one worker sees a command's record, its decision and its ack;
listeners must key acks by command id with Kafka's default partitioner (the SDK does).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from detectors.config import BurnguardConfig
from streams.consumer import is_fresh
from streams.killswitch import KillLoop
from streams.killswitch_keys import require_signing_key
from streams.killswitch_records import KillOutputs
from streams.raw import raw_table
from streams.settings import StreamSettings
from streams.stage import StageRunner
from streams.topics import partition_for_key

__all__ = ["KILL_TABLE", "KillSwitch", "wire_killswitch"]

log = logging.getLogger("burnguard.killswitch")
KILL_TABLE = "kill-commands"


def wire_killswitch(
    app: faust.App,
    settings: StreamSettings,
    config: BurnguardConfig,
    raw_topic: Callable[[str], faust.TopicT],
) -> KillSwitch:
    """Add the kill switch to ``app``. Raises :class:`~streams.killswitch_keys.KillKeysError` when a
    workflow may be killed without approval (autonomy ``act``) and no kill key is set."""
    keys = require_signing_key(config, settings.autonomy)
    loop = KillLoop(
        keys,
        expiry_s=settings.kill_expiry_s,
        proposal_ttl_s=settings.kill_proposal_ttl_s,
        ack_deadline_s=settings.kill_ack_deadline_s,
    )
    anomalies = raw_topic(settings.anomalies_topic)  # resolutions and escalations
    commands = raw_topic(settings.killswitch_topic)
    issued = raw_topic(settings.kill_internal_topic)
    proposals = raw_topic(settings.kill_proposals_topic)
    kinds = {
        settings.kill_internal_topic: "internal",
        settings.kill_acks_topic: "ack",
        settings.kill_proposals_topic: "proposal",
    }
    tracked = app.topic(
        *kinds,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    # also written by the deadline timer, outside any event
    table = raw_table(app, KILL_TABLE, settings.partitions, "kill commands by command id (streams.killswitch)")

    async def send(out: KillOutputs) -> list[Awaitable[Any]]:
        """Hand ``out`` to the producer; the deliveries, for a caller that must know them on the broker."""
        sent = []
        for topic, records in ((commands, out.commands), (issued, out.internal), (proposals, out.proposals)):
            sent += [await topic.send(key=key, value=value) for key, value in records]
        sent += [await anomalies.send(key=key, value=value) for key, value in out.anomalies]
        return sent

    async def delivered(out: KillOutputs) -> None:
        for delivery in await send(out):
            await delivery

    async def issue(anomaly: bytes) -> list[Awaitable[Any]]:
        try:
            out = loop.on_anomaly(anomaly)
        except Exception:  # one anomaly the kill loop cannot read never stops detection nor the kill switch
            log.exception("kill switch: error on the anomaly %r", anomaly[:200])
            return []
        # a command the broker does not take is not swallowed: the detect stage stops (streams.stage)
        return await send(out)

    @app.agent(tracked, name="kill-track")
    async def kill_track(stream: faust.StreamT) -> None:
        async with StageRunner(app, "kill-track") as runner:
            async for event in runner.events(stream):
                msg = event.message
                if not is_fresh(app, msg):
                    continue  # fetched before its partition was sought back: read again
                if msg.key is None:
                    loop.stats.invalid += 1
                    log.warning("%s@%d: a record without a key (the command id), ignored", msg.topic, msg.offset)
                    continue
                try:
                    out = loop.on_record(kinds[msg.topic], msg.value, table.get(msg.key))  # type: ignore[arg-type]
                except Exception:  # a record the loop cannot read: logged, never a stop
                    log.exception("kill-track: error on the record at %s/%d@%d", msg.topic, msg.partition, msg.offset)
                    continue
                await delivered(out)  # on the broker before the entry that says it was sent
                if out.entry is not None:
                    table[msg.key] = out.entry

    def owned() -> list[tuple[bytes, bytes]]:
        mine = {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.kill_internal_topic}
        n = settings.partitions
        return [(k, v) for k, v in list(table.items()) if v and partition_for_key(k, n) in mine]

    keep_s = max(settings.kill_expiry_s, settings.kill_proposal_ttl_s) + settings.kill_ack_deadline_s + 3_600.0

    @app.timer(min(1.0, settings.kill_ack_deadline_s / 4))
    async def kill_deadlines() -> None:
        if app.rebalancing or getattr(app, "in_recovery", False):
            return  # the table is being rebuilt: the next tick sees it whole
        try:
            entries = owned()
            for key, out in loop.overdue(entries):
                await delivered(out)
                table[key] = out.entry
            for key in loop.finished(entries, keep_s):
                del table[key]
        except Exception as exc:  # a rebalance or a broker hiccup: the next tick tries again
            log.warning("kill deadlines skipped: %s: %s", type(exc).__name__, exc)

    @app.timer(30.0)
    async def kill_report() -> None:
        log.info("%s", loop.describe())

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # as in streams.app
    async def kill_report_at_shutdown(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        log.info("%s", loop.describe())

    return KillSwitch(loop, issue)


class KillSwitch:
    """What :func:`wire_killswitch` adds: the loop (its stats) and ``issue``, which the detect agent
    awaits for each anomaly it publishes, right after handing it to the producer; ``issue`` returns the
    deliveries of what it sent, which the detect agent awaits before its checkpoint."""

    def __init__(self, loop: KillLoop, issue: Callable[[bytes], Awaitable[list[Awaitable[Any]]]]) -> None:
        self.loop = loop
        self.issue = issue
