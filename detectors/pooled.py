"""Cost baselines that borrow strength: a young workflow judged against its team's and tenant's.

A workflow that has completed only a few tasks has no p99 of its own worth the name, but its tenant
has completed many, in other workflows. :class:`PooledCost` keeps, per tenant, each workflow's
completed normal tasks as sufficient statistics of their log machine cost (count, sum, sum of
squares, largest cost) — mergeable, so the Kafka worker's roll-up stage can gather them from every
partition in canonical order and reach the same numbers as ``burnguard replay``.

The estimator is empirical-Bayes normal–normal shrinkage (partial pooling) on log cost:

- within a workflow, log cost ~ N(mu_w, sigma_w²); a workflow's sigma_w² is the typical one of
  the tenant's workflows (the mean of their sample variances, worth ``prior_dof`` tasks) moved
  toward its own sample variance as its tasks accumulate (the conjugate scaled-inverse-chi² update);
- the workflows' own means vary around the pool's, mu_w ~ N(mu_pool, tau²); tau² is estimated by
  the method of moments (the spread of the workflows' mean log costs minus what their own sampling
  noise explains) over the tenant, floored at ``tau2_floor`` so a new workflow is always allowed to
  differ from the others;
- the pool is the workflow's team when the team has ``min_pool`` completed tasks, else its tenant;
- with n_w tasks of its own (mean m_w) the workflow's mean is shrunk toward the pool:
  mu_w = (n_w·m_w + k·mu_pool) / (n_w + k), k = sigma_w²/tau², and the next task's log cost is
  Student-t with ``prior_dof + n_w - 1`` degrees of freedom and scale² sigma_w²·(1 + 1/(n_w + k)):
  the bound is its 0.99 quantile. A workflow with no task is the pool's (variance sigma² + tau²,
  wide tails); with many it is its own — the weight moves as its data accumulates.

Why log-normal: cost per run is heavy-tailed and positive (the real trace of ../shared/data:
median $0.38, p95 $1.00, max $2.56); its log is close to symmetric, and sufficient statistics of a
normal merge exactly. Why shrinkage and not the pool alone: a workflow that is legitimately twice as
costly as its team moves its own bound after a handful of tasks instead of being judged forever by
its cheaper neighbours.

>>> pool = PooledCost()
>>> for i in range(40):
...     pool.add("search", f"wf{i % 4}", 1, *_stats([0.2 + 0.01 * i]))
>>> est = pool.estimate("search", "new-workflow", min_pool=20, tau2_floor=0.1)
>>> est.pool, est.n, est.pool_tasks, round(est.p99, 2) > round(est.median, 2)
('team', 0, 40, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Estimate", "PooledCost", "log_cost"]

_Z99 = 2.326
#: costs below this (USD) count as this much: a log needs a positive number
_FLOOR_USD = 0.001


def log_cost(usd: float) -> float:
    return math.log(max(usd, _FLOOR_USD))


def _var(row: list[float]) -> float:
    """The sample variance of log cost of one ``[n, sum, sum of squares, max]`` row (n >= 2)."""
    n, s1, s2 = row[0], row[1], row[2]
    return max(0.0, (s2 - s1 * s1 / n) / (n - 1))


def t99(dof: float) -> float:
    """The 0.99 quantile of Student's t with ``dof`` degrees of freedom (Cornish–Fisher expansion,
    Abramowitz & Stegun 26.7.5; within 1 % of the exact value from 3 degrees of freedom).

    >>> round(t99(4), 2), round(t99(30), 2), round(t99(1e9), 3)
    (3.72, 2.46, 2.326)
    """
    z = _Z99
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3


def _stats(costs: list[float]) -> tuple[float, float, float]:
    logs = [log_cost(c) for c in costs]
    return sum(logs), sum(x * x for x in logs), max(costs)


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a workflow's next task is expected to cost (USD), and where the estimate came from."""

    pool: str  # "team" or "tenant": whose tasks the prior came from
    n: int  # the workflow's own completed normal tasks
    pool_tasks: int
    median: float
    p99: float
    fleet_max: float  # the costliest task any workflow of the tenant completed normally
    pool_tasks_tenant: int  # how many the tenant completed normally
    pool_max: float  # the costliest of the pool's (team's or tenant's) normal tasks
    weight: float  # the workflow's own data's share of its mean, n / (n + k)


