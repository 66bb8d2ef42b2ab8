"""Contract scenarios of ``task_budget``, ``retry_rate`` and ``burn_rate`` for ``test_contract.py``.

Each function returns ``(warmup, spike)``: contract-format events (dicts, ``ts`` in epoch seconds)
of one workflow. The warm-up is normal traffic long enough for the detector's default
``min_samples``; the spike is one 10x anomaly the detector flags with its default parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.detectors.factory_b import T0, ev, step

__all__ = ["SCENARIOS", "burn_rate_scenario", "retry_rate_scenario", "task_budget_scenario"]

Events = list[dict[str, Any]]


def _task(task: str, start: float, costs: list[float], every_s: float, **started: Any) -> Events:
    out = [ev("task_started", task, start, **started)]
    out += [step(task, start + (i + 1) * every_s, cost) for i, cost in enumerate(costs)]
    out.append(ev("task_finished", task, start + (len(costs) + 1) * every_s, outcome="success"))
    return out


def task_budget_scenario() -> tuple[Events, Events]:
    """Five tasks spending 30 % of their $1 budget, then one spending $10 (10x its budget)."""
    warmup: Events = []
    for k in range(5):
        warmup += _task(f"tb-{k}", T0 + 120 * k, [0.03] * 10, 10.0, budget_usd=1.0)
    spike = _task("tb-spike", T0 + 900, [1.0] * 10, 10.0, budget_usd=1.0)
    return warmup, spike


def _retry_task(task: str, start: float, failing: bool) -> Events:
    """Five model steps 5 s apart; a failing task has one error answered by a successful retry
    (never more than one failure in a row, so the per-task stop rule stays quiet)."""
    out = [ev("task_started", task, start)]
    for i in range(5):
        fields: dict[str, Any] = {}
        if failing and i in (1, 2):
            fields = {"status": "error"} if i == 1 else {"attempt": 2}
        out.append(step(task, start + 5 * (i + 1), 0.002, **fields))
    out.append(ev("task_finished", task, start + 5 * 6, outcome="success"))
    return out


def retry_rate_scenario() -> tuple[Events, Events]:
    """Eight 10-min windows of 20 tasks with one failing (5 %), then one window with ten (50 %)."""
    warmup: Events = []
    for w in range(8):
        for k in range(20):
            warmup += _retry_task(f"rr-{w}-{k}", T0 + 600 * w + 30 * k, k == 7)
    spike: Events = []
    for k in range(20):
        spike += _retry_task(f"rr-spike-{k}", T0 + 600 * 8 + 30 * k, k % 2 == 0)
    return warmup, spike


def burn_rate_scenario() -> tuple[Events, Events]:
    """2.5 h at $12/h (one $0.20 call a minute), then a quarter hour at $120/h (ten calls a minute).

    A burn needs more than one 5-minute bucket: the last hour must confirm it (see burn_rate)."""
    warmup: Events = []
    for k in range(15):  # 15 tasks of 10 minutes each
        warmup += _task(f"br-{k}", T0 + 600 * k, [0.2] * 10, 60.0)
    spike = _task("br-spike", T0 + 600 * 15, [0.2] * 150, 6.0)
    return warmup, spike


SCENARIOS: tuple[tuple[str, Callable[[], tuple[Events, Events]]], ...] = (
    ("task_budget", task_budget_scenario),
    ("retry_rate", retry_rate_scenario),
    ("burn_rate", burn_rate_scenario),
)
