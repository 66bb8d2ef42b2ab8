"""The sliding window of :mod:`detectors.retry_rate`: which tasks failed, and what is normal.

One :class:`RetrySeries` per counted series of a workflow (the workflow as a whole, and each
``category:name`` of a tool or model). It remembers, per root task, in which time bucket the task
last had a step of the series and last had a failed-or-retried one, so a window knows how many
tasks it saw (``n``) and how many of them failed at least once (``k``) — counted once however many
steps they retried. Steps, failed steps and their spend are kept per bucket for the evidence.

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

_NO_BUCKET = -(2**62)  # the failed bucket of a task that never failed
_SHIFT = 24
_NEVER = (1 << _SHIFT) - 1
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
    """The window's tasks and steps of one series, and its learned share of failing tasks.

    Time is counted in buckets of the detector's ``step_s`` (bucket ``b`` holds ``[b * step_s,
    (b + 1) * step_s)``), and each bucket counts the tasks whose *latest* step (and latest failed
    step) is in it, so a window's ``n`` and ``k`` are sums over its buckets — one task counted
    once, however many of its steps the window holds — without visiting its tasks.
    """

    __slots__ = ("a", "b", "buckets", "floor", "last", "last_failed", "streak", "tasks", "windows")

    def __init__(self) -> None:
        #: root task -> the bucket of its last step << _SHIFT | how many buckets before it its last failed
        #: one was (_NEVER: none); one int per task, not a list: a million tasks in flight cost 0.1 KB each
        self.tasks: dict[str, int] = {}
        #: bucket -> [tasks last seen, tasks last failed, steps, failed steps, their spend]
        self.buckets: dict[int, list[float]] = {}
        self.floor = 0  # no bucket below this is kept (nor referred to by a kept task)
        self.a = 0.0  # decayed count of failing tasks in learned windows
        self.b = 0.0  # decayed count of clean tasks in learned windows
        self.windows = 0  # windows learned
        self.streak = 0  # anomalous (or lingering) windows in a row
        self.last = 0.0  # event time of the series' latest step
        self.last_failed = _NO_BUCKET  # the latest bucket with a failed step: none since, k is 0

    def _bucket(self, b: int) -> list[float]:
        got = self.buckets.get(b)
        if got is None:
            got = self.buckets[b] = [0, 0, 0, 0, 0.0]
        return got

    def add(self, root: str, b: int, ts: float, failed: bool, cost: float) -> None:
        bucket = self._bucket(b)
        bucket[2] += 1
        code = self.tasks.get(root)
        if code is None:
            self.tasks[root] = b << _SHIFT | (0 if failed else _NEVER)
            bucket[0] += 1
            if failed:
                bucket[1] += 1
        else:
            seen, delta = code >> _SHIFT, code & _NEVER
            last_failed = seen - delta if delta != _NEVER else _NO_BUCKET
            if b > seen:
                if seen >= self.floor:
                    self.buckets[seen][0] -= 1
                bucket[0] += 1
                seen = b
            if failed and b > last_failed:
                if last_failed >= self.floor:
                    self.buckets[last_failed][1] -= 1
                bucket[1] += 1
                last_failed = b
            delta = seen - last_failed if last_failed != _NO_BUCKET and seen - last_failed < _NEVER else _NEVER
            self.tasks[root] = seen << _SHIFT | delta
        if failed:
            bucket[3] += 1
            bucket[4] += cost
            if b > self.last_failed:
                self.last_failed = b
        if ts > self.last:
            self.last = ts

    def prune(self, lo: int) -> None:
        """Forget the buckets before ``lo`` and the tasks last seen there."""
        if lo <= self.floor:
            return
        for root in [r for r, code in self.tasks.items() if code >> _SHIFT < lo]:
            del self.tasks[root]
        for b in [b for b in self.buckets if b < lo]:
            del self.buckets[b]
        self.floor = lo

    def occupied(self, lo: int) -> bool:
        return any(v[2] for b, v in self.buckets.items() if b >= lo)

    def expected(self) -> float:
        return (self.a + _PRIOR) / (self.a + self.b + 2 * _PRIOR)

    def judge(self, key: str, lo: int, params: Any, firing: bool) -> Verdict:
        """The window of the buckets from ``lo`` on against the baseline."""
        p = params
        n_ = k_ = steps = failed_steps = 0.0
        failed_usd = 0.0
        for b, (seen, fail, s, f, usd) in self.buckets.items():
            if b >= lo:
                n_ += seen
                k_ += fail
                steps += s
                failed_steps += f
                failed_usd += usd
        n, k = int(n_), int(k_)
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
        return [self.tasks, {str(b): v for b, v in self.buckets.items()}, self.floor,
                self.a, self.b, self.windows, self.streak, self.last, self.last_failed]

    @classmethod
    def from_list(cls, data: list[Any]) -> RetrySeries:
        tasks, buckets, floor, a, b, windows, streak, last, last_failed = data
        series = cls()
        series.tasks = {str(r): int(code) for r, code in tasks.items()}
        series.buckets = {int(k): [int(v[0]), int(v[1]), int(v[2]), int(v[3]), float(v[4])] for k, v in buckets.items()}
        series.floor = int(floor)
        series.a, series.b = float(a), float(b)
        series.windows, series.streak, series.last = int(windows), int(streak), float(last)
        series.last_failed = int(last_failed)
        return series