class PooledCost:
    """One tenant's workflows' completed normal tasks, as ``[n, sum log, sum log², max]`` each."""

    __slots__ = ("_cache", "wf")

    def __init__(self) -> None:
        self.wf: dict[tuple[str, str], list[float]] = {}
        self._cache: tuple[float, float, float, float, int] | None = None

    def add(self, team: str, workflow: str, n: int, s1: float, s2: float, mx: float) -> None:
        row = self.wf.get((team, workflow))
        if row is None:
            self.wf[(team, workflow)] = [float(n), s1, s2, mx]
        else:
            row[0] += n
            row[1] += s1
            row[2] += s2
            row[3] = max(row[3], mx)
        self._cache = None

    @property
    def tasks(self) -> int:
        return int(sum(r[0] for r in self.wf.values()))

    def _tenant(self) -> tuple[float, float, float, float, int]:
        """(mu, sigma², tau², fleet max, tasks) over the tenant, cached until the next ``add``."""
        if self._cache is not None:
            return self._cache
        rows = [r for r in self.wf.values() if r[0] >= 1]
        tasks = int(sum(r[0] for r in rows))
        if not rows:
            self._cache = (0.0, 1.0, 1.0, 0.0, 0)
            return self._cache
        spreads = [_var(r) for r in rows if r[0] >= 2]
        if spreads:  # each workflow's own spread counts once: a big, tight workflow must not set a new one's
            sigma2 = sum(spreads) / len(spreads)
        else:
            total = sum(r[1] for r in rows) / tasks
            sigma2 = sum(r[2] for r in rows) / tasks - total * total
        sigma2 = max(sigma2, 1e-4)
        means = [r[1] / r[0] for r in rows]
        mu = sum(means) / len(means)
        if len(means) >= 2:
            spread = sum((m - mu) ** 2 for m in means) / (len(means) - 1)
            tau2 = spread - sigma2 * sum(1.0 / r[0] for r in rows) / len(rows)
        else:
            tau2 = sigma2  # one workflow: assume workflows differ as much as tasks do
        self._cache = (mu, sigma2, tau2, max(r[3] for r in rows), tasks)
        return self._cache

    def estimate(
        self, team: str, workflow: str, *, min_pool: int, tau2_floor: float, prior_dof: float = 4.0
    ) -> Estimate | None:
        """The workflow's next task's cost; ``None`` while the tenant has fewer than ``min_pool`` tasks."""
        mu_tenant, sigma2_prior, tau2, fleet_max, tasks = self._tenant()
        if tasks < min_pool:
            return None
        tau2 = max(tau2, tau2_floor)
        team_rows = [r for (t, _), r in self.wf.items() if t == team and r[0] >= 1]
        team_tasks = int(sum(r[0] for r in team_rows))
        if team_tasks >= min_pool:
            pool, pool_tasks, pool_max = "team", team_tasks, max(r[3] for r in team_rows)
            mu_pool = sum(r[1] / r[0] for r in team_rows) / len(team_rows)
        else:
            pool, pool_tasks, mu_pool, pool_max = "tenant", tasks, mu_tenant, fleet_max
        own = self.wf.get((team, workflow))
        n = int(own[0]) if own is not None else 0
        mean_own = own[1] / own[0] if own is not None and n >= 1 else 0.0
        # its spread: the tenant's workflows' typical one (worth prior_dof tasks), moved toward its own
        dof = prior_dof + max(n - 1, 0)
        sigma2 = (prior_dof * sigma2_prior + (max(n - 1, 0) * _var(own) if own is not None and n >= 2 else 0.0)) / dof
        k = sigma2 / tau2
        mu = (n * mean_own + k * mu_pool) / (n + k)
        scale = math.sqrt(sigma2 * (1.0 + 1.0 / (n + k)))
        return Estimate(
            pool=pool,
            n=n,
            pool_tasks=pool_tasks,
            median=math.exp(mu),
            p99=math.exp(mu + t99(dof) * scale),
            fleet_max=fleet_max,
            pool_tasks_tenant=tasks,
            pool_max=pool_max,
            weight=n / (n + k),
        )

    def to_dict(self) -> list[list[Any]]:
        return [[team, wf, *row] for (team, wf), row in self.wf.items()]

    @classmethod
    def from_rows(cls, rows: list[list[Any]]) -> PooledCost:
        pool = cls()
        for team, wf, n, s1, s2, mx in rows:
            pool.wf[(str(team), str(wf))] = [float(n), float(s1), float(s2), float(mx)]
        return pool
