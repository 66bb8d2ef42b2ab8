"""What the recorded Slack and PagerDuty servers share: scripted answers, the request log, start/stop."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

__all__ = ["Answer", "RecordedRequest", "RecordedServer"]


@dataclass(frozen=True)
class Answer:
    """A scripted answer: an HTTP status (with ``Retry-After`` when given), or ``hang`` (never answer)."""

    status: int = 200
    retry_after: float | None = None
    hang: bool = False


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    answered: int | None = None
    problems: list[str] = field(default_factory=list)


class RecordedServer:
    """An aiohttp server on 127.0.0.1 (an ephemeral port), optionally over TLS, that records requests."""

    scheme = "http"

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._script: list[Answer] = []
        self._outage: Answer | None = None
        self._outage_then: Answer | None = None
        self._outage_after = 0
        self._outage_seen = 0
        self._outage_only: str | None = None
        self._release = asyncio.Event()
        self._outage_over = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order; afterwards answer normally."""
        self._script.extend(answers)

    def outage(
        self, answer: Answer | None, *, then: Answer | None = None, after: int = 1, only: str | None = None
    ) -> None:
        """Answer every request with ``answer`` (after the scripted ones) until called with ``None``;
        requests hanging in a ``hang`` outage are then answered 503 (their client has timed out: an
        answer it never reads must not count as a delivered message).

        With ``then``, the outage changes as a real one often does: the first ``after`` requests of the
        outage get ``answer`` and every later one ``then`` — ``outage(Answer(500), then=Answer(hang=True),
        after=3)`` is "three 500s, then nothing answers". ``only`` limits it to one endpoint (a path
        ending, e.g. ``chat.update``); the others answer normally. ``outage_answers`` counts the
        requests the outage (any phase) has answered or is holding.
        """
        if then is not None and after < 0:
            raise ValueError("after must be >= 0")
        self._outage = answer
        self._outage_then = then if answer is not None else None
        self._outage_after = after
        self._outage_only = only if answer is not None else None
        if answer is None:
            self._outage_over.set()
        else:
            self._outage_seen = 0
            self._outage_over = asyncio.Event()

    @property
    def outage_answers(self) -> int:
        """Requests taken by the current (or last) outage, in all its phases."""
        return self._outage_seen

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, ssl_context=self.ssl_context).start()
        return self

    async def close(self) -> None:
        self._release.set()
        self._outage_over.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        body: Any = None
        problems = []
        if not ctype.startswith("application/json"):
            problems.append(f"Content-Type {ctype!r}, expected application/json")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            problems.append("body is not JSON")
        recorded = RecordedRequest(request.path, dict(request.headers), body)
        self._problem(recorded, problems)
        self.requests.append(recorded)
        return recorded

    async def _scripted(self, recorded: RecordedRequest) -> Answer | None:
        if not self._script:
            if self._outage is None or (self._outage_only and not recorded.path.endswith(self._outage_only)):
                return None
            answer = self._outage
            if self._outage_then is not None and self._outage_seen >= self._outage_after:
                answer = self._outage_then
            self._outage_seen += 1
            if answer.hang:  # until the outage ends; the client has given up by then, so no success
                await self._outage_over.wait()
                answer = Answer(503)
            recorded.answered = answer.status
            return answer
        answer = self._script.pop(0)
        if answer.hang:
            await self._release.wait()
        recorded.answered = answer.status
        return answer

    def _problem(self, recorded: RecordedRequest, problems: list[str]) -> None:
        recorded.problems.extend(problems)
        self.violations.extend(f"{recorded.path}: {p}" for p in problems)
