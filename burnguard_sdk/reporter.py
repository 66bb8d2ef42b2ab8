"""``CostReporter``: an agent's cost events onto Kafka, never blocking it and never raising into it.

Events are serialised where they are reported and put in a bounded in-memory buffer; one background
task moves them to an ``AIOKafkaProducer`` (batched by ``linger_ms``). When Kafka is slow or down
the buffer fills up to ``max_buffered`` and further events are dropped: each drop is counted in
:attr:`CostReporter.stats` and logged (the first at once, then once per ``log_interval_s`` with a
count). A failed delivery goes back to the front of the buffer and is sent again: the server
de-duplicates on ``event_id``. :meth:`flush` and :meth:`close` drain the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from burnguard_sdk._logs import ThrottledLog
from burnguard_sdk.tasks import Attributes, TaskRun, type_error

__all__ = ["DEFAULT_EVENTS_TOPIC", "CostReporter", "ReporterStats"]

log = logging.getLogger("burnguard_sdk.reporter")

DEFAULT_EVENTS_TOPIC = "agent-cost-events"
_SEND_BATCH = 500


@dataclass(frozen=True)
class ReporterStats:
    """Counts since the reporter was made. ``dropped`` = lost because the buffer was full;
    ``invalid`` = could not be serialised (NaN, a non-JSON attribute, a bool or a string where
    the contract wants a number ...); ``retried`` = deliveries that
    failed and were queued again; ``buffered``/``in_flight`` = not yet acknowledged by Kafka."""

    reported: int
    sent: int
    dropped: int
    invalid: int
    retried: int
    buffered: int
    in_flight: int


def bootstrap_from_env(bootstrap_servers: str | None) -> str:
    servers = bootstrap_servers or os.environ.get("BURNGUARD_KAFKA_BOOTSTRAP", "").strip()
    if not servers:
        raise ValueError("no Kafka bootstrap servers: pass bootstrap_servers or set BURNGUARD_KAFKA_BOOTSTRAP")
    return servers


class CostReporter:
    """Reports cost events (CONTRACT §1) for tasks run by this agent process.

    ``team`` and ``workflow`` (required by the contract), ``agent`` and ``tenant`` are defaults for
    every task. Use ``async with CostReporter(...)`` (or ``await start()`` / ``await close()``) in
    async code, :class:`~burnguard_sdk.SyncCostReporter` in synchronous code.
    """

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        *,
        team: str,
        workflow: str,
        agent: str | None = None,
        tenant: str | None = None,
        topic: str | None = None,
        max_buffered: int = 10_000,
        linger_ms: int = 5,
        log_interval_s: float = 10.0,
        reconnect_backoff_s: tuple[float, float] = (0.2, 5.0),
        producer_options: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_buffered < 1:
            raise ValueError("max_buffered must be at least 1")
        self.bootstrap_servers = bootstrap_from_env(bootstrap_servers)
        self.topic = topic or os.environ.get("BURNGUARD_EVENTS_TOPIC", "").strip() or DEFAULT_EVENTS_TOPIC
        self.team, self.workflow, self.agent, self.tenant = team, workflow, agent, tenant
        self.max_buffered = max_buffered
        self.linger_ms = linger_ms
        self.reconnect_backoff_s = reconnect_backoff_s
        self.producer_options = dict(producer_options or {})
        self._clock = clock
        self._warn = ThrottledLog(log, log_interval_s)
        self._lock = threading.Lock()
        self._buffer: deque[tuple[bytes, bytes]] = deque()
        self._counts = {"reported": 0, "sent": 0, "dropped": 0, "invalid": 0, "retried": 0}
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Event | None = None
        self._sender: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._closed = False
        self._retry_at = 0.0

    def __repr__(self) -> str:
        return f"CostReporter(topic={self.topic!r}, workflow={self.workflow!r}, {self.stats})"

    # -- what agents call -------------------------------------------------------------------

    def task(
        self,
        task_id: str | None = None,
        *,
        agent: str | None = None,
        workflow: str | None = None,
        budget_usd: float | None = None,
        attributes: Attributes | None = None,
    ) -> TaskRun:
        """A new top-level task (its own root). Use it as a context manager, or call start()/finish()."""
        return TaskRun(
            self,
            team=self.team,
            workflow=workflow or self.workflow,
            task_id=task_id,
            agent=agent or self.agent,
            tenant=self.tenant,
            budget_usd=budget_usd,
            attributes=attributes,
        )

    def now(self) -> float:
        return self._clock()

    def emit(self, key: str, event: dict[str, Any]) -> bool:
        """Queue one event (a contract JSON object) without waiting; ``False`` if it was dropped."""
        try:
            if (wrong := type_error(event)) is not None:
                raise TypeError(wrong)
            value = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            with self._lock:
                self._counts["invalid"] += 1
            self._warn.warn("invalid", f"burnguard: a {event.get('kind')} event could not be serialised ({exc})")
            return False
        with self._lock:
            self._counts["reported"] += 1
            if self._closed or len(self._buffer) >= self.max_buffered:
                self._counts["dropped"] += 1
                dropped = self._counts["dropped"]
                accepted = False
            else:
                self._buffer.append((key.encode(), value))
                accepted = True
        if not accepted:
            self._warn.warn(
                "dropped",
                f"burnguard: cost event buffer full ({self.max_buffered}) or reporter closed, "
                f"events dropped: {dropped} in total",
            )
            return False
        self._wake_sender()
        return True

    @property
    def stats(self) -> ReporterStats:
        with self._lock:
            return ReporterStats(**self._counts, buffered=len(self._buffer), in_flight=self._in_flight)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background sender in the running loop. Returns at once: Kafka need not be up."""
        if self._sender is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._sender = asyncio.create_task(self._run(), name="burnguard-cost-reporter")
        self._wake.set()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every event reported so far is acknowledged by Kafka; ``False`` on timeout."""
        if self._progress is None:
            raise RuntimeError("CostReporter.flush() before start()")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            with self._lock:
                idle = not self._buffer and self._in_flight == 0
            if idle:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._progress.clear()
            self._wake_sender()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout=0.5 if remaining is None else min(0.5, remaining))

    async def close(self, timeout_s: float = 10.0) -> None:
        """Drain (up to ``timeout_s``), then stop. What could not be delivered is logged as lost."""
        if self._sender is not None:
            await self.flush(timeout_s)
        with self._lock:
            self._closed = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.stop(), timeout=timeout_s)
            except (TimeoutError, KafkaError) as exc:
                log.warning("burnguard: the cost event producer did not stop cleanly: %r", exc)
            self._producer = None
        with self._lock:  # counted after the producer stopped: it may still have delivered some
            lost = len(self._buffer) + self._in_flight
            self._buffer.clear()
        self._warn.flush("dropped", "burnguard: cost events dropped because the buffer was full")
        if lost:
            log.error("burnguard: %d cost event(s) not delivered before close (Kafka unreachable?)", lost)

    async def __aenter__(self) -> CostReporter:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- the background sender --------------------------------------------------------------

    def _wake_sender(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or wake.is_set():
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed under us: close() reports the rest
                loop.call_soon_threadsafe(wake.set)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                pause = self._retry_at - time.monotonic()
                if pause > 0:  # a delivery just failed: do not resend in a tight loop
                    await asyncio.sleep(pause)
                try:
                    producer = await self._connected_producer()
                    sent = await self._send_some(producer)
                except Exception:  # a bug or a bad setting must not end reporting silently
                    log.exception("burnguard: the cost event sender failed; retrying")
                    sent = False
                if not sent:
                    await asyncio.sleep(self.reconnect_backoff_s[0])

    async def _connected_producer(self) -> AIOKafkaProducer:
        """The started producer; while Kafka cannot be reached, retries with backoff (never gives up)."""
        delay = self.reconnect_backoff_s[0]
        while self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                linger_ms=self.linger_ms,
                acks="all",
                **self.producer_options,
            )
            try:
                await producer.start()
            except asyncio.CancelledError:
                with contextlib.suppress(KafkaError, OSError):
                    await producer.stop()
                raise
            except (KafkaError, OSError) as exc:
                with contextlib.suppress(KafkaError, OSError):
                    await producer.stop()
                self._warn.warn(
                    "connect",
                    f"burnguard: cannot reach Kafka at {self.bootstrap_servers} ({type(exc).__name__}); "
                    f"{len(self._buffer)} cost event(s) buffered, retrying",
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_backoff_s[1])
            else:
                self._producer = producer
        return self._producer

    async def _send_some(self, producer: AIOKafkaProducer) -> bool:
        """Hand up to a batch of buffered events to the producer; ``False`` if Kafka refused them."""
        with self._lock:
            batch = [self._buffer.popleft() for _ in range(min(_SEND_BATCH, len(self._buffer)))]
            self._in_flight += len(batch)
        for i, (key, value) in enumerate(batch):
            try:
                future = await producer.send(self.topic, value=value, key=key)
            except (KafkaError, OSError) as exc:
                if isinstance(exc, MessageSizeTooLargeError):  # will never fit: drop it, say so
                    self._drop_oversized(exc)
                    continue
                self._requeue(batch[i:], exc)
                return False
            future.add_done_callback(lambda f, item=(key, value): self._delivered(f, item))
        return True

    def _drop_oversized(self, exc: BaseException) -> None:
        with self._lock:
            self._in_flight -= 1
            self._counts["invalid"] += 1
        self._warn.warn("invalid", f"burnguard: a cost event was too large for Kafka and was dropped ({exc!r})")

    def _delivered(self, future: asyncio.Future[Any], item: tuple[bytes, bytes]) -> None:
        exc = None if future.cancelled() else future.exception()
        if isinstance(exc, MessageSizeTooLargeError):
            self._drop_oversized(exc)
        elif future.cancelled() or exc is not None:
            self._requeue([item], exc)
        else:
            with self._lock:
                self._in_flight -= 1
                self._counts["sent"] += 1
        if self._progress is not None:
            self._progress.set()

    def _requeue(self, items: list[tuple[bytes, bytes]], exc: BaseException | None) -> None:
        self._retry_at = time.monotonic() + self.reconnect_backoff_s[0]
        with self._lock:
            self._in_flight -= len(items)
            self._counts["retried"] += len(items)
            room = max(0, self.max_buffered - len(self._buffer))
            kept, lost = items[:room], len(items) - room
            self._buffer.extendleft(reversed(kept))
            if lost > 0:
                self._counts["dropped"] += lost
        self._warn.warn("retry", f"burnguard: cost event delivery failed ({exc!r}); queued again", logging.INFO)
        if lost > 0:
            self._warn.warn("dropped", f"burnguard: {lost} cost event(s) dropped: buffer full after a failed delivery")
        self._wake_sender()
