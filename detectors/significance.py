"""Tests with a known false-alarm rate, for detectors that must say a change is statistically real.

Pure Python, deterministic, no I/O. Each returns ``(statistic, p_value)`` of a **one-sided** test
whose null hypothesis is "no change"; a detector rejects it at its ``alpha`` (the share of
no-change comparisons it flags).

- :func:`mann_whitney_greater` — Mann–Whitney U (Wilcoxon rank-sum): are the values of ``recent``
  stochastically larger than those of ``reference``? Rank-based, so one $40 task among $0.40 ones
  moves it by one rank, not by its dollars (heavy-tailed costs do not fool it). Normal
  approximation with the tie correction and a continuity correction; under the null U is
  symmetric and lighter-tailed than the normal, so the p-value errs on the conservative side.
- :func:`fisher_fewer_successes` — Fisher's exact test (one-sided): has ``recent`` fewer successes
  than the reference's success share would give? Exact (hypergeometric), no approximation.
- :func:`beta_binomial_more` — are ``k`` of ``n`` more than a share learned from ``a`` and ``b``
  pseudo-counts would give? The beta-binomial predictive tail: the binomial's, with the doubt
  about the learned share itself folded in (a share learned from 40 tasks is not known exactly,
  and a test that pretends it is alarms more often than its ``alpha``). Exact, no approximation.

>>> u, p = mann_whitney_greater([5.0, 6.0, 7.0], [1.0, 2.0, 3.0, 4.0])
>>> u, round(p, 3)
(12.0, 0.026)
>>> s, p = fisher_fewer_successes(1, 10, 90, 100)
>>> s, p < 0.001
(1, True)
>>> k, p = beta_binomial_more(5, 6, 2.0, 38.0)
>>> k, f"{p:.1e}"
(5, '2.9e-05')
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["beta_binomial_more", "fisher_fewer_successes", "mann_whitney_greater"]


def mann_whitney_greater(recent: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """``(U, p)``: U counts the (recent, reference) pairs where the recent value is larger (ties
    count half); ``p`` is the one-sided p-value of "recent is not larger". ``p`` is 1.0 when either
    sample is empty or every value is tied."""
    n1, n2 = len(recent), len(reference)
    if not n1 or not n2:
        return 0.0, 1.0
    pooled = sorted([(x, 1) for x in recent] + [(x, 0) for x in reference])
    n = n1 + n2
    rank_sum = 0.0
    ties = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        t = j - i + 1
        mid = (i + j) / 2.0 + 1.0  # the average rank of the tied run, ranks counted from 1
        rank_sum += mid * sum(flag for _, flag in pooled[i : j + 1])
        ties += t**3 - t
        i = j + 1
    u = rank_sum - n1 * (n1 + 1) / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0.0:
        return u, 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return u, min(1.0, 0.5 * math.erfc(z / math.sqrt(2.0)))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_fewer_successes(
    successes: int, n: int, ref_successes: int, ref_n: int
) -> tuple[int, float]:
    """``(successes, p)``: ``p`` = P(X <= successes), X hypergeometric — the chance that ``n`` tasks
    drawn from the pooled ``n + ref_n`` ones hold this few of the pooled successes if nothing changed."""
    if n <= 0 or ref_n <= 0:
        return successes, 1.0
    total, good = n + ref_n, successes + ref_successes
    low = max(0, n - (total - good))
    log_all = _log_comb(total, n)
    p = 0.0
    for k in range(low, min(successes, good, n) + 1):
        p += math.exp(_log_comb(good, k) + _log_comb(total - good, n - k) - log_all)
    return successes, min(1.0, p)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def beta_binomial_more(k: int, n: int, a: float, b: float) -> tuple[int, float]:
    """``(k, p)``: ``p`` = P(X >= k), X beta-binomial(n, a, b) — the chance of ``k`` or more
    successes in ``n`` trials whose success share is only known as Beta(``a``, ``b``) (``a``
    successes and ``b`` failures seen, pseudo-counts included). ``p`` is 1.0 for ``k <= 0``."""
    if k <= 0 or n <= 0:
        return k, 1.0
    if k > n or a <= 0.0 or b <= 0.0:
        return k, 0.0 if k > n else 1.0
    base = _log_beta(a, b)
    p = 0.0
    for x in range(k, n + 1):
        p += math.exp(_log_comb(n, x) + _log_beta(x + a, n - x + b) - base)
    return k, min(1.0, p)
