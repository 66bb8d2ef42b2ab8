"""Values that lax pydantic would coerce into numbers (or times), per field of the cost event.

Each one must be rejected with the field named; none may count as spend. Shared by the unit tests,
the worker test (tests/streams/test_strict_types_kafka.py) and the chaos test.
"""

from __future__ import annotations

from typing import Any

#: ``(field, value)``: a bool, a string holding a number, or an integral float for an int field
COERCED: list[tuple[str, Any]] = [
    ("cost_usd", True),
    ("cost_usd", False),
    ("cost_usd", "1e3"),
    ("cost_usd", " 7 "),
    ("cost_usd", "0.25"),
    ("cost_usd", "1_000"),
    ("budget_usd", True),
    ("budget_usd", "2.5"),
    ("value_usd", True),
    ("value_usd", "-3"),
    ("input_tokens", "500"),
    ("input_tokens", True),
    ("input_tokens", 500.0),
    ("output_tokens", "50"),
    ("output_tokens", 1e3),
    ("cached_input_tokens", False),
    ("attempt", "3"),
    ("attempt", True),
    ("attempt", 3.0),
    ("duration_ms", "120"),
    ("duration_ms", 120.0),
    ("ts", True),
    ("ts", "1793613600"),
    ("kind", "STEP"),
    ("category", " model"),
    ("status", "OK"),
]

ENUM_FIELDS = frozenset({"kind", "category", "status", "outcome"})


def kind_of(field: str, value: Any) -> str:
    """What sort of coercion ``value`` tries, for the printed figures."""
    if field in ENUM_FIELDS:
        return "enum spelling"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    return "integral float"
