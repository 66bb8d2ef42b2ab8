"""The roll-up stage's test fleet configuration and comparison (beside conftest, which stays under 400 lines)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from burnguard.replay import replay_file
from detectors.config import BurnguardConfig, load_config
from schemas.timefmt import parse_ts
from streams.feed import encode_event
from tests.streams.reference import TASK_FLEET_CONFIG, task_fleet

#: :data:`TASK_FLEET_CONFIG` plus what makes tenants and teams of :func:`task_fleet` raise burn-rate
#: anomalies: a more sensitive learned rate for one tenant (a smaller material excess too), and
#: daily money budgets of a team and a tenant that the fleet crosses (70, 90 and 100 %), of another
#: team that it burns too fast
ROLLUP_FLEET_CONFIG = (
    TASK_FLEET_CONFIG.replace('"task-fleet-1"', '"rollup-fleet-1"')
    + """
overrides:
  - match: {tenant: initech}
    detectors:
      burn_rate: {factor: 2, critical_factor: 3, min_sigmas: 1, min_excess_usd_per_hour: 0.25, long_factor: 1.2,
                  min_usd_per_hour: 1}
budgets:
  - {name: support-daily, match: {tenant: acme-retail, team: support}, period: day, amount_usd: 6}
  - {name: northwind-daily, match: {tenant: northwind-bank}, period: day, amount_usd: 40}
  - {name: platform-daily, match: {tenant: initech, team: platform}, period: day, amount_usd: 120}
"""
)


def rolled_up(anomalies: Sequence[dict[str, Any]], cutoff: float) -> set[tuple[Any, ...]]:
    """The anomalies at or before ``cutoff`` scoped to a tenant or a team (the roll-up stage's), as
    ``(scope, metric, anomaly_id, detector, status, severity, action, observed)``, copies counted once;
    ``scope`` is the tuple of its values (tenant, team)."""
    return {
        (
            tuple(a["scope"][k] for k in ("tenant", "team") if k in a["scope"]),
            a["metric"],
            a["anomaly_id"],
            a["detector"],
            a["status"],
            a["severity"],
            a["action"],
            a["observed"],
        )
        for a in anomalies
        if parse_ts(a["ts"]) <= cutoff and "workflow" not in a["scope"]
    }


def fleet_replayed(tmp_path: Path) -> tuple[BurnguardConfig, list[dict[str, Any]], list[dict[str, Any]], float]:
    """The task fleet written to ``tmp_path`` under :data:`ROLLUP_FLEET_CONFIG`: the config, the
    events, ``burnguard replay``'s anomalies (as JSON objects) and the comparison cutoff."""
    path = tmp_path / "fleet.jsonl"
    config_path = tmp_path / "burnguard.yaml"
    config_path.write_text(ROLLUP_FLEET_CONFIG)
    config = load_config(config_path)
    events = task_fleet()
    path.write_bytes(b"".join(encode_event(ev)[1] + b"\n" for ev in events))
    expected = [orjson.loads(a.to_json()) for a in replay_file(path, None, config=config).anomalies]
    return config, events, expected, max(ev["ts"] for ev in events) - config.lateness_s
