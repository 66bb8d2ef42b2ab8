"""Learned baselines built on River's online statistics, with plain-data snapshots.

River 0.26 keeps its statistics in Rust objects whose ``__getstate__`` is a compact binary
encoding of numbers (not pickle); a snapshot stores it base64-encoded next to the parameters, so a
table or a file holds only JSON-able data and loading a snapshot cannot run code.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from river import stats

__all__ = ["EWBaseline", "QuantileBaseline"]


def _dump(rs: Any) -> str:
    return base64.b64encode(rs.__getstate__()).decode("ascii")


def _load(rs: Any, blob: str) -> None:
    rs.__setstate__(base64.b64decode(blob))


class QuantileBaseline:
    """Running quantiles (River's P² estimator) of one metric, with its sample count.

    >>> b = QuantileBaseline((0.5, 0.99))
    >>> for x in range(1, 101):
    ...     b.update(float(x))
    >>> b.n, round(b.get(0.5)), b.get(0.99) >= 95
    (100, 50, True)
    >>> c = QuantileBaseline.from_dict(b.to_dict())
    >>> (c.n, c.get(0.5)) == (b.n, b.get(0.5))
    True
    """

    __slots__ = ("_q", "max_seen", "n", "qs")

    def __init__(self, qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> None:
        self.qs = qs
        self._q = {q: stats.Quantile(q) for q in qs}
        self.n = 0
        self.max_seen = 0.0

    def update(self, x: float) -> None:
        if not math.isfinite(x):
            return
        for est in self._q.values():
            est.update(x)
        self.n += 1
        if x > self.max_seen:
            self.max_seen = x

    def get(self, q: float) -> float:
        """The ``q`` quantile; 0.0 before any sample."""
        if not self.n:
            return 0.0
        value = self._q[q].get()
        return float(value) if value is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "qs": list(self.qs),
            "n": self.n,
            "max": self.max_seen,
            "rs": [_dump(self._q[q]._quantile) for q in self.qs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantileBaseline:
        b = cls(tuple(data["qs"]))
        b.n = int(data["n"])
        b.max_seen = float(data["max"])
        for q, blob in zip(b.qs, data["rs"], strict=True):
            _load(b._q[q]._quantile, blob)
            b._q[q]._is_updated = b.n > 0
        return b


class EWBaseline:
    """Exponentially weighted mean and variance (River ``EWMean``/``EWVar``) with a sample count.

    ``fading_factor`` is the weight of the newest sample (0.1: roughly the last 10–20 samples).

    >>> b = EWBaseline(0.5)
    >>> for x in (1.0, 1.0, 3.0):
    ...     b.update(x)
    >>> b.n, b.mean
    (3, 2.0)
    """

    __slots__ = ("_mean", "_var", "fading_factor", "n")

    def __init__(self, fading_factor: float = 0.1) -> None:
        self.fading_factor = fading_factor
        self._mean = stats.EWMean(fading_factor)
        self._var = stats.EWVar(fading_factor)
        self.n = 0

    def update(self, x: float) -> None:
        if not math.isfinite(x):
            return
        self._mean.update(x)
        self._var.update(x)
        self.n += 1

    @property
    def mean(self) -> float:
        return float(self._mean.get() or 0.0) if self.n else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(max(0.0, float(self._var.get() or 0.0))) if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "f": self.fading_factor,
            "n": self.n,
            "m": _dump(self._mean._ewmean),
            "v": _dump(self._var._ewvar),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EWBaseline:
        b = cls(float(data["f"]))
        b.n = int(data["n"])
        _load(b._mean._ewmean, data["m"])
        _load(b._var._ewvar, data["v"])
        return b
