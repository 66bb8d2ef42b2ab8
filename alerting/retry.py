"""The one retry stage: what is retryable, how long to wait, when to give up.

:func:`is_retryable` is the only place that decides: 5xx, 429 and transport failures (timeouts,
refused or reset connections) are retried; any other 4xx — and a Slack ``ok: false`` on a 200 —
is permanent (retrying a bad token or an unknown channel only delays the dead letter).
Waits grow exponentially with full jitter up to ``max_backoff_s``; a ``Retry-After`` header is
honoured (capped at ``max_retry_after_s``); after ``max_elapsed_s`` the delivery is given up.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
import httpx2

from alerting.config import RetrySettings
from alerting.notifier import DeliveryError

__all__ = ["DeliveryOutcome", "RetryStage", "is_retryable", "retry_after_s"]

log = logging.getLogger("burnguard.alerting")

_TRANSPORT = (TimeoutError, ConnectionError, aiohttp.ClientConnectionError, httpx2.TransportError)


def is_retryable(status: int | None, headers: Mapping[str, str] | None, exc: BaseException | None) -> bool:
    """Whether a failed delivery may succeed if tried again.

    >>> [is_retryable(s, {}, None) for s in (500, 503, 429, 400, 401, 403, 404, 413, 200)]
    [True, True, True, False, False, False, False, False, False]
    >>> is_retryable(None, None, TimeoutError()), is_retryable(None, None, ValueError())
    (True, False)
    """
    if status is not None:
        return status == 429 or 500 <= status <= 599
    while exc is not None:  # a library's own error may wrap the transport failure
        if isinstance(exc, _TRANSPORT):
            return True
        exc = exc.__cause__
    return False


def retry_after_s(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), else ``None``.

    >>> retry_after_s({"retry-after": "3"}), retry_after_s({"Retry-After": "soon"}), retry_after_s({})
    (3.0, None, None)
    """
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class DeliveryOutcome:
    """``delivered``, or why not: ``permanent`` (not retryable) or ``gave_up`` (still failing at the deadline)."""

    result: str
    attempts: int
    error: str | None = None
    status: int | None = None

    @property
    def delivered(self) -> bool:
        return self.result == "delivered"


class RetryStage:
    def __init__(
        self,
        settings: RetrySettings,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.sleep = sleep
        self.clock = clock
        self.jitter = jitter

    def backoff_s(self, attempt: int, headers: Mapping[str, str] | None) -> float:
        asked = retry_after_s(headers)
        if asked is not None:
            return min(asked, self.settings.max_retry_after_s)
        ceiling = min(self.settings.max_backoff_s, self.settings.initial_backoff_s * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * self.jitter())

    async def run(self, attempt: Callable[[], Awaitable[None]], what: str) -> DeliveryOutcome:
        """Call ``attempt`` until it succeeds, fails permanently, or the deadline passes.

        ``what`` names the delivery in logs (a notification id and a channel: never a secret).
        """
        started = self.clock()
        tries = 0
        while True:
            tries += 1
            try:
                await attempt()
                return DeliveryOutcome("delivered", tries)
            except DeliveryError as exc:
                status, headers, error, cause = exc.status, exc.headers, str(exc), exc.__cause__
            except Exception as exc:  # a notifier bug: judged like any error, logged, never swallowed
                status, headers, error, cause = None, {}, f"unexpected {type(exc).__name__}", exc
            if not is_retryable(status, headers, cause):
                log.warning("delivery %s failed permanently after %d attempt(s): %s", what, tries, error)
                return DeliveryOutcome("permanent", tries, error, status)
            wait = self.backoff_s(tries, headers)
            if self.clock() + wait - started > self.settings.max_elapsed_s:
                log.warning("delivery %s given up after %d attempt(s): %s", what, tries, error)
                return DeliveryOutcome("gave_up", tries, error, status)
            log.info("delivery %s failed (%s); retry %d in %.1f s", what, error, tries, wait)
            await self.sleep(wait)
