"""Chaos: far-future and far-past times, on valid and invalid records, at about 1 % of a fleet
through a real worker (issue 9, item 3). Anomalies equal the clean replay's; every outlier is
dead-lettered with its reason; nothing else is. The figures are printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.streams.conftest import Names
from tests.streams.outlier_fleet import run_fleet_with_outliers


async def test_one_percent_of_far_off_times(names: Names, start_worker: Any, tmp_path: Path) -> None:
    figures = await run_fleet_with_outliers(names, start_worker, tmp_path, every=100)
    assert sum(figures["outliers tried"].values()) > 150 and figures["lost"] == 0
