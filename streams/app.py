"""The Faust app: topics, the state table and two agents, wired to :mod:`streams.pipeline`.

Topology (``P`` = ``settings.partitions``)::

    agent-cost-events (key root_task_id, P)
        └─ ingest ── route by (tenant, team, workflow) ─▶ burnguard.events-by-workflow (P)
                 └─ unroutable ─▶ burnguard.dlq
    burnguard.events-by-workflow
        └─ detect: one Engine per partition, batches of ``batch_max`` records
             ├─▶ burnguard.anomalies (key anomaly_id)      ├─▶ burnguard.dlq (rejected by the engine)
             ├─▶ burnguard.task-summaries (key root task)  └─▶ table engine-state (changelog, compacted)

Every value is raw bytes (``raw`` serializers): JSON produced and parsed by burnguard, never pickle.
A batch's table writes and output records are handed to the producer before its records are
acknowledged, and Faust flushes the producer before it commits offsets, so a committed offset
never runs ahead of the state: after a crash, records are redelivered, never lost, and the
state's source offsets make the redelivered ones no-ops.

Delivery of outputs is at least once. A batch whose outputs were sent but whose checkpoint did not
reach the broker before a crash is processed again from the older state, and its anomalies, task
summaries and dead letters are sent again: identical records, with the same deterministic
``anomaly_id`` (an anomaly's ``anomaly_id`` + ``status`` + ``severity``, a summary's
``root_task_id``, a dead letter's ``topic``/``partition``/``offset`` identify them). Consumers
deduplicate on those keys; the alerting pipeline's PagerDuty ``dedup_key`` and the kill command key
derive from the ``anomaly_id``, so a re-emission pages no one twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import faust
from faust.types import TP

from detectors.config import BurnguardConfig, load_config
from streams.dlq import dead_letter
from streams.pipeline import SOURCE_HEADER, DetectionPipeline, Record, parse_source, route, source_header
from streams.settings import StreamSettings

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


def create_app(settings: StreamSettings, config: BurnguardConfig | None = None) -> faust.App:
    """The burnguard Faust app for ``settings``; ``config`` defaults to ``settings.config_file``.

    Thin on purpose: detection is :class:`~detectors.engine.Engine`'s, batching and state are
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
        producer_acks=-1,
        producer_linger_ms=settings.linger_ms,
        web_enabled=settings.web_enabled,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        autodiscover=False,
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            internal=False,
        )

    events = raw_topic(settings.events_topic)
    by_workflow = raw_topic(settings.internal_topic)
    anomalies = raw_topic(settings.anomalies_topic)
    summaries = raw_topic(settings.summaries_topic)
    dlq = raw_topic(settings.dlq_topic)
    table = app.Table(
        STATE_TABLE,
        default=None,
        partitions=settings.partitions,
        # bytes -> the "raw" codec, in the changelog and in its recovery (a table's serializers come
        # from key_type/value_type, not from a schema: without them Faust writes and reads JSON)
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,  # written once per batch, outside a single event: key = message key
        help="burnguard engine checkpoints, per workflow and per partition (streams.state)",
    )
    pipeline = DetectionPipeline(
        config,
        partitions=settings.partitions,
        autonomy=settings.autonomy,
        dedup_keep=settings.dedup_keep,
        max_value_bytes=settings.max_value_bytes,
    )

    @app.agent(events, name="ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async for batch in cast(faust.Stream, stream).take_events(settings.batch_max, within=settings.batch_within_s):
            for event in batch:
                msg = event.message
                key, reason = route(msg.value)
                if key is not None:
                    header = source_header(msg.topic, msg.partition, msg.offset)
                    await by_workflow.send(key=key, value=msg.value, headers={SOURCE_HEADER: header})
                    pipeline.stats.routed += 1
                    continue
                reason = reason or "unroutable"
                pipeline.note_dead("ingest", msg.topic, msg.partition, msg.offset, reason)
                pipeline.stats.dead_letters += 1
                record = dead_letter(msg.value, reason, msg.topic, msg.partition, msg.offset, "ingest", key=msg.key)
                await dlq.send(key=msg.key, value=record)

    @app.agent(by_workflow, name="detect")
    async def detect(stream: faust.StreamT) -> None:
        async for batch in cast(faust.Stream, stream).take_events(settings.batch_max, within=settings.batch_within_s):
            assigned = app.consumer.assignment()
            records: list[Record] = []
            for event in batch:
                msg = event.message
                if msg.tp not in assigned:
                    continue  # revoked while buffered: its new owner processes it from the state
                header = _header(msg.headers, SOURCE_HEADER)
                source = parse_source(header) if header else (msg.topic, msg.partition, msg.offset)
                records.append(Record(msg.key, msg.value, msg.partition, msg.offset, source))
            for partition in sorted({r.partition for r in records} - pipeline.states.keys()):
                state = pipeline.load(partition, dict(table.items()))
                log.info(
                    "partition %d: engine restored (%d live tasks, %d workflows)",
                    partition,
                    state.engine.live_tasks,
                    len(state.src),
                )
            result = pipeline.process(records)
            for key, value in result.state.items():
                table[key] = value
            for key, value in result.anomalies:
                await anomalies.send(key=key, value=value)
            for key, value in result.summaries:
                await summaries.send(key=key, value=value)
            for dl_key, value in result.dead_letters:
                await dlq.send(key=dl_key, value=value)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode types a union of callables mypy cannot match
    async def forget_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[TP] = args[0] if args else kwargs.get("revoked", set())
        pipeline.drop(tp.partition for tp in revoked if tp.topic == settings.internal_topic)

    def report() -> None:
        s = pipeline.stats
        log.info(
            "routed %d, events %d, redelivered %d skipped, dead letters %d, errors %d, anomalies %d, "
            "task summaries %d, %d batches, %.1f MB checkpointed, partitions held %s",
            s.routed,
            s.events,
            s.redelivered,
            s.dead_letters,
            s.errors,
            s.anomalies,
            s.summaries,
            s.batches,
            s.checkpoint_bytes / 1e6,
            sorted(pipeline.states),
        )

    @app.timer(30.0)
    async def report_every_30s() -> None:
        report()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # as above
    async def report_at_shutdown(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        report()

    app.burnguard_pipeline = pipeline  # type: ignore[attr-defined]  # for the stats page and tests
    return app
