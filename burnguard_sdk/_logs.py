"""Warnings that repeat (Kafka down, buffer full) logged once in a while with a count, never silently."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["ThrottledLog"]


class ThrottledLog:
    """Logs the first occurrence of a problem at once, then at most every ``interval_s`` with how
    many happened in between; :meth:`flush` logs what is still untold."""

    def __init__(self, logger: logging.Logger, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._untold: dict[str, int] = {}

    def warn(self, what: str, message: str, level: int = logging.WARNING) -> None:
        """One occurrence of ``what``; ``message`` says what happened (the count is added)."""
        now = self._clock()
        with self._lock:
            untold = self._untold.get(what, 0) + 1
            last = self._last.get(what)
            if last is not None and now - last < self._interval_s:
                self._untold[what] = untold
                return
            self._last[what] = now
            self._untold[what] = 0
        self._logger.log(level, "%s (%d time(s) since the last report)", message, untold)

    def flush(self, what: str, message: str, level: int = logging.WARNING) -> None:
        with self._lock:
            untold = self._untold.pop(what, 0)
        if untold:
            self._logger.log(level, "%s (%d time(s) since the last report)", message, untold)
