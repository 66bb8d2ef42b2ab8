"""young_runaway and its pooled estimator: shrinkage toward the team, the fleet guard, the kill
breaker, and minutes written before the detector existed."""

from __future__ import annotations

import math
import random
from typing import Any

from detectors.pooled import PooledCost, log_cost
from detectors.scope_spend import parse_minutes
from detectors.young_runaway import YoungRunawayParams, YoungTaskGuard
from schemas.anomaly import Severity

T0 = 1_793_577_600.0


def _add(pool: PooledCost, team: str, workflow: str, costs: list[float]) -> None:
    for c in costs:
        lg = log_cost(c)
        pool.add(team, workflow, 1, lg, lg * lg, c)


def _lognormal(rng: random.Random, median: float, n: int, sd: float = 0.5) -> list[float]:
    return [median * math.exp(rng.gauss(0.0, sd)) for _ in range(n)]


def test_a_workflow_moves_from_its_teams_estimate_to_its_own_as_its_tasks_accumulate() -> None:
    rng = random.Random(1)
    pool = PooledCost()
    for w in range(4):
        _add(pool, "search", f"wf{w}", _lognormal(rng, 0.10, 40))
    unseen = pool.estimate("search", "costly", min_pool=20, tau2_floor=0.1)
    assert unseen is not None and unseen.n == 0 and unseen.pool == "team"
    assert 0.07 < unseen.median < 0.14  # nothing of its own: the team's
    _add(pool, "search", "costly", _lognormal(rng, 0.80, 3))
    few = pool.estimate("search", "costly", min_pool=20, tau2_floor=0.1)
    _add(pool, "search", "costly", _lognormal(rng, 0.80, 12))
    many = pool.estimate("search", "costly", min_pool=20, tau2_floor=0.1)
    assert few is not None and many is not None
    assert unseen.median < few.median < many.median  # shrunk less as its own data accumulates
    assert 0.55 < many.median < 1.1 and many.weight > 0.8
    assert many.p99 > 2 * many.median  # the bound keeps the workflow's own spread


def test_no_estimate_before_the_tenant_has_min_pool_tasks_and_the_team_pools_only_with_enough() -> None:
    pool = PooledCost()
    _add(pool, "ops", "audit", [0.2] * 10)
    assert pool.estimate("ops", "new", min_pool=20, tau2_floor=0.1) is None
    _add(pool, "search", "triage", [0.5] * 30)
    est = pool.estimate("ops", "new", min_pool=20, tau2_floor=0.1)
    assert est is not None and est.pool == "tenant" and est.pool_tasks == 40


def _minute(ts: float, workflow: str, reports: list[list[Any]], finished: list[float] | None = None) -> tuple[Any, ...]:
    stats = [0, 0.0, 0.0, 0.0]
    for c in finished or []:
        lg = log_cost(c)
        stats = [stats[0] + 1, stats[1] + lg, stats[2] + lg * lg, max(stats[3], c)]
    minute = ts - ts % 60
    return (minute, "acme", "search", workflow, 0.0, 0.0, minute, stats, reports)


def _guard(**knobs: Any) -> YoungTaskGuard:
    params = YoungRunawayParams(**knobs)
    guard = YoungTaskGuard(lambda *_: params)
    rng = random.Random(2)
    warm = [_minute(T0 + 60 * i, "triage", [], _lognormal(rng, 0.30, 10, 0.3)) for i in range(30)]
    assert guard.feed(warm) == []
    return guard


def test_the_fleet_guard_is_critical_on_a_never_seen_workflows_first_task() -> None:
    guard = _guard()
    fleet_max = guard.pools["acme"].estimate("search", "x", min_pool=1, tau2_floor=0.1).fleet_max  # type: ignore[union-attr]
    ts = T0 + 3600
    out = guard.feed([_minute(ts, "brand-new", [[ts, "r1", 2.5 * fleet_max, 40, 0, 0]])])
    assert out == []  # 2.5x the costliest normal task: not yet
    out = guard.feed([_minute(ts + 60, "brand-new", [[ts + 60, "r1", 3.2 * fleet_max, 50, 0, 0]])])
    (sig, key), = out
    assert key == ("acme", "search", "brand-new") and sig.severity is Severity.CRITICAL and sig.kill_eligible
    assert "costliest task its tenant ever completed normally" in sig.summary
    assert sig.evidence["usd_at_stake"] > 0 and sig.evidence["n"] == 0
    # its end resolves the episode and, alerted on, it does not join the pool
    before = guard.pools["acme"].tasks
    (end, _), = guard.feed([_minute(ts + 120, "brand-new", [[ts + 120, "r1", 4.0, 60, 1, 1]])])
    assert not end.firing and guard.pools["acme"].tasks == before


def test_after_max_kills_in_the_window_a_workflows_findings_alert_without_killing() -> None:
    guard = _guard(max_kills=2)
    ts = T0 + 7200
    eligible = []
    for i in range(4):
        out = guard.feed([_minute(ts + 60 * i, "new", [[ts + 60 * i, f"r{i}", 50.0, 99, 0, 0]])])
        (sig, _), = out
        eligible.append(sig.kill_eligible)
        assert sig.severity is Severity.CRITICAL
    assert eligible == [True, True, False, False]
    assert "review it" in sig.evidence["kill_held"]


def test_minutes_written_before_young_runaway_restore_with_nothing_finished() -> None:
    (m,) = parse_minutes([[T0, "acme", "ops", "audit", 1.5, 1.0, T0 + 5]])
    assert m[7] == [0, 0.0, 0.0, 0.0] and m[8] == []
