"""Fixtures for the SDK tests against the real broker (``scripts/kafka-local``).

Each test gets its own topics (:class:`SdkTopics`) and kill keys; commands are made and signed with
the server's own model (``schemas.killswitch``), so the SDK is checked against what burnguard sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from schemas.killswitch import KillCommand, KillMode, KillScope, KillTarget
from tests.streams.conftest import bootstrap_servers, read_all

PARTITIONS = 3


@dataclass(frozen=True)
class SdkTopics:
    bootstrap: str
    events: str
    killswitch: str
    acks: str
    key: str  # the current kill key of this test
    old_key: str  # an older key still accepted (rotation)

    async def create(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(t, PARTITIONS, 1) for t in (self.events, self.killswitch, self.acks)]
            )
            # a topic just created can have no leader yet: wait until each one describes its partitions
            deadline = time.monotonic() + 30
            while True:
                described = await admin.describe_topics([self.events, self.killswitch, self.acks])
                if all(len(d.get("partitions") or ()) == PARTITIONS and
                       all(p["leader"] >= 0 for p in d["partitions"]) for d in described):  # fmt: skip
                    return
                assert time.monotonic() < deadline, f"topics without leaders: {described}"
                await asyncio.sleep(0.2)
        finally:
            await admin.close()

    def command(
        self,
        target: dict[str, str],
        *,
        scope: str = "task",
        expires_in_s: float = 300.0,
        issued_at: float | None = None,
        command_id: str | None = None,
        reason: str = "runaway: 50 model calls in 10 s",
    ) -> KillCommand:
        """An unsigned server-side command (``.signed(key)`` it)."""
        now = time.time() if issued_at is None else issued_at
        return KillCommand(
            command_id=command_id or f"cmd-{uuid.uuid4().hex[:12]}",
            anomaly_id=f"runaway_task-{uuid.uuid4().hex[:8]}",
            target=KillTarget(scope=KillScope(scope), **target),
            reason=reason,
            issued_at=now,
            expires_at=now + expires_in_s,
            mode=KillMode.AUTONOMOUS,
        )

    def signed(self, command: KillCommand) -> KillCommand:
        return command.signed(self.key.encode())

    async def publish(self, *commands: KillCommand | bytes) -> None:
        """Send commands (or raw bytes) to the kill-switch topic as burnguard does: key = target id."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for c in commands:
                if isinstance(c, bytes):
                    await producer.send_and_wait(self.killswitch, value=c, key=b"junk")
                else:
                    value = c.model_dump_json(by_alias=True, exclude_none=True).encode()
                    await producer.send_and_wait(self.killswitch, value=value, key=c.target.key.encode())
        finally:
            await producer.stop()

    async def acks_for(self, command_id: str | None = None) -> list[dict[str, Any]]:
        records = await read_all(self.bootstrap, self.acks)
        acks = [json.loads(r.value) | {"_key": r.key.decode()} for r in records]
        return [a for a in acks if command_id is None or a["command_id"] == command_id]

    async def events_read(self) -> list[ConsumerRecord[bytes, bytes]]:
        return await read_all(self.bootstrap, self.events)


@pytest.fixture
async def topics() -> AsyncIterator[SdkTopics]:
    tag = uuid.uuid4().hex[:10]
    t = SdkTopics(
        bootstrap=bootstrap_servers(),
        events=f"sdktest-{tag}-events",
        killswitch=f"sdktest-{tag}-killswitch",
        acks=f"sdktest-{tag}-acks",
        key=f"key-{uuid.uuid4().hex}",
        old_key=f"old-{uuid.uuid4().hex}",
    )
    await t.create()
    yield t


async def eventually(check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    """Poll ``check`` (sync or async) until truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g}s")
        await asyncio.sleep(0.1)


def free_port() -> int:
    """A port nothing listens on (connections to it are refused until something binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpForwarder:
    """127.0.0.1:``port`` forwarding to the broker once :meth:`open` is called; refused before."""

    def __init__(self, port: int, target: str) -> None:
        self.port = port
        host, _, target_port = target.rpartition(":")
        self._target = (host, int(target_port))
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        for task in (asyncio.create_task(pipe(reader, up_writer)), asyncio.create_task(pipe(up_reader, writer))):
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._pipes):
                task.cancel()
            await self._server.wait_closed()
