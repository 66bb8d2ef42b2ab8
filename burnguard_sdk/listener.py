"""``KillSwitchListener``: reads every kill command, halts the guarded work a valid one names, and acks.

Every agent process must see every command, so the listener joins no consumer group: it assigns
itself all partitions of the kill-switch topic and starts ``lookback_s`` back in time
(``offsets_for_times``), so a command issued shortly before a task started still reaches it. Each
command is checked by a :class:`~burnguard_sdk.book.CommandBook` (scope, HMAC signature under any
accepted key, expiry, finished work, earlier halts); one that halts nothing is *reported*: counted in
:attr:`KillSwitchListener.stats`, logged without secrets, passed to ``on_rejected``. A halt is
acknowledged on the acks topic (key = ``command_id``) once the guarded block has exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from burnguard_sdk._logs import ThrottledLog
from burnguard_sdk.acks import AckSender
from burnguard_sdk.book import DEFAULT_TENANT, CommandBook, Reason
from burnguard_sdk.commands import KillAck, KillCommand, KillTarget
from burnguard_sdk.guards import Guard
from burnguard_sdk.keys import KillKeys, load_kill_keys
from burnguard_sdk.reporter import bootstrap_from_env
from burnguard_sdk.tasks import TaskRun

__all__ = ["DEFAULT_ACKS_TOPIC", "DEFAULT_KILLSWITCH_TOPIC", "KillSwitchListener", "Rejection"]

log = logging.getLogger("burnguard_sdk.listener")

DEFAULT_KILLSWITCH_TOPIC = "burnguard.killswitch"
DEFAULT_ACKS_TOPIC = "burnguard.killswitch.acks"
#: every listener reads every command: one for other work (of its tenant or another) is routine
_QUIET_REASONS = {
    Reason.OTHER_SCOPE: logging.DEBUG,
    Reason.OTHER_TENANT: logging.INFO,
    Reason.ALREADY_HALTED: logging.INFO,
}


@dataclass(frozen=True)
class Rejection:
    """A command that halted nothing, and why (``reason`` is one of :class:`~burnguard_sdk.book.Reason`;
    ``detail`` says more: the validation error of a malformed one, the ids an unknown-id one named)."""

    reason: str
    command_id: str | None
    target: KillTarget | None
    topic: str
    partition: int
    offset: int
    detail: str = ""


class KillSwitchListener:
    """Listens for kill commands on behalf of this process's guarded work.

    ``agent``, ``workflow``, ``team``, ``tenant`` say who this process is (a command naming another
    value is not for it); guards add task ids, and a guard of a :class:`TaskRun` its run's team,
    workflow and tenant. Work without a tenant is the contract's ``default`` tenant, never any
    tenant; every id a command names must be one the guarded work has (a command naming a team
    halts nothing for a guard that knows no team). ``secrets`` are the accepted HMAC keys (default:
    env ``BURNGUARD_KILL_KEYS`` or the file in ``BURNGUARD_KILL_KEYS_FILE``).
    """

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        *,
        secrets: Iterable[str | bytes] | KillKeys | None = None,
        agent: str | None = None,
        workflow: str | None = None,
        team: str | None = None,
        tenant: str | None = None,
        topic: str | None = None,
        acks_topic: str | None = None,
        lookback_s: float = 3600.0,
        on_rejected: Callable[[Rejection], None] | None = None,
        consumer_options: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        log_interval_s: float = 10.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_from_env(bootstrap_servers)
        env = os.environ
        self.topic = topic or env.get("BURNGUARD_KILLSWITCH_TOPIC", "").strip() or DEFAULT_KILLSWITCH_TOPIC
        self.acks_topic = acks_topic or env.get("BURNGUARD_KILL_ACKS_TOPIC", "").strip() or DEFAULT_ACKS_TOPIC
        self.lookback_s = lookback_s
        self.on_rejected = on_rejected
        self.consumer_options = dict(consumer_options or {})
        self.identity: dict[str, str | None] = {"tenant": tenant, "team": team, "workflow": workflow, "agent": agent}
        self.halted_by = f"{socket.gethostname()}/{os.getpid()}/{agent or '-'}"[:256]
        self._clock = clock
        self._book = CommandBook(load_kill_keys(secrets), self.identity)
        self._warn = ThrottledLog(log, log_interval_s)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.rejections: deque[Rejection] = deque(maxlen=100)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._next: dict[TopicPartition, int] = {}
        self._acks = AckSender(self.bootstrap_servers, self.acks_topic, self._count, self._warn)

    def __repr__(self) -> str:
        return f"KillSwitchListener(topic={self.topic!r}, identity={self.identity}, {dict(self.stats)})"

    @property
    def stats(self) -> Counter[str]:
        """``received``, ``halted``, ``acked``, ``ack_failed`` and ``rejected: <reason>`` counts."""
        with self._lock:
            return Counter(self._counts)

    # -- guards ------------------------------------------------------------------------------

    def guard(
        self,
        run: TaskRun | None = None,
        *,
        task_id: str | None = None,
        root_task_id: str | None = None,
        agent: str | None = None,
        workflow: str | None = None,
        on_halt: Callable[[KillCommand], None] | None = None,
        task: asyncio.Task[Any] | None = None,
    ) -> Guard:
        """A guard for ``run`` (its ids; a halt makes it finish as ``killed``) or for the ids given.

        ``async with`` it around async work (a halt cancels the task that entered it, or ``task``);
        ``with`` it around synchronous work (a halt calls ``on_halt`` and sets ``guard.halted``).
        """
        ids = dict(self.identity)
        if run is not None:
            ids.update(
                task_id=run.task_id, root_task_id=run.root_task_id, workflow=run.workflow, team=run.team,
                agent=run.agent or ids["agent"], tenant=run.tenant or ids["tenant"],
            )  # fmt: skip
        explicit = {"task_id": task_id, "root_task_id": root_task_id, "agent": agent, "workflow": workflow}
        ids.update({k: v for k, v in explicit.items() if v is not None})
        ids["tenant"] = ids.get("tenant") or DEFAULT_TENANT
        if ids.get("task_id") and not ids.get("root_task_id"):
            ids["root_task_id"] = ids["task_id"]
        return Guard(self, ids, run=run, on_halt=on_halt, task=task)

    def register(self, guard: Guard) -> KillCommand | None:
        """Called by a guard on entry; returns a valid earlier command that already names it."""
        earlier = self._book.register(guard, self._clock())
        if earlier is not None:
            log.warning("burnguard: kill command %s (issued before this work started) halts %s",
                        earlier.command_id, dict(guard.ids))  # fmt: skip
            self._count("halted")
        return earlier

    def unregister(self, guard: Guard) -> None:
        """Called by a guard on exit; acknowledges the command that halted it, if any."""
        self._book.unregister(guard)
        command = guard.halted_by
        if command is not None:
            guard.halted_at = self._clock()
            ack = KillAck(command_id=command.command_id, halted_at=guard.halted_at, halted_by=self.halted_by,
                          target=command.target)  # fmt: skip
            self._acks.submit(ack)

    def call_hook(self, hook: Callable[[Any], None], arg: Any) -> None:
        """Run a user callback; its exception is logged, never raised into the listener."""
        try:
            hook(arg)
        except Exception:
            log.exception("burnguard: a kill-switch callback (%s) raised", getattr(hook, "__name__", hook))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start consuming in the running loop; returns at once (see :meth:`wait_ready`)."""
        if self._consumer_task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._acks.bind(self._loop)
        self._consumer_task = asyncio.create_task(self._consume(), name="burnguard-killswitch-listener")

    async def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Wait until the commands of the look-back window have been read; whether that happened."""
        if self._ready is None:
            raise RuntimeError("KillSwitchListener.wait_ready() before start()")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop consuming; wait up to ``timeout_s`` for acks still being delivered."""
        if self._consumer_task is not None:
            self._consumer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer_task
            self._consumer_task = None
        await self._acks.stop(timeout_s)

    async def __aenter__(self) -> KillSwitchListener:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- consuming ---------------------------------------------------------------------------

    async def _consume(self) -> None:
        delay = 0.2
        while True:
            consumer = await self._connect()
            try:
                ends: dict[TopicPartition, int] | None = await self._position(consumer)
                delay = 0.2
                while True:
                    batches = await consumer.getmany(timeout_ms=500)
                    for records in batches.values():
                        for record in records:
                            self._handle(record)
                            self._next[TopicPartition(record.topic, record.partition)] = record.offset + 1
                    if ends is not None and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                        assert self._ready is not None
                        self._ready.set()
                        ends = None
            except (KafkaError, OSError) as exc:
                self._warn.warn("consume", f"burnguard: kill-switch listener lost Kafka ({exc!r}); reconnecting")
            finally:
                with contextlib.suppress(KafkaError, OSError):
                    await consumer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _connect(self) -> AIOKafkaConsumer:
        delay = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers, group_id=None, enable_auto_commit=False,
                auto_offset_reset="latest", **self.consumer_options,
            )  # fmt: skip
            try:
                await consumer.start()
                if self.topic in await consumer.topics():
                    return consumer
                problem = f"topic {self.topic} does not exist yet"
            except (KafkaError, OSError) as exc:
                problem = f"cannot reach Kafka at {self.bootstrap_servers} ({type(exc).__name__})"
            except asyncio.CancelledError:
                with contextlib.suppress(KafkaError, OSError):
                    await consumer.stop()
                raise
            with contextlib.suppress(KafkaError, OSError):
                await consumer.stop()
            self._warn.warn("connect", f"burnguard: kill-switch listener waiting: {problem}; retrying")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _position(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """Assign every partition and seek to ``lookback_s`` ago; returns the end offsets to catch up to."""
        # the consumer keeps metadata only for topics it tracks; the ack producer (started now, so the
        # first ack does not wait for a connection) asks for this one
        partitions = await (await self._acks.producer()).partitions_for(self.topic)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        since_ms = int((self._clock() - self.lookback_s) * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        for tp in tps:
            at = found.get(tp)
            if tp in self._next:  # a reconnection: go on where we stopped
                consumer.seek(tp, self._next[tp])
            elif at is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, at.offset)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends

    def _handle(self, record: ConsumerRecord[Any, Any]) -> None:
        """One record; whatever goes wrong is logged with where it came from, and the listener goes on."""
        try:
            self._decide(record)
        except Exception:
            self._count("errors")
            log.exception("burnguard: kill-switch record %s[%d]@%d could not be handled", record.topic,
                          record.partition, record.offset)  # fmt: skip

    def _decide(self, record: ConsumerRecord[Any, Any]) -> None:
        self._count("received")
        where = (record.topic, record.partition, record.offset)
        try:
            command = KillCommand.model_validate_json(record.value or b"")
        except ValidationError as exc:
            detail = f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}"
            self._reject(Reason.MALFORMED, None, where, detail)
            return
        decision = self._book.decide(command, self._clock())
        halted = [g for g in decision.halt if g.halt(command)]
        if halted:
            self._count("halted", len(halted))
            log.warning("burnguard: kill command %s (%s, anomaly %s) halts %s", command.command_id,
                        command.reason[:200], command.anomaly_id, [dict(g.ids) for g in halted])  # fmt: skip
            return
        self._reject(decision.reason or Reason.ALREADY_HALTED, command, where, decision.detail)

    def _reject(self, reason: str, command: KillCommand | None, where: tuple[str, int, int], detail: str = "") -> None:
        rejection = Rejection(reason, command.command_id if command else None, command.target if command else None,
                              *where, detail)  # fmt: skip
        self._count(f"rejected: {reason}")
        self.rejections.append(rejection)
        level = _QUIET_REASONS.get(reason, logging.WARNING)
        if reason == Reason.EXPIRED and self._ready is not None and not self._ready.is_set():
            level = logging.DEBUG  # an old command read back through the look-back window: history, not news
        log.log(
            level,
            "burnguard: kill command %s rejected: %s%s (target %s; %s[%d]@%d)",
            rejection.command_id, reason, f" ({detail})" if detail else "",
            rejection.target.ids() | {"scope": rejection.target.scope.value} if rejection.target else None, *where,
        )  # fmt: skip
        if self.on_rejected is not None:
            self.call_hook(self.on_rejected, rejection)

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self._counts[what] += n
