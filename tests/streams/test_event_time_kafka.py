"""Far-off event times through a real worker on the real broker (issue 9, item 3): an invalid
record stamped 2099 carries no time, a valid 2099 one is rejected at the ingest (wall clock), a
valid 2001 one by the engine; the worker raises replay's anomalies of the clean fleet and every one
of them is dead-lettered with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.streams.conftest import Names
from tests.streams.outlier_fleet import STAMPS, run_fleet_with_outliers

pytestmark = pytest.mark.kafka


async def test_far_off_times_move_no_event_time_and_are_dead_lettered(
    names: Names, start_worker: Any, tmp_path: Path
) -> None:
    figures = await run_fleet_with_outliers(names, start_worker, tmp_path, every=3_000)
    assert set(figures["outliers tried"]) == {f"{'invalid' if bad else 'valid'} {t}" for t, bad in STAMPS}
