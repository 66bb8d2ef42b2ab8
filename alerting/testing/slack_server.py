"""A local server that speaks the Slack Web API (``chat.postMessage``, ``chat.update``) and checks shape.

Every request is checked like Slack would: the bearer token, JSON body, ``channel``, ``text`` or
``blocks`` (≤ 50 blocks, known types, header ≤ 150 and section text ≤ 3000 characters, ≤ 10 fields
of ≤ 2000), ``thread_ts``/``ts`` formats. A malformed request is recorded in ``violations`` and
answered ``ok: false`` as Slack does. Scripted :class:`Answer` s simulate 429 + ``Retry-After``,
5xx (an HTML body, like a load balancer's) or a hang.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from aiohttp import web

from alerting.testing.http import Answer, RecordedRequest, RecordedServer

__all__ = ["Answer", "SlackServer"]

_TS = re.compile(r"^\d{10}\.\d{6}$")
_BLOCK_TYPES = {"header", "section", "context", "divider", "actions", "image", "rich_text"}


def _text_len(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 0


def block_problems(blocks: Any) -> list[str]:
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return ["blocks must be a list of 1..50 blocks"]
    problems = []
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _BLOCK_TYPES:
            problems.append(f"blocks[{i}]: unknown type {kind!r}")
            continue
        if kind == "header" and (block["text"].get("type") != "plain_text" or not 1 <= _text_len(block["text"]) <= 150):
            problems.append(f"blocks[{i}]: header needs plain_text of 1..150 characters")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"blocks[{i}]: section needs text or fields")
            if "text" in block and not 1 <= _text_len(block["text"]) <= 3000:
                problems.append(f"blocks[{i}]: section text must be 1..3000 characters")
            fields = block.get("fields", [])
            if len(fields) > 10 or any(not 1 <= _text_len(f) <= 2000 for f in fields):
                problems.append(f"blocks[{i}]: at most 10 fields of 1..2000 characters")
        if kind == "context" and not 1 <= len(block.get("elements", [])) <= 10:
            problems.append(f"blocks[{i}]: context needs 1..10 elements")
    return problems


class SlackServer(RecordedServer):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self._ts = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/chat.postMessage", self._post), web.post("/api/chat.update", self._update)]

    def _common(self, recorded: RecordedRequest, needs: tuple[str, ...]) -> list[str]:
        body = recorded.body
        if not isinstance(body, dict):
            return ["body must be a JSON object"]
        problems = []
        for name in needs:
            if not isinstance(body.get(name), str) or not body[name]:
                problems.append(f"{name} is required (a non-empty string)")
        if "text" not in body and "blocks" not in body:
            problems.append("text or blocks is required")
        if "text" in body and (not isinstance(body["text"], str) or len(body["text"]) > 40_000):
            problems.append("text must be a string of at most 40000 characters")
        if "blocks" in body:
            problems += block_problems(body["blocks"])
        for name in ("thread_ts", "ts"):
            if name in body and not _TS.match(str(body[name])):
                problems.append(f"{name} {body[name]!r} is not a Slack timestamp")
        return problems

    async def _handle(
        self, request: web.Request, needs: tuple[str, ...]
    ) -> tuple[RecordedRequest, web.Response | None]:
        recorded = await self._read(request)
        if not recorded.problems:
            self._problem(recorded, self._common(recorded, needs))
        answer = await self._scripted(recorded)
        if answer is not None and answer.status != 200:
            if answer.status == 429:
                headers = {"Retry-After": f"{answer.retry_after or 1:g}"}
                return recorded, web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
            if answer.status >= 500:
                return recorded, web.Response(status=answer.status, text="<html>upstream error</html>",
                                              content_type="text/html")
            return recorded, web.json_response({"ok": False, "error": "invalid_request"}, status=answer.status)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            recorded.answered = 200
            return recorded, web.json_response({"ok": False, "error": "invalid_auth"})
        if recorded.problems:
            recorded.answered = 200
            return recorded, web.json_response({"ok": False, "error": "invalid_arguments"})
        recorded.answered = 200
        return recorded, None

    async def _post(self, request: web.Request) -> web.Response:
        recorded, failure = await self._handle(request, ("channel",))
        if failure is not None:
            return failure
        ts = f"1793606400.{next(self._ts):06d}"
        message = {**recorded.body, "ts": ts}
        self.messages.append(message)
        channel = "C0" + str(recorded.body["channel"]).lstrip("#").upper()[:9]
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    async def _update(self, request: web.Request) -> web.Response:
        recorded, failure = await self._handle(request, ("channel", "ts"))
        if failure is not None:
            return failure
        self.updates.append(recorded.body)
        return web.json_response({"ok": True, "channel": recorded.body["channel"], "ts": recorded.body["ts"]})

    @property
    def top_level(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if "thread_ts" not in m]

    @property
    def replies(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if "thread_ts" in m]

