"""The benchmarks are scripts beside each other (``benchmarks/`` has no package): put them on the path."""

from __future__ import annotations

import sys

from tests.paths import REPO

BENCHMARKS = REPO / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
