"""The sliding window of :mod:`detectors.retry_rate`: which tasks failed, and what is normal.

One :class:`RetrySeries` per counted series of a workflow (the workflow as a whole, and each
``category:name`` of a tool or model). It remembers, per root task, when the task last had a step
of the series and when it last had a failed-or-retried one, so a window ``[lo, hi)`` knows how many
tasks it saw (``n``) and how many of them failed at least once (``k``) — counted once however many
steps they retried. Steps, failed steps and their spend are kept per minute for the evidence.

The baseline is a share of *tasks*, not of steps: ``k`` of ``n`` in past normal windows, kept as
exponentially decayed counts (a Beta posterior that forgets: ``a`` failing and ``b`` clean tasks,
plus a half pseudo-count each), and :meth:`RetrySeries.judge` tests the window against it with
the beta-binomial predictive tail (:func:`detectors.significance.beta_binomial_more`). Steps of
one task are not independent — one task that retries a call eight times is one unlucky task, not
eight failures — which is why a step share raised false alerts on quiet workflows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.significance import beta_binomial_more

__all__ = ["RetrySeries", "Verdict"]

_NEVER = float("-inf")
_PRIOR = 0.5  # pseudo-count of failing and of clean tasks before any window is learned
#: a window over the share it must exceed with a p-value this low is not taught, even when it is
#: too small to alert on: the first minutes of a storm in a quiet workflow look exactly like that
_SUSPECT_P = 0.05


@dataclass(frozen=True, slots=True)
class Verdict:
    """One series judged over one window: ``k`` of ``n`` tasks failed against an expected share."""

    key: str
    n: int
    k: int
    expected: float  # the baseline's share of failing tasks
    warn_at: float  # the share the window had to exceed
    p_value: float
    level: int  # 0 normal, 1 warning, 2 critical
    lingering: bool  # not anomalous, but not yet halfway back to the baseline either
    suspect: bool  # over the share and unlikely (p <= 0.05), but not enough to alert on
    steps: int
    failed_steps: int
    failed_usd: float

    @property
    def share(self) -> float:
        return self.k / self.n if self.n else 0.0


class RetrySeries:
    """The window's tasks and steps of one series, and its learned share of failing tasks."""

    __slots__ = ("a", "b", "last", "minutes", "streak", "tasks", "windows")

    def __init__(self) -> None:
        self.tasks: dict[str, list[float]] = {}  # root task -> [last step ts, last failed-or-retried ts]
        self.minutes: dict[int, list[float]] = {}  # minute -> [steps, failed steps, their spend]
        self.a = 0.0  # decayed count of failing tasks in learned windows
        self.b = 0.0  # decayed count of clean tasks in learned windows
        self.windows = 0  # windows learned
        self.streak = 0  # anomalous (or lingering) windows in a row
        self.last = 0.0  # event time of the series' latest step

    def add(self, root: str, ts: float, failed: bool, cost: float) -> None:
        entry = self.tasks.get(root)
        if entry is None:
            self.tasks[root] = [ts, ts if failed else _NEVER]
        else:
            entry[0] = ts
            if failed:
                entry[1] = ts
        bucket = self.minutes.get(minute := int(ts // 60.0))
        if bucket is None:
            bucket = self.minutes[minute] = [0.0, 0.0, 0.0]
        bucket[0] += 1
        if failed:
            bucket[1] += 1
            bucket[2] += cost
        self.last = ts

    def prune(self, lo: float) -> int:
        """Forget what happened before ``lo``; the number of tasks left in the window."""
        tasks = self.tasks
        for root in [r for r, (seen, _) in tasks.items() if seen < lo]:
            del tasks[root]
        first = int(lo // 60.0)
        for minute in [m for m in self.minutes if m < first]:
            del self.minutes[minute]
        return len(tasks)

    def expected(self) -> float:
        return (self.a + _PRIOR) / (self.a + self.b + 2 * _PRIOR)

    def judge(self, key: str, lo: float, params: Any, firing: bool) -> Verdict:
        """The window ``[lo, now)`` (pruned to ``lo`` already) against the baseline."""
        p = params
        n = len(self.tasks)
        k = sum(1 for _, failed_ts in self.tasks.values() if failed_ts >= lo)
        expected = self.expected()
        warn_at = max(p.factor * expected, expected + p.min_increase)
        share = k / n if n else 0.0
        p_value, level = 1.0, 0
        learned = self.windows >= p.min_samples
        if learned and share > warn_at:
            _, p_value = beta_binomial_more(k, n, self.a + _PRIOR, self.b + _PRIOR)
            if p_value <= p.alpha and k >= p.min_failed_tasks:
                level = 2 if share > max(p.critical_factor * expected, p.critical_share) else 1
        lingering = not level and firing and learned and share > (expected + warn_at) / 2
        suspect = not level and p_value <= _SUSPECT_P
        steps = failed_steps = 0.0
        failed_usd = 0.0
        for s, f, usd in self.minutes.values():
            steps += s
            failed_steps += f
            failed_usd += usd
        return Verdict(key, n, k, expected, warn_at, p_value, level, lingering, suspect, int(steps),
                       int(failed_steps), failed_usd)

    def learn(self, verdict: Verdict, params: Any) -> None:
        """Teach the baseline a closed window: normal ones always, an anomalous level held for
        ``relearn_after`` windows as the new normal; a window without tasks breaks a streak."""
        if not verdict.n:
            self.streak = 0
            return
        if verdict.suspect and not verdict.lingering:
            return  # neither taught nor counted as a streak: too little to call a new normal
        unusual = verdict.level > 0 or verdict.lingering
        self.streak = self.streak + 1 if unusual else 0
        if unusual and not (params.relearn_after and self.streak >= params.relearn_after):
            return
        keep = 1.0 - params.fading_factor
        self.a = self.a * keep + verdict.k
        self.b = self.b * keep + (verdict.n - verdict.k)
        self.windows += 1

    def to_list(self) -> list[Any]:
        return [
            {r: [seen, None if failed == _NEVER else failed] for r, (seen, failed) in self.tasks.items()},
            {str(m): v for m, v in self.minutes.items()},
            self.a, self.b, self.windows, self.streak, self.last,
        ]

    @classmethod
    def from_list(cls, data: list[Any]) -> RetrySeries:
        tasks, minutes, a, b, windows, streak, last = data
        series = cls()
        series.tasks = {
            str(r): [float(seen), _NEVER if failed is None else float(failed)] for r, (seen, failed) in tasks.items()
        }
        series.minutes = {int(m): [float(x) for x in v] for m, v in minutes.items()}
        series.a, series.b = float(a), float(b)
        series.windows, series.streak, series.last = int(windows), int(streak), float(last)
        return series
