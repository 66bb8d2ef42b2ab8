"""Event-time parsing and formatting: RFC 3339 in, RFC 3339 UTC out, epoch seconds inside."""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["MAX_TS", "MIN_TS", "format_ts", "parse_ts"]

#: Accepted event-time range (epoch seconds): 2000-01-01 .. 2100-01-01. Anything outside is a
#: producer bug (milliseconds sent as seconds, a zero timestamp) rather than a real cost.
MIN_TS = 946_684_800.0
MAX_TS = 4_102_444_800.0


def parse_ts(value: object) -> float:
    """Return epoch seconds for an RFC 3339 string with a zone or an epoch-seconds number.

    >>> parse_ts("2026-11-02T10:00:00.250Z")
    1793613600.25
    >>> parse_ts(1793613600)
    1793613600.0
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
            raise ValueError(f"time {value!r} has no zone; add 'Z' or an offset such as '+00:00'")
        ts = parsed.timestamp()
    else:
        raise ValueError(f"time must be an RFC 3339 string or epoch seconds, not {type(value).__name__}")
    if not math.isfinite(ts):
        raise ValueError("time is not a finite number")
    if not MIN_TS <= ts < MAX_TS:
        raise ValueError(_outside_reason(value, ts))
    return ts


def _outside_reason(value: int | float | str, ts: float) -> str:
    """Why a time outside 2000..2100 is refused; the hint about milliseconds only where it can be
    true: a number that would be in range divided by 1,000.

    >>> _outside_reason(1793613600250, 1793613600250.0)
    'time 1793613600250 is outside 2000-01-01..2100-01-01 (milliseconds sent as seconds?)'
    >>> _outside_reason("1999-12-31T23:00:00Z", 946681200.0)
    "time '1999-12-31T23:00:00Z' is outside 2000-01-01..2100-01-01"
    """
    shown = repr(value[:40]) if isinstance(value, str) else repr(value)
    reason = f"time {shown} is outside 2000-01-01..2100-01-01"
    if not isinstance(value, str) and MIN_TS <= ts / 1000 < MAX_TS:
        reason += " (milliseconds sent as seconds?)"
    return reason


def format_ts(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-02T10:00:00.250Z``.

    >>> format_ts(1793613600.25)
    '2026-11-02T10:00:00.250Z'
    """
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
