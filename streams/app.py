"""The Faust app: topics, the state table and two agents, wired to :mod:`streams.pipeline`.

Topology (``P`` = ``settings.partitions``)::

    agent-cost-events (key root_task_id, P)
        └─ ingest ── route by (tenant, team, workflow) ─▶ burnguard.events-by-workflow (P)
                 │     one record per event, its source place and event time in headers (with
                 │     BURNGUARD_FRAMES: one frame per destination partition per batch, schemas.frames);
                 │     + after each batch, and every ``watermark_interval_s``, a watermark to each
                 │       of the P partitions: how far in event time each source partition has got
                 └─ unroutable ─▶ burnguard.dlq
    burnguard.events-by-workflow
        └─ detect: one Engine per partition, batches of ``batch_max`` records (a frame is acknowledged
           once all its events are folded), in event-time order across source partitions (streams.ordering)
             ├─▶ burnguard.anomalies (key anomaly_id)      ├─▶ burnguard.dlq (rejected by the engine)
             ├─▶ burnguard.task-summaries (key root task)  ├─▶ table engine-state (changelog, compacted)
             └─▶ <app_id>-spend-rollup (P): each tick's spend per tenant and team, to the roll-up
                 stage, which judges tenant- and team-level burn rates and budgets (streams.rollup_stage)

Every value is raw bytes (``raw`` serializers): JSON produced and parsed by burnguard, never pickle.
A batch's outputs, then its checkpoint, are handed to the producer before the batch's records are
acknowledged, and Faust flushes the producer before it commits offsets, so a committed offset
never runs ahead of the state: after a crash, records are redelivered, never lost, and the state's
source offsets make the redelivered ones no-ops. A record waiting for its turn in
event-time order is not acknowledged until it is folded (nor is anything after it in its
partition: Faust's commit can skip a lone unacknowledged offset, faust-streaming#606), so it
too is redelivered after a crash; the worker therefore does not wait for such records when its
partitions are revoked (``stream_wait_empty`` off: detect is idempotent).

Delivery of outputs is at least once. A batch whose outputs were sent but whose checkpoint did not
reach the broker before a crash is processed again from the older state, and its anomalies, task
summaries and dead letters are sent again: identical records, with the same deterministic
``anomaly_id`` (an anomaly's ``anomaly_id`` + ``status`` + ``severity``, a summary's
``root_task_id``, a dead letter's ``topic``/``partition``/``offset`` identify them). Consumers
deduplicate on those keys; the alerting pipeline's ``dedup_key`` and the kill command key
derive from the ``anomaly_id``, so a re-emission pages no one twice.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from faust.types import TP

from detectors.config import BurnguardConfig, load_config
from schemas.frames import FRAME_HEADER, FRAME_HEADERS, FrameEntry, split_frames
from streams.consumer import install as install_seek_safe_consumer
from streams.consumer import is_fresh
from streams.dlq import dead_letter, dead_letter_key, oversized
from streams.killswitch_app import wire_killswitch
from streams.ordering import WATERMARK_HEADER, Mark, parse_watermark, watermark_header
from streams.pipeline import (
    SOURCE_HEADER,
    TS_HEADER,
    DetectionPipeline,
    IngestClock,
    Record,
    Watermark,
    parse_source,
    route_with_time,
    source_header,
)
from streams.raw import raw_table
from streams.raw import raw_topic as raw_topic_of
from streams.rollup_stage import add_rollup_stage
from streams.settings import StreamSettings
from streams.stage import StageRunner
from streams.topics import partition_for_key
from streams.worker_report import log_worker_report

__all__ = ["STATE_TABLE", "create_app", "faust_credentials"]

log = logging.getLogger("burnguard.streams")
STATE_TABLE = "engine-state"


def faust_credentials(settings: StreamSettings) -> faust.types.auth.CredentialsT | None:
    """Faust's broker credentials for the configured security protocol (``None``: plaintext)."""
    context = settings.ssl_context()
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password,
            mechanism=settings.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def _header(headers: Any, name: str) -> bytes | None:
    if isinstance(headers, Mapping):
        value = headers.get(name)
        return value if isinstance(value, bytes) else None
    for key, value in headers or ():
        if key == name:
            return value if isinstance(value, bytes) else None
    return None


