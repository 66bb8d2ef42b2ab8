"""The scorecard at 80 and 120 columns: every name and figure whole, never cut with "…", even with
long workflow names and large sums; incidents named as the README names them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from rich.console import Console

from alerting.testing.anomalies import T0, make_anomaly
from burnguard.scorecard import Scorecard, score_run


@dataclass(frozen=True)
class _Incident:
    kind: str
    start_ts: float
    end_ts: float
    scope: dict[str, str] = field(default_factory=dict)
    root_task_id: str | None = None
    cost_without_kill_usd: float | None = None


def _card() -> Scorecard:
    runaway = _Incident("runaway_loop", T0, T0 + 3600, {"workflow": "customer-onboarding"}, "t1", 123_456.78)
    explosion = _Incident("subagent_explosion", T0, T0 + 600, {"workflow": "research-assistant"}, "t2", 3.06)
    flood = _Incident("traffic_flood", T0, T0 + 600, {"workflow": "pr-review"})
    found = [
        make_anomaly(detector="runaway_task", workflow="customer-onboarding", task="t1", ts=T0 + 60),
        make_anomaly(detector="task_budget", workflow="customer-onboarding", task="t1", ts=T0 + 90,
                     severity="critical", action="kill"),
        make_anomaly(detector="fan_out", workflow="research-assistant", task="t2", ts=T0 + 30),
        make_anomaly(detector="burn_rate", workflow="somewhere-else", task=None, ts=T0 + 40),
    ]
    return score_run([runaway, explosion, flood], found, {"t1": 12_345.67, "t2": 0.2})


@pytest.mark.parametrize("width", [80, 120])
def test_the_scorecard_fits_without_cutting_a_word(width: int) -> None:
    card = _card()
    console = Console(record=True, width=width)
    console.print(card.table(width))
    console.print(card.false_alert_list())
    text = console.export_text()
    assert "…" not in text, text
    assert all(len(line) <= width for line in text.splitlines())
    flat = " ".join(text.replace("│", " ").replace("┃", " ").split())
    for words in ("runaway loop", "sub-agent explosion", "traffic flood", "MISSED", "killed", "alerted",
                  "runaway_task", "task_budget", "fan_out", "$12,345.67", "$123,456.78", "(90% saved)"):
        tokens = {t.removesuffix(",") for t in flat.split()}
        assert all(w in tokens for w in words.split()), (words, text)
    assert "(customer-onboarding)" in flat and "(research-assistant)" in flat
    assert "burn_rate warning" in flat  # the one false alert, listed


def test_false_alerts_past_the_limit_are_counted_not_dropped() -> None:
    card = _card()
    card.false_alerts.extend(card.false_alerts * 4)
    console = Console(record=True, width=80)
    console.print(card.false_alert_list(limit=3))
    text = console.export_text()
    assert text.count("burn_rate warning") == 3 and "and 2 more" in text
