"""A local HTTPS server that speaks the PagerDuty Events API v2 (``POST /v2/enqueue``) and checks shape.

Served over TLS with a self-signed certificate made at start (:func:`self_signed_pem`): ``client_ssl``
is what a client must trust (``cert_pem`` the same, for a client in another process). Each event is
checked like PagerDuty would: a known
``routing_key`` (32 characters), ``event_action``, ``dedup_key`` (≤ 255, required to resolve), and
for a trigger a ``payload`` with ``summary`` (≤ 1024), ``source`` and one of the four severities.
Accepted events are in ``events``; malformed ones in ``violations``, answered 400.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from aiohttp import web

from alerting.testing.http import Answer, RecordedRequest, RecordedServer
from alerting.testing.tls import self_signed_pem

__all__ = ["Answer", "PagerDutyServer"]

_SEVERITIES = {"critical", "error", "warning", "info"}
_TOP = {"routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links", "images"}
_PAYLOAD = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}


def event_problems(body: Any, routing_keys: set[str]) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = [f"unknown field {k!r}" for k in body if k not in _TOP]
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32 or key not in routing_keys:
        problems.append("routing_key missing, not 32 characters, or unknown")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        problems.append(f"event_action {action!r} is not trigger, acknowledge or resolve")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not 1 <= len(dedup) <= 255):
        problems.append("dedup_key must be a string of 1..255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        problems.append(f"dedup_key is required to {action}")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "payload is required to trigger"]
        problems += [f"unknown payload field {k!r}" for k in payload if k not in _PAYLOAD]
        if not isinstance(payload.get("summary"), str) or not 1 <= len(payload["summary"]) <= 1024:
            problems.append("payload.summary must be a string of 1..1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            problems.append("payload.source is required")
        if payload.get("severity") not in _SEVERITIES:
            problems.append(f"payload.severity {payload.get('severity')!r} is not one of {sorted(_SEVERITIES)}")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            problems.append("payload.custom_details must be an object")
        if "timestamp" in payload:
            try:
                datetime.fromisoformat(str(payload["timestamp"]))
            except ValueError:
                problems.append("payload.timestamp is not ISO 8601")
        for link in body.get("links") or []:
            if not isinstance(link, dict) or not isinstance(link.get("href"), str):
                problems.append("links[] need an href")
    return problems


class PagerDutyServer(RecordedServer):
    def __init__(self, routing_keys: set[str]) -> None:
        server_ssl, self.client_ssl, self.cert_pem = self_signed_pem()
        super().__init__(server_ssl)
        self.routing_keys = routing_keys
        self.events: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v2/enqueue", self._enqueue)]

    async def _enqueue(self, request: web.Request) -> web.Response:
        recorded: RecordedRequest = await self._read(request)
        if not recorded.problems:
            self._problem(recorded, event_problems(recorded.body, self.routing_keys))
        answer = await self._scripted(recorded)
        if answer is not None and answer.status >= 300:
            headers = {"Retry-After": f"{answer.retry_after:g}"} if answer.retry_after is not None else {}
            body = {"status": "throttle event", "message": "Requests for this service are arriving too quickly."}
            if answer.status != 429:
                body = {"status": "error", "message": f"scripted {answer.status}"}
            return web.json_response(body, status=answer.status, headers=headers)
        if recorded.problems:
            recorded.answered = 400
            return web.json_response(
                {"status": "invalid event", "message": "Event object is invalid", "errors": recorded.problems},
                status=400,
            )
        event = dict(recorded.body)
        dedup = event.get("dedup_key") or hashlib.sha256(str(event).encode()).hexdigest()[:32]
        event["dedup_key"] = dedup
        self.events.append(event)
        recorded.answered = 202
        return web.json_response({"status": "success", "message": "Event processed", "dedup_key": dedup}, status=202)