def _float(raw: bytes | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def create_app(
    settings: StreamSettings, config: BurnguardConfig | None = None, *, source_partitions: int | None = None
) -> faust.App:
    """The burnguard Faust app for ``settings``; ``config`` defaults to ``settings.config_file``;
    ``source_partitions`` is the events topic's partition count (default ``settings.partitions``).

    Thin on purpose: detection is :class:`~detectors.engine.Engine`'s, batching, order and state are
    :class:`~streams.pipeline.DetectionPipeline`'s; this function only moves records.
    """
    config = config if config is not None else load_config(settings.config_file)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.bootstrap.split(",") if host.strip()],
        broker_credentials=faust_credentials(settings),
        store=settings.store,
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        topic_allow_declare=True,
        key_serializer="raw",
        value_serializer="raw",
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=not settings.order_events,  # see the module docstring
        producer_acks=-1,
        producer_linger_ms=settings.linger_ms,
        web_enabled=settings.web_enabled,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        autodiscover=False,
    )
    install_seek_safe_consumer(app)  # records fetched before a seek never reach the agents (streams.consumer)

    def raw_topic(name: str) -> faust.TopicT:
        return raw_topic_of(app, name, settings.partitions)

    events = raw_topic(settings.events_topic)
    by_workflow = raw_topic(settings.internal_topic)
    raw_topic(settings.dlq_topic)  # declared, so the worker creates it
    # written once per batch, outside a single event
    table = raw_table(app, STATE_TABLE, settings.partitions, "burnguard engine checkpoints, per workflow and partition")
    # kill commands, proposals, acks and escalations (streams.killswitch_app)
    kill_switch = wire_killswitch(app, settings, config, raw_topic)
    n_sources = source_partitions or settings.partitions
    sources = [f"{settings.events_topic}:{i}" for i in range(n_sources)] if settings.order_events else None
    pipeline = DetectionPipeline(
        config,
        partitions=settings.partitions,
        autonomy=settings.autonomy,
        dedup_keep=settings.dedup_keep,
        max_value_bytes=settings.max_value_bytes,
        sources=sources,
        max_held=settings.max_held,
        roll_up=sources is not None,  # the roll-up waits for every partition's ticks: watermarks drive them
    )
    send_spend_reports = add_rollup_stage(app, settings, config, raw_topic)
    # what the ingest has read of each source partition: the highest event time and the last offset
    event_time = IngestClock()  # validated times only, within the wall-clock bound (streams.routing)
    # clients of their own for the idle check: asking Faust's consumer for positions or end offsets
    # while it rebalances moved its fetch positions past records it had not delivered (lost records)
    probes: list[Any] = []

    async def send_raw(
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Mapping[str, bytes] | None = None,
        partition: int | None = None,
    ) -> Awaitable[Any]:
        """Hand a record to Faust's producer; returns its delivery (awaitable: on the broker, acks=all)."""
        # straight to Faust's producer: Topic.send's channel, future-message and sensor layers cost about
        # as much per record as the producer itself. Faust still flushes this producer before it commits.
        return await app.producer.send(topic, key, value, partition, None, list(headers.items()) if headers else None)

    async def send_watermarks(marks: Mapping[str, Mark]) -> list[Awaitable[Any]]:
        # after the records they vouch for, from the same producer: a partition receives them in order
        header = {WATERMARK_HEADER: watermark_header(marks)}
        return [await send_raw(settings.internal_topic, None, b"", header, p) for p in range(settings.partitions)]

    @app.agent(events, name="ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async with StageRunner(app, "ingest") as runner:
            async for batch in runner.batches(stream, settings.batch_max, settings.batch_within_s):
                sent: list[Awaitable[Any]] = []
                read: dict[int, int] = {}
                frames: defaultdict[int, list[FrameEntry]] = defaultdict(list)
                for event in batch:
                    msg = event.message
                    if not is_fresh(app, msg):
                        continue  # fetched before its partition was sought back: read again, in order
                    read[msg.partition] = msg.offset
                    key: bytes | None
                    reason: str | None
                    ts: float | None
                    if msg.value is not None and len(msg.value) > settings.max_event_bytes:
                        key, reason, ts = None, oversized(len(msg.value), settings.max_event_bytes), None
                    else:
                        key, reason, ts = route_with_time(msg.value, time.time(), settings.max_clock_skew_s)
                    if key is not None and msg.value is not None:
                        ts = event_time.place(msg.partition, ts)
                        event_time.forward(msg.partition, msg.offset)
                        pipeline.stats.routed += 1
                        if settings.frames:
                            entry = FrameEntry(key, msg.value, msg.partition, msg.offset, ts)
                            frames[partition_for_key(key, settings.partitions)].append(entry)
                            continue
                        headers = {SOURCE_HEADER: source_header(msg.topic, msg.partition, msg.offset)}
                        if ts is not None:
                            headers[TS_HEADER] = repr(ts).encode()
                        sent.append(await send_raw(settings.internal_topic, key, msg.value, headers))
                        continue
                    reason = reason or "unroutable"
                    pipeline.note_dead("ingest", msg.topic, msg.partition, msg.offset, reason)
                    pipeline.stats.dead_letters += 1
                    record = dead_letter(msg.value, reason, msg.topic, msg.partition, msg.offset, "ingest", key=msg.key)
                    sent.append(await send_raw(settings.dlq_topic, dead_letter_key(msg.key), record))
                for partition, entries in sorted(frames.items()):
                    for frame in split_frames(settings.events_topic, entries):
                        sent.append(await send_raw(settings.internal_topic, None, frame, FRAME_HEADERS, partition))
                # on the broker before the batch is acknowledged: a record the broker refuses stops the
                # stage (streams.stage) instead of leaving a hole behind a committed offset
                for delivery in sent:
                    await delivery
                event_time.delivered(read)
                if sources is not None and read:
                    # only now: a watermark vouches for every record forwarded before it (streams.ordering),
                    # so the records of a batch that failed half-way are never folded
                    name = settings.events_topic
                    marks = {f"{name}:{p}": event_time.mark(p) for p in sorted(read)}
                    for delivery in await send_watermarks(marks):
                        await delivery

    async def idle_check() -> None:
        """Watermarks for every source partition this worker reads, each marked idle when read to
        its end (by this worker, or committed by the group), with the end offsets of every source
        partition at that moment: an idle source holds no partition back beyond what the others had
        produced then (streams.ordering), and one never written to does not hold them back forever."""
        name = settings.events_topic
        tps = sorted(TopicPartition(name, tp.partition) for tp in app.consumer.assignment() if tp.topic == name)
        if not tps:
            return
        every = [TopicPartition(name, p) for p in range(n_sources)]
        if not probes:
            ends_client = AIOKafkaConsumer(enable_auto_commit=False, **settings.aiokafka_kwargs())
            admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs())
            await ends_client.start()
            probes.append(ends_client)
            await admin.start()
            probes.append(admin)
        ends = await probes[0].end_offsets(sorted(set(every) | set(tps)))
        committed = await probes[1].list_consumer_group_offsets(settings.app_id, partitions=tps)
        snapshot = {f"{tp.topic}:{tp.partition}": end for tp, end in ends.items()}
        marks: dict[str, Mark] = {}
        for tp in tps:
            done = event_time.read_to(tp.partition)
            if tp in committed and committed[tp].offset > done:
                done = committed[tp].offset
            marks[f"{tp.topic}:{tp.partition}"] = event_time.mark(tp.partition, done >= ends[tp], snapshot)
        await send_watermarks(marks)

    if sources is not None:

        @app.timer(settings.watermark_interval_s)
        async def watermarks_every_interval() -> None:
            try:
                await idle_check()
            except Exception as exc:  # a rebalance or a broker hiccup: the next interval tries again
                log.info("idle check skipped: %s: %s", type(exc).__name__, exc)

    # events of the internal topic waiting to be acknowledged, per partition, in offset order
    held: defaultdict[int, deque[faust.EventT]] = defaultdict(deque)

    @app.agent(by_workflow, name="detect")
    async def detect(stream: faust.StreamT) -> None:
        async with StageRunner(app, "detect") as runner:
            async for batch in runner.batches(stream, settings.batch_max, settings.batch_within_s):
                await detect_batch(cast(faust.Stream, stream), batch)

    async def detect_batch(s: faust.Stream, batch: Sequence[faust.EventT]) -> None:
        assigned = app.consumer.assignment()
        items: list[Record | Watermark] = []
        for event in batch:
            msg = event.message
            if msg.tp not in assigned:
                continue  # revoked while buffered: its new owner processes it from the state
            if not is_fresh(app, msg):
                continue  # fetched before its partition was sought back: read again, in order
            mark = _header(msg.headers, WATERMARK_HEADER)
            if mark is not None:
                items.append(Watermark(msg.partition, msg.offset, parse_watermark(mark)))
                continue
            if _header(msg.headers, FRAME_HEADER) is not None:
                items += pipeline.unframe(msg.value, msg.partition, msg.offset, msg.topic)
                continue
            header = _header(msg.headers, SOURCE_HEADER)  # a single forwarded event (frames off)
            source = parse_source(header) if header else (msg.topic, msg.partition, msg.offset)
            ts = _float(_header(msg.headers, TS_HEADER))
            items.append(Record(msg.key, msg.value, msg.partition, msg.offset, source, ts))
        for partition in sorted({i.partition for i in items} - pipeline.states.keys()):
            state = pipeline.load(partition, dict(table.items()))
            log.info(
                "partition %d: engine restored (%d live tasks, %d workflows)",
                partition,
                state.engine.live_tasks,
                len(state.src),
            )
        result = pipeline.process(items)
        sent: list[Awaitable[Any]] = []
        for key, value in result.anomalies:
            sent.append(await send_raw(settings.anomalies_topic, key, value))
            sent += await kill_switch.issue(value)  # a kill's command, in the batch that decided it
        for key, value in result.summaries:
            sent.append(await send_raw(settings.summaries_topic, key, value))
        for dl_key, value in result.dead_letters:
            sent.append(await send_raw(settings.dlq_topic, dead_letter_key(dl_key), value))
        await send_spend_reports(pipeline)
        # every output on the broker before the checkpoint that says it was sent: a crash between the
        # two then repeats a batch's outputs (the anomaly ids make copies recognisable), never loses them
        for delivery in sent:
            await delivery
        # revoked while waiting: its new owner has restored it already, so its checkpoint is not
        # written over theirs (its records were not acknowledged: they are redelivered)
        moved = {p for p in result.done if p not in pipeline.states}
        for p in moved:
            result.done.pop(p)
        for key, value in result.state.items():
            if not moved or partition_for_key(key, settings.partitions) not in moved:
                table[key] = value
        # an event is acknowledged once it and everything before it in its partition is folded:
        # the stage runner acknowledges the batch, so a waiting event keeps one more reference
        assigned = app.consumer.assignment()
        for event in batch:
            msg = event.message
            done = result.done.get(msg.partition)
            if done is not None and msg.offset > done and msg.tp in assigned:
                msg.incref()
                held[msg.partition].append(event)
        for partition, done in result.done.items():
            waiting = held.get(partition)
            while waiting and waiting[0].message.offset <= done:
                await s.ack(waiting.popleft())

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode types a union of callables mypy cannot match
    async def forget_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[TP] = args[0] if args else kwargs.get("revoked", set())
        for tp in revoked:
            if tp.topic == settings.events_topic:
                event_time.forget(tp.partition)  # its next owner reads on from the committed offset
        partitions = [tp.partition for tp in revoked if tp.topic == settings.internal_topic]
        pipeline.drop(partitions)
        for p in partitions:
            held.pop(p, None)  # never acknowledged: redelivered to the partition's next owner

    def report() -> None:
        log_worker_report(pipeline, app.consumer)

    @app.timer(30.0)
    async def report_every_30s() -> None:
        report()
        for line in getattr(app.consumer, "stuck_commits", list)():
            log.warning("commit stuck: %s", line)
        for p, waiting in sorted(held.items()):
            if waiting:
                log.info(
                    "partition %d: %d events wait for acknowledgement, from offset %d (%s)",
                    p,
                    len(waiting),
                    waiting[0].message.offset,
                    "stale" if getattr(app.consumer, "is_stale", bool)(waiting[0].message) else "fresh",
                )

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # as above
    async def report_at_shutdown(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        report()
        while probes:
            probe = probes.pop()
            await (probe.stop() if isinstance(probe, AIOKafkaConsumer) else probe.close())

    app.burnguard_kill = kill_switch  # type: ignore[attr-defined]
    app.burnguard_pipeline = pipeline  # type: ignore[attr-defined]  # for the stats page and tests
    return app
