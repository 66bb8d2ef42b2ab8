"""Times as the wire contract writes them, with the stdlib only (a copy of ``schemas.timefmt``'s rules).

The kill-command signature covers times in this exact spelling, so parsing and formatting must
give the server's bytes: RFC 3339 UTC with milliseconds, ``Z`` for the zone.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["format_ts", "parse_ts"]

MIN_TS = 946_684_800.0  # 2000-01-01: anything earlier is a producer bug (milliseconds sent as seconds ...)
MAX_TS = 4_102_444_800.0  # 2100-01-01


def parse_ts(value: object) -> float:
    """Epoch seconds from an RFC 3339 string with a zone or an epoch-seconds number.

    >>> parse_ts("2026-11-02T10:00:00.250Z")
    1793613600.25
    """
    if isinstance(value, bool):
        raise ValueError("time must be an RFC 3339 string or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        ts = float(value)
    elif isinstance(value, str):
        if len(value) > 64:
            raise ValueError("time string longer than 64 characters")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an RFC 3339 time: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"time {value[:40]!r} has no zone")
        ts = parsed.timestamp()
    else:
        raise ValueError(f"time must be an RFC 3339 string or epoch seconds, not {type(value).__name__}")
    if not math.isfinite(ts):
        raise ValueError("time is not a finite number")
    if not MIN_TS <= ts < MAX_TS:
        raise ValueError(f"time {ts!r} is outside 2000-01-01..2100-01-01")
    return ts


def format_ts(ts: float) -> str:
    """RFC 3339 UTC with milliseconds.

    >>> format_ts(1793613600.25)
    '2026-11-02T10:00:00.250Z'
    """
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
