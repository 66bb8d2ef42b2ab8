"""Shared fixture of the simulator tests: one default fleet, simulated once per test session."""

from __future__ import annotations

from typing import Any

import pytest

from burnguard.simulator import FleetSimulator

Event = dict[str, Any]


@pytest.fixture(scope="session")
def fleet() -> tuple[FleetSimulator, list[Event]]:
    """The default fleet: seed 7, 48 h, every incident kind."""
    sim = FleetSimulator(seed=7)
    return sim, list(sim.events())
