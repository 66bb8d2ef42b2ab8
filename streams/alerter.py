"""The alerting stage (``burnguard alerter``): ``burnguard.anomalies`` -> AlertPipeline -> the channels.

A process of its own, with a plain aiokafka consumer in its own group (``<app id>-alerter``) and
manual commits, so the detect stage never waits on a channel: it only writes anomalies. The channels
are :func:`alerting.channels.build_channels`'s (none is named here), their state in one notification log.

One loop takes anomalies in and runs the pipeline's timers (``group_wait``/``group_interval``, also
while no anomaly arrives); the notifications it releases go to a durable **outbox**. Delivery runs
beside it, one task per group episode (a hung channel holds up its own group only, and a group's
messages keep their order), through the :class:`~alerting.Dispatcher` and its one retry stage.

**Time.** Each anomaly is taken in at the time its record was written, after the timers that ran
out before it (:mod:`alerting.clock`); the timers follow the wall clock only once the stage has
caught up with the partitions' ends. So what is read late — after a restart, by the member that
takes over, behind a lag — gives the notifications it gave live: a kill that fired and resolved
while no alerter ran is paged, then resolved, under its episode's key; it does not vanish because
its firing and its resolve were read in one batch. The pipeline's time is in the state record.

The order of writes is what makes it at least once without paging twice:

1. a batch of anomalies is taken in and the timers are run;
2. the stage's state — pipeline snapshot and time, the channels' notification log, outbox, consumed
   offsets — is written to the compacted alerts state topic and acknowledged (``acks=all``);
3. only then are the anomalies' offsets committed;
4. each channel that delivers a notification is marked done in the outbox and the state is written
   again (so is any step a channel flushes its log after: a thread reply before its parent's edit);
   a notification leaves the outbox once every channel has delivered it or failed permanently, and
   a permanent failure is first written to the alerts DLQ and counted.

A restart (or the member that takes over) restores the pipeline (dedup, open groups, timers, time),
the notification log and the outbox (skipping channels already done) and seeks to the state's
offsets: an outage loses nothing, and a paged episode is not paged again. The one window left is a
channel answering and the process dying before the next state write: that delivery is repeated
(channels key what they send by the ``dedup_key``: a trigger with the same key opens no new incident).

Grouping needs every anomaly in one place, so the group has **one active member**: the
:func:`one_active_assignor` gives every partition to the member that held them (else to one), and
a second ``burnguard alerter`` is a warm standby that takes over when the first leaves or dies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from alerting.channels import build_channels
from alerting.clock import CatchUp, IntakeClock, in_time_order
from alerting.config import AlertingConfig
from alerting.dispatch import Dispatcher
from alerting.nflog import NotificationLog
from alerting.notifier import Notification, Notifier
from alerting.outbox import JournaledNotifier, Outbox
from alerting.pipeline import AlertPipeline
from alerting.retry import DeliveryOutcome, RetryStage
from alerting.silences import SilenceStore
from schemas.anomaly import Anomaly
from streams.alert_state import (
    MAX_STATE_BYTES,
    delivery_dead_letter,
    encode_state,
    intake_dead_letter,
    read_state,
)
from streams.assignor import one_active_assignor
from streams.settings import StreamSettings

__all__ = ["Alerter"]

log = logging.getLogger("burnguard.alerter")

SHUTDOWN_GRACE_S = 5.0
CATCH_UP_STALL_S = 5.0  # behind, and no record for this long: the timers go back to the wall clock


class _Listener(ConsumerRebalanceListener):
    def __init__(self, alerter: Alerter) -> None:
        self.alerter = alerter

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.alerter._step_lock:
            await self.alerter.release()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self.alerter.take_over(assigned)
        except Exception as exc:  # aiokafka would only log it: holding partitions without state must stop
            self.alerter.fatal = exc


class Alerter:
    """The stage; :meth:`run` until ``stop`` is set. ``notifiers`` default to :func:`build_channels`
    (config and ``environ``, default ``os.environ``), each keeping its state in :attr:`log`."""

    def __init__(
        self,
        settings: StreamSettings,
        config: AlertingConfig,
        *,
        silences: SilenceStore | None = None,
        notifiers: list[Notifier] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.silences = silences
        self.group_id = f"{settings.app_id}-alerter"
        self.log = NotificationLog(on_flush=self.persist_quietly)  # every channel's state; a flush writes it
        inner = notifiers if notifiers is not None else build_channels(config, environ or os.environ, self.log)
        self.dispatcher = Dispatcher(
            config.receivers,
            [JournaledNotifier(n, lambda: self.outbox, self.persist_quietly) for n in inner],
            RetryStage(config.retry),
        )
        self.pipeline: AlertPipeline | None = None  # while this member holds the anomalies' partitions
        self.outbox = Outbox()
        self.offsets: dict[int, int] = {}
        self.stats: Counter[str] = Counter()
        self.holding = False
        self.fatal: BaseException | None = None  # a take-over that failed: the run stops with it
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._step_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._changes = 0  # persist() calls so far, and how many of them the last write covered
        self._written = 0
        self.clock = IntakeClock()  # the pipeline's time: a record's when catching up, else the wall clock
        self.catch_up = CatchUp(CATCH_UP_STALL_S)
        self._kafka = settings.aiokafka_kwargs()
        self.producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            compression_type="gzip",
            max_request_size=MAX_STATE_BYTES,
            **self._kafka,
        )
        self.consumer = AIOKafkaConsumer(
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, settings.session_timeout_s / 3) * 1000),
            partition_assignment_strategy=(one_active_assignor(lambda: self.holding),),
            **self._kafka,
        )

    # -- lifecycle --------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await self.producer.start()
        try:
            await self.consumer.start()
            self.consumer.subscribe([self.settings.anomalies_topic], listener=_Listener(self))
            next_report = time.monotonic() + 30.0
            while not stop.is_set():
                if self.fatal is not None:
                    raise RuntimeError(f"alerter could not take over: {self.fatal}") from self.fatal
                batches = await self.consumer.getmany(timeout_ms=int(self._poll_timeout() * 1000), max_records=500)
                positions = await self._positions()  # outside the lock: a rebalance may need it
                async with self._step_lock:
                    if self.pipeline is not None:
                        await self._step(batches, positions)
                if time.monotonic() >= next_report:
                    self.report()
                    next_report = time.monotonic() + 30.0
            await self._drain(SHUTDOWN_GRACE_S)
            async with self._step_lock:
                await self.release()
        finally:
            await self.consumer.stop()
            await self.producer.stop()
            await self.dispatcher.aclose()
            self.report()

    def _poll_timeout(self) -> float:
        due = self.pipeline.next_flush_at() if self.pipeline is not None else None
        if due is None or self.catch_up.lagging:  # catching up, the timers wait for the records' time
            return 1.0
        return min(1.0, max(0.0, due - time.time()))

    async def take_over(self, assigned: set[TopicPartition]) -> None:
        """The group gave this member the anomalies' partitions: restore the state and resume."""
        tps = sorted(tp for tp in assigned if tp.topic == self.settings.anomalies_topic)
        self.holding = bool(tps)
        if not tps:
            return
        async with self._step_lock:
            state = await read_state(self._kafka, self.settings.alerts_state_topic, self.group_id)
            pipeline = AlertPipeline(self.config, self.silences)
            if state.pipeline is not None:
                pipeline.restore(state.pipeline)
            self.log.load(state.log)
            self.pipeline, self.outbox, self.offsets = pipeline, state.outbox, dict(state.offsets)
            self.clock = IntakeClock(state.clock)
            for tp in tps:
                if tp.partition in self.offsets:
                    self.consumer.seek(tp, self.offsets[tp.partition])
            try:  # what was written while no member held the partitions is taken in on its own time
                ends = {tp.partition: int(o) for tp, o in (await self.consumer.end_offsets(tps)).items()}
            except KafkaError as exc:
                log.warning("end offsets unknown at take-over (%s): the fetches' high watermarks stand in", exc)
                ends = {}
            self.catch_up.start(ends)
            took = (self.settings.anomalies_topic, len(pipeline.groups), len(self.outbox), self.offsets, ends)
            log.info("alerter took %s: %d open groups, %d in the outbox, offsets %s, end offsets %s", *took)
            self._kick()

    async def release(self) -> None:
        """Partitions revoked (or shutting down): stop delivering, write the state, commit."""
        if self.pipeline is None:
            return
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        try:
            await self.persist()
            await self._commit()
        except KafkaError as exc:
            log.warning("state not written at hand-over (%s): the next owner resumes from the last one", exc)
        self.pipeline, self.outbox, self.offsets = None, Outbox(), {}

    async def _drain(self, grace_s: float) -> None:
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=grace_s)

    # -- intake -------------------------------------------------------------------------------------
    async def _positions(self) -> dict[int, int]:
        """Where each held partition stands: one not read from yet is committed there (the group's
        lag is then known on every partition); all say whether the stage is behind."""
        found: dict[int, int] = {}
        if self.pipeline is None:
            return found
        for tp in self.consumer.assignment():
            if tp.topic == self.settings.anomalies_topic:
                try:
                    found[tp.partition] = await asyncio.wait_for(self.consumer.position(tp), 5.0)
                except (IllegalStateError, TimeoutError):
                    continue  # revoked meanwhile, or not known yet: the next step asks again
        return found

    async def _step(self, batches: Mapping[TopicPartition, list[ConsumerRecord]], positions: dict[int, int]) -> None:
        """Take a batch in, each record at its own time in time order across partitions (each
        partition's order kept), after the timers due before it; then run the timers up to the
        last record's time (catching up) or the wall clock; make the outbox durable; commit."""
        assert self.pipeline is not None
        now = time.time()
        took = False
        due: list[Notification] = []
        assigned = self.consumer.assignment()
        for record in in_time_order(records for tp, records in batches.items() if tp in assigned):
            written = record.timestamp / 1000 if record.timestamp is not None and record.timestamp >= 0 else None
            due += self.clock.advance(self.pipeline, self.clock.at(written, now))  # timers due before it
            await self._take(self.pipeline, record, self.clock.now)
            self.offsets[record.partition] = record.offset + 1
            took = True
        if took:
            self.catch_up.took()
        for partition, position in positions.items():
            if partition not in self.offsets:
                self.offsets[partition] = position
                took = True
        was_lagging = self.catch_up.lagging
        mine = [tp for tp in assigned if tp.topic == self.settings.anomalies_topic]
        highwaters = {tp.partition: self.consumer.highwater(tp) for tp in mine}
        behind = self.catch_up.behind({**self.offsets, **positions}, highwaters)
        if was_lagging and self.catch_up.stalled:
            log.warning("no record for %.0f s, the partitions' ends say more: timers on wall time", CATCH_UP_STALL_S)
        due += self.clock.advance(self.pipeline, self.clock.now if behind else now)
        self.outbox.add(due)
        self.stats["notifications"] += len(due)
        if took or due:
            await self.persist()  # the outbox is durable before the offsets move
            await self._commit()
        self._kick()

    async def _take(self, pipeline: AlertPipeline, record: ConsumerRecord, now: float) -> None:
        self.stats["anomalies"] += 1
        try:
            anomaly = Anomaly.model_validate_json(record.value or b"")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<record>"
            await self._dead_intake(record, f"not a burnguard.anomaly/1: {where}: {first['msg']}")
            return
        try:
            pipeline.ingest(anomaly, now)
        except Exception as exc:  # a pipeline bug must not stop alerting on everything else
            log.exception(
                "anomaly %s at %s/%d@%d failed in the alert pipeline",
                anomaly.anomaly_id,
                record.topic,
                record.partition,
                record.offset,
            )
            await self._dead_intake(record, f"alert pipeline error: {type(exc).__name__}: {exc}"[:500])

    async def _dead_intake(self, record: ConsumerRecord, error: str) -> None:
        key, value = intake_dead_letter(record.value, error, record.topic, record.partition, record.offset)
        await self.producer.send_and_wait(self.settings.alerts_dlq_topic, key=key, value=value)
        self._count_dead(f"{record.topic}/{record.partition}@{record.offset}", "intake", error)

    def _count_dead(self, what: str, channel: str, error: str) -> None:
        self.stats["dead_letters"] += 1
        count = self.stats["dead_letters"]
        if count <= 100 or count % 1000 == 0:
            log.warning("alert dead letter #%d: %s (%s): %s", count, what, channel, error[:300])

    # -- delivery -----------------------------------------------------------------------------------
    def _kick(self) -> None:
        """A delivery task for every group with something in the outbox and no task running."""
        for key in self.outbox.groups():
            task = self._tasks.get(key)
            if task is None or task.done():
                self._tasks[key] = asyncio.create_task(self._deliver_group(key), name=f"deliver {key}")

    async def _deliver_group(self, key: str) -> None:
        try:
            while (entry := self.outbox.first(key)) is not None:
                n = entry.notification
                if n.receiver not in self.dispatcher.receivers:  # removed from the config since
                    await self._dead_delivery(n, "none", DeliveryOutcome("permanent", 0, "unknown receiver"))
                    self.outbox.remove(n.notification_id)
                    continue
                (report,) = await self.dispatcher.deliver([n])
                for channel in report.failed_channels:
                    outcome = report.outcomes[channel]
                    await self._dead_delivery(n, channel, outcome)
                    entry.done[channel] = outcome.result
                self.outbox.remove(n.notification_id)
                self.stats["delivered" if report.delivered else "failed"] += 1
                await self.persist_quietly()
        except Exception:  # a Kafka error writing a dead letter: the next kick tries the group again
            log.exception("delivery of group %s stopped; it resumes on the next intake step", key)
            await asyncio.sleep(1.0)

    async def _dead_delivery(self, n: Notification, channel: str, outcome: DeliveryOutcome) -> None:
        key, value = delivery_dead_letter(n, channel, outcome)
        await self.producer.send_and_wait(self.settings.alerts_dlq_topic, key=key, value=value)
        self._count_dead(
            f"notification {n.notification_id} to {n.receiver}", channel, f"{outcome.result}: {outcome.error}"
        )

    # -- state --------------------------------------------------------------------------------------
    async def persist(self) -> None:
        """Write the state record and wait for the broker's acknowledgement.

        A group commit: callers that arrive while a write is in flight share the next one, which
        snapshots everything they changed, so many deliveries cost one round trip, not one each.
        """
        self._changes += 1
        mine = self._changes
        async with self._write_lock:
            if self._written >= mine or self.pipeline is None:
                return  # a write that began after this caller's change has covered it
            covers = self._changes
            value = encode_state(
                self.pipeline.snapshot(), self.log.snapshot(), self.outbox, self.offsets, clock=self.clock.now
            )
            await self.producer.send_and_wait(self.settings.alerts_state_topic, key=self.group_id.encode(), value=value)
            self._written = covers
            self.stats["state_writes"] += 1

    async def persist_quietly(self) -> None:
        try:
            await self.persist()
        except KafkaError as exc:  # the next write carries it; meanwhile a crash repeats this delivery
            log.warning("alerter state not written: %s: %s", type(exc).__name__, exc)

    async def _commit(self) -> None:
        topic = self.settings.anomalies_topic
        assigned = self.consumer.assignment()
        offsets = {TopicPartition(topic, p): o for p, o in self.offsets.items() if TopicPartition(topic, p) in assigned}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:  # rebalancing: the state record, not the commit, is what resumes
            log.info("commit skipped: %s: %s", type(exc).__name__, exc)

    def report(self) -> None:
        s, pipeline = self.stats, dict(self.pipeline.stats) if self.pipeline is not None else {}
        counts = (s["anomalies"], s["notifications"], s["delivered"], s["failed"], s["dead_letters"])
        log.info(
            "alerter: %d anomalies taken in, %d notifications released, %d delivered, %d failed, "
            "%d alert dead letters, %d in the outbox, %d state writes; pipeline %s",
            *counts,
            len(self.outbox),
            s["state_writes"],
            pipeline,
        )

