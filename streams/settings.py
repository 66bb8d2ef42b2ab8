"""Settings of the Kafka pipeline, read from ``BURNGUARD_*`` environment variables.

Every knob has a default that works against ``scripts/kafka-local``; a command-line option
overrides the environment (see ``burnguard worker --help``). Secrets (the SASL password) are
never part of ``repr()`` or of any log line.

>>> s = StreamSettings.from_env({"BURNGUARD_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "BURNGUARD_PARTITIONS": "6"})
>>> s.bootstrap, s.events_topic, s.partitions, s.web_host
('127.0.0.1:9092', 'agent-cost-events', 6, '127.0.0.1')
>>> StreamSettings.from_env({"BURNGUARD_APP_ID": "team-b"}).internal_topic
'team-b.events-by-workflow'
>>> "hunter2" in repr(StreamSettings.from_env({"BURNGUARD_KAFKA_SASL_PASSWORD": "hunter2"}))
False
"""

from __future__ import annotations

import dataclasses
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["APP_TOPICS", "SettingsError", "StreamSettings"]

_PREFIX = "BURNGUARD_"


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and what to do."""


#: the most ``max_event_bytes`` may be: a forwarded event, its headers and key stay under the producer's
#: ``max_request_size`` (1,000,000 bytes)
MAX_EVENT_BYTES_LIMIT = 768 * 1024
#: the topics only one app's workers use, named after its app id unless set: a new BURNGUARD_APP_ID
#: is a new app (its consumer groups, Faust's changelogs and the roll-up topic are named after it too)
APP_TOPICS = {
    "internal_topic": "events-by-workflow",
    "kill_internal_topic": "kill-commands-issued",
    "alerts_state_topic": "alerts-state",
}


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(_PREFIX + name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{_PREFIX}{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{_PREFIX}{name}={value} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{_PREFIX}{name}={value} must be at most {maximum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(_PREFIX + name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{_PREFIX}{name}={raw!r} is not a number") from None
    if not value > 0:
        raise SettingsError(f"{_PREFIX}{name}={value} must be > 0")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(_PREFIX + name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{_PREFIX}{name}={raw!r}: use true or false")


def _str(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = env.get(_PREFIX + name, "").strip()
    return raw or default


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Where the pipeline reads and writes, how it is partitioned, and how it checkpoints.

    Times in seconds, sizes in bytes. ``partitions`` is the partition count of every topic the
    worker creates (input, internal, outputs); the internal topic and the state table must keep
    the same count for the lifetime of the app id (a change needs a new ``app_id``). The topics of
    :data:`APP_TOPICS` left empty are named after the app id (``<app_id>.events-by-workflow``).
    """

    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "burnguard"
    config_file: str | None = None
    autonomy: str | None = None
    events_topic: str = "agent-cost-events"
    anomalies_topic: str = "burnguard.anomalies"
    dlq_topic: str = "burnguard.dlq"
    summaries_topic: str = "burnguard.task-summaries"
    internal_topic: str = ""
    #: the alerting stage (``burnguard alerter``): its dead letters, its state, its routing config
    alerts_dlq_topic: str = "burnguard.alerts-dlq"
    alerts_state_topic: str = ""
    alerting_config_file: str | None = None
    #: kill commands (CONTRACT §3), listeners' acks, approve-mode proposals (compacted), and the
    #: internal topic that feeds the table of outstanding commands (all keyed by command id but the first)
    killswitch_topic: str = "burnguard.killswitch"
    kill_acks_topic: str = "burnguard.killswitch.acks"
    kill_proposals_topic: str = "burnguard.kill-proposals"
    kill_internal_topic: str = ""
    #: silences (``burnguard silence add|expire`` write them, every alerter follows them; compacted)
    silences_topic: str = "burnguard.silences"
    #: a command expires this long after it is issued; a proposal this long after it is made (seconds)
    kill_expiry_s: float = 600.0
    kill_proposal_ttl_s: float = 3_600.0
    #: a command no listener has acknowledged this long after it was issued is escalated (seconds)
    kill_ack_deadline_s: float = 30.0
    partitions: int = 8
    replication: int = 1
    retention_s: float = 7 * 86_400.0
    #: events per detection batch, and the longest a batch waits to fill (seconds)
    batch_max: int = 2_000
    batch_within_s: float = 0.25
    #: how often the consumer commits offsets (seconds); state is checkpointed once per batch
    commit_interval_s: float = 2.0
    #: how long the producer waits to fill a batch (milliseconds): fewer, larger requests
    linger_ms: int = 5
    #: a worker silent this long leaves the consumer group and its partitions move (seconds)
    session_timeout_s: float = 30.0
    #: fold each workflow's events in event-time order across source partitions (streams.ordering)
    order_events: bool = True
    #: the ingest forwards one frame per destination partition per batch (schemas.frames) instead of
    #: one record per event; off by default until a stall seen once in four walkthrough runs is explained
    frames: bool = False
    #: how often the ingest tells every partition how far its sources have got (seconds)
    watermark_interval_s: float = 1.0
    #: records a partition holds back at most while waiting for a source that is behind
    max_held: int = 50_000
    #: the ingest rejects (dead-letters) an event stamped more than this many seconds ahead of the
    #: worker's wall clock: a producer's clock or a bug, never a cost yet to come
    max_clock_skew_s: float = 300.0
    #: newest event ids (and finished task ids) per partition kept in the checkpoint for dedup
    dedup_keep: int = 2_000
    #: a state value larger than this is split into chunks (Kafka's default limit is 1 MB)
    max_value_bytes: int = 512 * 1024
    #: a cost event larger than this (bytes) is dead-lettered unread: no valid event comes near it,
    #: and a forwarded record must stay under the producer's 1 MB request limit
    max_event_bytes: int = 256 * 1024
    store: str = "memory://"
    data_dir: str = ""
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name, suffix in APP_TOPICS.items():
            if not getattr(self, name):
                object.__setattr__(self, name, f"{self.app_id}.{suffix}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> StreamSettings:
        """Settings from ``BURNGUARD_*`` variables (``os.environ`` by default), then ``overrides``
        (``None`` values are ignored, so unset command-line options keep the environment's)."""
        import os

        env = os.environ if env is None else env
        d = cls()
        password = _str(env, "KAFKA_SASL_PASSWORD", None)
        password_file = _str(env, "KAFKA_SASL_PASSWORD_FILE", None)
        if password is None and password_file is not None:
            try:
                password = Path(password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    f"{_PREFIX}KAFKA_SASL_PASSWORD_FILE: cannot read {password_file}: {exc.strerror}"
                ) from None
        app_id = _str(env, "APP_ID", "burnguard") or "burnguard"
        values: dict[str, Any] = {
            "bootstrap": _str(env, "KAFKA_BOOTSTRAP", d.bootstrap),
            "app_id": app_id,
            "config_file": _str(env, "CONFIG", None),
            "autonomy": _str(env, "AUTONOMY", None),
            "events_topic": _str(env, "EVENTS_TOPIC", d.events_topic),
            "anomalies_topic": _str(env, "ANOMALIES_TOPIC", d.anomalies_topic),
            "dlq_topic": _str(env, "DLQ_TOPIC", d.dlq_topic),
            "summaries_topic": _str(env, "SUMMARIES_TOPIC", d.summaries_topic),
            "internal_topic": _str(env, "INTERNAL_TOPIC", ""),
            "alerts_dlq_topic": _str(env, "ALERTS_DLQ_TOPIC", d.alerts_dlq_topic),
            "alerts_state_topic": _str(env, "ALERTS_STATE_TOPIC", ""),
            "alerting_config_file": _str(env, "ALERTING_CONFIG", None),
            "killswitch_topic": _str(env, "KILLSWITCH_TOPIC", d.killswitch_topic),
            "kill_acks_topic": _str(env, "KILL_ACKS_TOPIC", d.kill_acks_topic),
            "kill_proposals_topic": _str(env, "KILL_PROPOSALS_TOPIC", d.kill_proposals_topic),
            "kill_internal_topic": _str(env, "KILL_INTERNAL_TOPIC", ""),
            "silences_topic": _str(env, "SILENCES_TOPIC", d.silences_topic),
            "kill_expiry_s": _float(env, "KILL_EXPIRY_S", d.kill_expiry_s),
            "kill_proposal_ttl_s": _float(env, "KILL_PROPOSAL_TTL_S", d.kill_proposal_ttl_s),
            "kill_ack_deadline_s": _float(env, "KILL_ACK_DEADLINE_S", d.kill_ack_deadline_s),
            "partitions": _int(env, "PARTITIONS", d.partitions, minimum=1),
            "replication": _int(env, "REPLICATION", d.replication, minimum=1),
            "retention_s": _float(env, "RETENTION_S", d.retention_s),
            "batch_max": _int(env, "BATCH_MAX", d.batch_max, minimum=1),
            "batch_within_s": _float(env, "BATCH_WITHIN_S", d.batch_within_s),
            "commit_interval_s": _float(env, "COMMIT_INTERVAL_S", d.commit_interval_s),
            "linger_ms": _int(env, "LINGER_MS", d.linger_ms),
            "session_timeout_s": _float(env, "SESSION_TIMEOUT_S", d.session_timeout_s),
            "order_events": _bool(env, "ORDER_EVENTS", d.order_events),
            "frames": _bool(env, "FRAMES", d.frames),
            "watermark_interval_s": _float(env, "WATERMARK_INTERVAL_S", d.watermark_interval_s),
            "max_held": _int(env, "MAX_HELD", d.max_held, minimum=1),
            "max_clock_skew_s": _float(env, "MAX_CLOCK_SKEW_S", d.max_clock_skew_s),
            "dedup_keep": _int(env, "DEDUP_KEEP", d.dedup_keep),
            "max_value_bytes": _int(env, "MAX_VALUE_BYTES", d.max_value_bytes, minimum=1024),
            "max_event_bytes": _int(
                env, "MAX_EVENT_BYTES", d.max_event_bytes, minimum=1024, maximum=MAX_EVENT_BYTES_LIMIT
            ),
            "store": _str(env, "STORE", d.store),
            "data_dir": _str(env, "DATA_DIR", "") or str(Path(tempfile.gettempdir()) / f"burnguard-{app_id}"),
            "web_enabled": _bool(env, "WEB_ENABLED", d.web_enabled),
            "web_host": _str(env, "WEB_HOST", d.web_host),
            "web_port": _int(env, "WEB_PORT", d.web_port, minimum=1),
            "security_protocol": (_str(env, "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") or "PLAINTEXT").upper(),
            "sasl_mechanism": _str(env, "KAFKA_SASL_MECHANISM", None),
            "sasl_username": _str(env, "KAFKA_SASL_USERNAME", None),
            "sasl_password": password,
            "ssl_cafile": _str(env, "KAFKA_SSL_CAFILE", None),
            "ssl_certfile": _str(env, "KAFKA_SSL_CERTFILE", None),
            "ssl_keyfile": _str(env, "KAFKA_SSL_KEYFILE", None),
            "log_level": _str(env, "LOG_LEVEL", d.log_level),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def replace(self, **changes: Any) -> StreamSettings:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """Raise :class:`SettingsError` for a combination that cannot work."""
        protocols = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if self.security_protocol not in protocols:
            raise SettingsError(
                f"{_PREFIX}KAFKA_SECURITY_PROTOCOL={self.security_protocol!r}: use one of {', '.join(protocols)}"
            )
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise SettingsError(
                f"{self.security_protocol} needs {_PREFIX}KAFKA_SASL_USERNAME and {_PREFIX}KAFKA_SASL_PASSWORD "
                f"(or {_PREFIX}KAFKA_SASL_PASSWORD_FILE)"
            )
        topics = [
            self.events_topic,
            self.anomalies_topic,
            self.dlq_topic,
            self.summaries_topic,
            self.internal_topic,
            self.alerts_dlq_topic,
            self.alerts_state_topic,
        ]
        topics += [self.killswitch_topic, self.kill_acks_topic, self.kill_proposals_topic, self.kill_internal_topic]
        topics.append(self.silences_topic)
        if len(set(topics)) != len(topics):
            raise SettingsError(f"topic names must differ: {topics}")
        for name in ("kill_expiry_s", "kill_proposal_ttl_s", "kill_ack_deadline_s"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{_PREFIX}{name.upper()}={getattr(self, name)!r}: must be more than 0 seconds")

    @property
    def rollup_topic(self) -> str:
        """The roll-up stage's topic (streams.rollup): internal to the app, so named after it."""
        return f"{self.app_id}-spend-rollup"

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``SSL``/``SASL_SSL`` (system CAs, or ``ssl_cafile``), else ``None``."""
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Connection keyword arguments for aiokafka clients (producer, consumer, admin)."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs

    def describe(self) -> str:
        """One line for the log: where it connects and what it reads, never a secret."""
        auth = self.security_protocol
        if self.security_protocol.startswith("SASL"):
            auth += f" {self.sasl_mechanism or 'PLAIN'} as {self.sasl_username}"
        return (
            f"app {self.app_id} at {self.bootstrap} ({auth}); {self.events_topic} -> {self.internal_topic} -> "
            f"{self.anomalies_topic}, {self.summaries_topic}, dead letters {self.dlq_topic}; "
            f"{self.partitions} partitions; state {self.store} in {self.data_dir}"
        )
