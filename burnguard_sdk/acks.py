"""Acknowledgements of kill commands on ``burnguard.killswitch.acks`` (key = ``command_id``).

An ack may be submitted from any thread (a synchronous agent's guard exits on its own thread); it is
delivered from the listener's loop and retried until Kafka takes it or the listener stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from burnguard_sdk._logs import ThrottledLog
from burnguard_sdk.commands import KillAck

__all__ = ["AckSender"]

log = logging.getLogger("burnguard_sdk.listener")


class AckSender:
    """Owns the producer of acks; ``count(what)`` is told ``acked`` / ``ack_failed``."""

    def __init__(self, bootstrap_servers: str, topic: str, count: Callable[[str], None], warn: ThrottledLog) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._count = count
        self._warn = warn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._producer: AIOKafkaProducer | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver from ``loop`` (the listener's)."""
        self._loop = loop
        self._lock = asyncio.Lock()

    def submit(self, ack: KillAck) -> None:
        """Queue ``ack`` for delivery; returns at once, from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            log.error("burnguard: cannot ack kill command %s: the listener is not running", ack.command_id)
            self._count("ack_failed")
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._spawn(ack)
        else:
            loop.call_soon_threadsafe(self._spawn, ack)

    def _spawn(self, ack: KillAck) -> None:
        task = asyncio.create_task(self._deliver(ack), name=f"burnguard-ack-{ack.command_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, ack: KillAck) -> None:
        delay = 0.2
        while True:
            try:
                producer = await self.producer()
                await producer.send_and_wait(self.topic, value=ack.to_json(), key=ack.command_id.encode())
            except (KafkaError, OSError) as exc:
                self._warn.warn("ack", f"burnguard: kill ack {ack.command_id} not delivered yet ({exc!r}); retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._count("acked")
            log.info("burnguard: acknowledged kill command %s", ack.command_id)
            return

    async def producer(self) -> AIOKafkaProducer:
        """The started producer (started on first use)."""
        assert self._lock is not None, "AckSender.bind() first"
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(KafkaError, OSError):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def stop(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for acks in flight, then stop the producer."""
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=timeout_s)
            for task in late:
                task.cancel()
                self._count("ack_failed")
                log.error("burnguard: a kill ack was not delivered before stop (Kafka unreachable?)")
        if self._producer is not None:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await asyncio.wait_for(self._producer.stop(), timeout_s)
            self._producer = None
