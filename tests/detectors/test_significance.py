"""The tests behind cost_shift's "statistically real": exact on small cases, calibrated under no change."""

from __future__ import annotations

import math
import random

import pytest

from detectors.significance import fisher_fewer_successes, mann_whitney_greater


def test_u_counts_the_pairs_where_recent_is_larger_ties_half() -> None:
    rng = random.Random(3)
    recent = [float(rng.randint(0, 9)) for _ in range(15)]
    reference = [float(rng.randint(0, 9)) for _ in range(40)]
    u, _ = mann_whitney_greater(recent, reference)
    pairs = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in recent for y in reference)
    assert u == pytest.approx(pairs)


def test_the_p_value_goes_the_one_way() -> None:
    low, high = [1.0, 2.0, 3.0] * 7, [10.0, 11.0, 12.0] * 7
    assert mann_whitney_greater(high, low)[1] < 1e-6
    assert mann_whitney_greater(low, high)[1] > 0.999
    assert mann_whitney_greater([1.0] * 5, [1.0] * 9) == (22.5, 1.0)  # all tied: no evidence
    assert mann_whitney_greater([], [1.0]) == (0.0, 1.0)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_mann_whitney_rejects_no_change_at_most_about_alpha(alpha: float) -> None:
    rng = random.Random(11)
    trials = 4000
    rejected = 0
    for _ in range(trials):  # a window of 20 heavy-tailed costs against 200 from the same law
        reference = [rng.lognormvariate(0.0, 1.0) for _ in range(200)]
        recent = [rng.lognormvariate(0.0, 1.0) for _ in range(20)]
        rejected += mann_whitney_greater(recent, reference)[1] < alpha
    sd = math.sqrt(alpha * (1 - alpha) / trials)
    assert rejected / trials < alpha + 4 * sd
    assert rejected / trials > alpha / 3  # calibrated, not merely silent


def test_fisher_matches_the_hypergeometric_tail() -> None:
    # 3 successes of 10 against 40 of 50: P(X <= 3), X ~ Hypergeom(N=60, K=43, n=10), by hand
    total, good, n = 60, 43, 10
    expected = sum(math.comb(good, k) * math.comb(total - good, n - k) for k in range(4)) / math.comb(total, n)
    assert fisher_fewer_successes(3, 10, 40, 50) == (3, pytest.approx(expected, rel=1e-9))
    assert fisher_fewer_successes(10, 10, 40, 50)[1] == pytest.approx(1.0)
    assert fisher_fewer_successes(0, 0, 40, 50) == (0, 1.0)
