"""Young runaway: a task of a workflow too young for its own baseline, judged by its team and tenant.

``runaway_task`` learns a workflow's p99 from its own completed tasks and says nothing before
``min_samples`` of them; a new workflow is exactly where runaways happen. This detector covers that
gap, from the workflow's first task, with two bounds:

- **pooled**: the p99 of the next task's machine cost under the workflow's partially pooled
  estimate (:class:`~detectors.pooled.PooledCost`: its own few tasks shrunk toward its team's, or
  its tenant's, completed tasks). Above ``warn_factor`` x p99 a warning, above ``critical_factor``
  x p99 critical;
- **fleet guard**, with no warm-up of the workflow at all: machine spend above ``guard_factor`` x
  the costliest task any workflow of the tenant has ever completed normally is critical.

Critical findings are kill-eligible (money above ``min_critical_usd``), at most ``max_kills`` per
workflow in ``kill_window_s``: a young workflow whose tasks keep passing the fleet's bound is more
likely legitimately costlier than a loop each time, and one that is killed every time would never
complete a task to learn from — after that it is alerted, and the evidence says to review it.

Where it runs: the pools are a tenant's, gathered from every workflow, so the engine feeds it at its
ticks from :mod:`detectors.scope_spend`'s minutes: each workflow's finished normal tasks (as sums)
and its young tasks' *reports* — a young task reports each time its machine spend passes a rung of a
ladder (``report_step`` apart, from ``min_warn_usd``) and once when it ends. In the Kafka worker the
roll-up stage does this, keyed by tenant, over every partition's minutes; ``burnguard replay`` does
it itself, from the same minutes in the same canonical order, so both raise the same anomalies.
Its bounds are therefore at most one tick (plus the lateness) behind a task and a rung coarse.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import Field

from detectors.base import DetectorParams, Signal
from detectors.pooled import Estimate, PooledCost
from schemas.anomaly import Severity

__all__ = ["NAME", "YoungRunawayParams", "YoungTaskGuard", "rung"]

NAME = "young_runaway"
#: a task report: ``[time, root task id, machine spend USD, steps, ended 0/1, completed normally 0/1]``
Report = list[Any]


class YoungRunawayParams(DetectorParams):
    """Knobs of :class:`YoungTaskGuard`; it watches a workflow while ``runaway_task`` has fewer than
    its ``min_samples`` completed tasks of the workflow.

    - ``min_pool`` — completed tasks the tenant (or a team, to be its pool) needs first;
    - ``min_warn_pool`` — ... and for warnings (a young tenant's tail is not known yet: only
      criticals, far beyond it, are raised before);
    - ``warn_factor`` / ``critical_factor`` — x the pooled p99 of the next task's machine cost;
    - ``max_margin`` — no warning below this x the costliest normal task of the pool (a p99 from a
      few dozen heavy-tailed samples is biased low; their largest is not);
    - ``guard_factor`` — critical above this x the costliest task the tenant completed normally,
      once it has ``guard_min_pool`` of them (the largest of a few dozen is no fleet's largest);
    - ``min_warn_usd`` / ``min_critical_usd`` — no warning / critical below this spend (USD);
    - ``min_warn_at_stake_usd`` — no warning below this money at stake (USD);
    - ``tau2_floor`` — least spread of workflows' mean log cost assumed (a new one may differ);
    - ``prior_dof`` — how many tasks' worth the tenant's typical spread counts for in a workflow's;
    - ``report_step`` — a young task reports each time its spend grows by this factor;
    - ``max_kills`` / ``kill_window_s`` — kill-eligible findings per workflow per window.
    """

    min_pool: int = Field(default=20, ge=1)
    min_warn_pool: int = Field(default=100, ge=1)
    warn_factor: float = Field(default=3.0, gt=1.0)
    critical_factor: float = Field(default=5.0, gt=1.0)
    guard_factor: float = Field(default=3.0, gt=1.0)
    guard_min_pool: int = Field(default=200, ge=1)
    min_warn_usd: float = Field(default=0.25, gt=0.0)
    min_critical_usd: float = Field(default=1.0, ge=0.0)
    min_warn_at_stake_usd: float = Field(default=0.50, ge=0.0)
    tau2_floor: float = Field(default=0.1, ge=0.0)
    prior_dof: float = Field(default=4.0, gt=2.0)
    max_margin: float = Field(default=1.25, ge=1.0)
    report_step: float = Field(default=1.1, gt=1.0)
    max_kills: int = Field(default=3, ge=0)
    kill_window_s: float = Field(default=3600.0, gt=0.0)


def rung(usd: float, floor: float, step: float) -> int:
    """The ladder rung a spend is on: -1 below ``floor``, then 0, 1, ... every ``step`` x.

    >>> [rung(x, 0.25, 2.0) for x in (0.1, 0.25, 0.49, 0.5, 1.0)]
    [-1, 0, 0, 1, 2]
    """
    if usd < floor:
        return -1
    return math.floor(math.log(usd / floor) / math.log(step) + 1e-9)


WorkflowKey = tuple[str, str, str]


class YoungTaskGuard:
    """The pools of every tenant it is fed, and the young tasks it has alerted on."""

    def __init__(self, params_for: Callable[[str, str, str], YoungRunawayParams]) -> None:
        self.params_for = params_for
        self.pools: dict[str, PooledCost] = {}
        #: root task id -> (workflow key, highest severity rank raised on it)
        self.alerted: dict[str, tuple[WorkflowKey, int]] = {}
        #: workflow -> event times of its kill-eligible findings within the window
        self.kills: dict[WorkflowKey, list[float]] = {}

    def feed(self, minutes: Iterable[tuple[Any, ...]]) -> list[tuple[Signal, WorkflowKey]]:
        """Judge the young tasks' reports and learn the finished tasks of released minutes (each a
        :data:`~detectors.scope_spend.MinuteSpend`), in canonical order. The signals, with their workflow."""
        out: list[tuple[Signal, WorkflowKey]] = []
        for m in sorted(minutes, key=lambda m: m[:4]):
            if len(m) < 9:
                continue
            tenant, team, workflow = m[1], m[2], m[3]
            key = (tenant, team, workflow)
            for report in sorted(m[8], key=lambda r: (r[0], r[1])):
                sig = self._report(key, report)
                if sig is not None:
                    out.append((sig, key))
            n, s1, s2, mx = m[7]
            if n:
                self._pool(tenant).add(team, workflow, int(n), s1, s2, mx)
        return out

    def _pool(self, tenant: str) -> PooledCost:
        pool = self.pools.get(tenant)
        if pool is None:
            pool = self.pools[tenant] = PooledCost()
        return pool

    def _report(self, key: WorkflowKey, report: Report) -> Signal | None:
        ts, root, cost, steps, ended, normal = report
        scope = {"tenant": key[0], "team": key[1], "workflow": key[2], "root_task_id": root}
        if ended:
            seen = self.alerted.pop(root, None)
            if seen is None and normal:
                lg = math.log(max(cost, 0.001))
                self._pool(key[0]).add(key[1], key[2], 1, lg, lg * lg, cost)
            if seen is None:
                return None
            return Signal(detector=NAME, scope=scope, ts=ts, firing=False, summary="task ended", observed=cost)
        p = self.params_for(*key)
        if not p.enabled:
            return None
        est = self._pool(key[0]).estimate(key[1], key[2], min_pool=p.min_pool, tau2_floor=p.tau2_floor,
                                          prior_dof=p.prior_dof)
        if est is None:
            return None
        stake = round(max(0.0, 2.0 * cost - est.p99), 2)
        guard = p.guard_factor * est.fleet_max if est.pool_tasks_tenant >= p.guard_min_pool else math.inf
        crit = max(min(p.critical_factor * est.p99, guard), p.min_critical_usd)
        warn = max(p.warn_factor * est.p99, p.max_margin * est.pool_max, p.min_warn_usd)
        if cost > crit:
            severity = Severity.CRITICAL
        elif cost > warn and stake >= p.min_warn_at_stake_usd and est.pool_tasks_tenant >= p.min_warn_pool:
            severity = Severity.WARNING
        else:
            return None
        prior = self.alerted.get(root)
        if prior is not None and prior[1] >= severity.rank:
            return None
        self.alerted[root] = (key, severity.rank)
        eligible = severity is Severity.CRITICAL and self._may_kill(key, ts, p)
        by_guard = cost > guard and guard < p.critical_factor * est.p99
        threshold = crit if severity is Severity.CRITICAL else warn
        return Signal(
            detector=NAME,
            scope=scope,
            ts=ts,
            severity=severity,
            metric="task_cost_usd",
            unit="usd",
            observed=round(cost, 6),
            expected=round(est.p99, 6),
            threshold=round(threshold, 6),
            score=round(cost / threshold, 3),
            summary=_summary(key, root, cost, steps, est, by_guard and severity is Severity.CRITICAL),
            evidence={**_evidence(est, p), "usd_at_stake": stake, **({} if eligible or severity is not
                      Severity.CRITICAL else {"kill_held": _held(key, p)})},
            kill_eligible=eligible,
        )

    def _may_kill(self, key: WorkflowKey, ts: float, p: YoungRunawayParams) -> bool:
        recent = [t for t in self.kills.get(key, ()) if ts - t < p.kill_window_s]
        if len(recent) >= p.max_kills:
            self.kills[key] = recent
            return False
        self.kills[key] = [*recent, ts]
        return True

    def snapshot(self) -> dict[str, Any]:
        return {
            "pools": {tenant: pool.to_dict() for tenant, pool in self.pools.items()},
            "alerted": [[root, *key, rank] for root, (key, rank) in self.alerted.items()],
            "kills": [[*key, times] for key, times in self.kills.items()],
        }

    def restore(self, data: dict[str, Any] | None) -> None:
        self.pools, self.alerted, self.kills = {}, {}, {}
        if not data:
            return
        self.pools = {tenant: PooledCost.from_rows(rows) for tenant, rows in data["pools"].items()}
        self.alerted = {str(r): ((str(a), str(b), str(c)), int(rank)) for r, a, b, c, rank in data["alerted"]}
        self.kills = {(str(a), str(b), str(c)): [float(t) for t in times] for a, b, c, times in data["kills"]}


def _evidence(est: Estimate, p: YoungRunawayParams) -> dict[str, Any]:
    return {
        "window": f"completed tasks of the workflow ({est.n}), pooled with its {est.pool}'s ({est.pool_tasks})",
        "estimator": "empirical-Bayes normal-normal shrinkage of log cost",
        "n": est.n,
        "pool": est.pool,
        "pool_tasks": est.pool_tasks,
        "own_weight": round(est.weight, 3),
        "p50": round(est.median, 4),
        "p99": round(est.p99, 4),
        "pool_max_usd": round(est.pool_max, 4),
        "fleet_max_usd": round(est.fleet_max, 4),
        "guard_usd": round(p.guard_factor * est.fleet_max, 4) if est.pool_tasks_tenant >= p.guard_min_pool else None,
    }


def _held(key: WorkflowKey, p: YoungRunawayParams) -> str:
    return (
        f"not killed: {p.max_kills} tasks of {key[2]} passed the fleet's bound in the last "
        f"{p.kill_window_s / 60:g} min; the workflow may be legitimately costlier: review it, give it a budget"
    )


def _summary(key: WorkflowKey, root: str, cost: float, steps: int, est: Estimate, by_guard: bool) -> str:
    where = f"Task {root} in {key[2]}, a young workflow ({est.n} completed tasks),"
    if by_guard:
        return (
            f"{where} has spent ${cost:.2f} in {steps} steps, {cost / est.fleet_max:.1f}x the costliest task "
            f"its tenant ever completed normally (${est.fleet_max:.2f})"
        )
    return (
        f"{where} has spent ${cost:.2f} in {steps} steps, {cost / est.p99:.1f}x the p99 of ${est.p99:.2f} "
        f"learned with its {est.pool}'s {est.pool_tasks} tasks"
    )
