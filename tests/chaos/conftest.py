"""The chaos suite: faults injected into the real pipeline (real broker, real worker and alerter
subprocesses, real Slack and PagerDuty clients against local servers), with the invariants asserted
and the figures printed. The fixtures are the pipeline tests' own (tests/streams/conftest.py)."""

from __future__ import annotations

import pytest

from tests.streams.conftest import names, start_worker

__all__ = ["names", "start_worker"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.kafka)
