"""The roll-up stage wired into the Faust app: its topic, its table and its agent (:mod:`streams.rollup`).

::

    detect (every partition, after each batch that ticked)
        └─ one spend report per roll-up partition ─▶ <app_id>-spend-rollup (P, by tenant)
    <app_id>-spend-rollup
        └─ rollup: one RollupState per partition ─┬─▶ burnguard.anomalies (tenant, team)
                                                   ├─▶ table spend-rollup (changelog, compacted)
                                                   └─▶ burnguard.dlq (a record that is no report)

Delivery is at least once, as for the detect stage: a batch's table writes and anomalies are handed
to the producer before Faust commits its offsets; a report sent again counts once, and a batch
processed again from an older checkpoint raises the same anomalies under the same ids. The detect
stage waits until the broker has its reports before it writes the checkpoint that no longer holds
their minutes; each workflow's unreleased minutes are checkpointed with that workflow's offsets
(streams.state), so a checkpoint cut short by a crash neither loses nor repeats a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from faust.types import TP

from detectors.config import BurnguardConfig
from streams.consumer import is_fresh
from streams.dlq import dead_letter
from streams.pipeline import DetectionPipeline
from streams.raw import raw_table
from streams.rollup import RollupPipeline, spend_reports
from streams.settings import StreamSettings
from streams.stage import StageRunner

__all__ = ["ROLLUP_TABLE", "add_rollup_stage"]

log = logging.getLogger("burnguard.streams")
ROLLUP_TABLE = "spend-rollup"


def add_rollup_stage(
    app: faust.App,
    settings: StreamSettings,
    config: BurnguardConfig,
    raw_topic: Callable[[str], faust.TopicT],
) -> Callable[[DetectionPipeline], Awaitable[None]]:
    """Add the roll-up topic, table and agent to ``app``; return what the detect agent awaits after
    each batch, before acknowledging it: the spend reports of the ticks its engines ran."""
    topic = raw_topic(settings.rollup_topic)
    table = raw_table(
        app, ROLLUP_TABLE, settings.partitions, "burnguard roll-up checkpoints, one per partition (streams.rollup)"
    )
    rollup = RollupPipeline(
        config,
        partitions=settings.partitions,
        sources=settings.partitions,
        autonomy=settings.autonomy,
        max_value_bytes=settings.max_value_bytes,
    )

    @app.agent(topic, name="rollup")
    async def roll_up(stream: faust.StreamT) -> None:
        async with StageRunner(app, "rollup") as runner:  # nothing acknowledged that was not processed
            async for batch in runner.batches(stream, settings.batch_max, settings.batch_within_s):
                await process(batch)

    async def process(batch: Sequence[faust.EventT]) -> None:
        assigned = app.consumer.assignment()
        fresh = [e.message for e in batch if e.message.tp in assigned and is_fresh(app, e.message)]
        items = [(m.partition, m.offset, m.value) for m in fresh]
        for partition in sorted({i[0] for i in items} - rollup.states.keys()):
            state = rollup.load(partition, dict(table.items()))
            log.info("roll-up partition %d restored (%d detect partitions heard of)", partition, len(state.covered))
        result = rollup.process(items)
        # on the broker before the state that says they were sent (a crash between loses nothing)
        sent = [
            await app.producer.send(settings.anomalies_topic, key, value, None, None, None)
            for key, value in result.anomalies  # straight to Faust's producer, as streams.app does
        ]
        for partition, offset, reason in result.bad:
            log.error("%s/%d@%d is not a spend report: %s", settings.rollup_topic, partition, offset, reason)
            raw = next(i[2] for i in items if i[0] == partition and i[1] == offset)
            record = dead_letter(raw, reason, settings.rollup_topic, partition, offset, "rollup")
            sent.append(await app.producer.send(settings.dlq_topic, None, record, None, None, None))
        for delivery in sent:
            await delivery
        for key, value in result.state.items():
            table[key] = value

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # as in streams.app
    async def forget_revoked_rollups(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[TP] = args[0] if args else kwargs.get("revoked", set())
        rollup.drop(tp.partition for tp in revoked if tp.topic == settings.rollup_topic)

    @app.timer(30.0)
    async def report_rollup_every_30s() -> None:
        s = rollup.stats
        held = sorted(rollup.states)
        log.info(
            "roll-up: %d reports (%d ticks counted already, %d early, %d bad), %d ticks run, %d anomalies; "
            "partitions held %s",
            *(s.reports, s.duplicates, s.early, s.bad_reports, s.ticks, s.anomalies, held),
        )

    async def send_reports(pipeline: DetectionPipeline) -> None:
        # awaited until the broker has them: the checkpoint written next no longer holds the minutes
        # they carry, so a report lost in a crash after it could never be sent again
        sent = []
        for partition, state in sorted(pipeline.states.items()):
            ticks, state.engine.rolled_up = state.engine.rolled_up, []
            for target, value in spend_reports(partition, ticks, settings.partitions):
                key = str(partition).encode()
                sent.append(await app.producer.send(settings.rollup_topic, key, value, target, None, None))
        for delivery in sent:
            await delivery

    app.burnguard_rollup = rollup  # type: ignore[attr-defined]  # for tests
    return send_reports
