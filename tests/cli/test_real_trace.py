"""The real fleet (500 mini-swe-agent runs on SWE-bench Verified, ../shared/data): replayed with
``--autonomy act`` it must kill nothing and raise only the alerts a person would agree with.

Those are exactly the three things the data's README itself calls anomalous: two tasks whose model
answers were rejected 8+ times in a row, and the run whose one 65,536-token answer blew up its
context. Anything else appearing here is a false alert and fails the test.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from burnguard.replay import ReplayResult, replay_file
from detectors.config import Autonomy
from schemas.anomaly import Action, AnomalyStatus, Severity
from tests.paths import REAL_TRACE

Replayed = tuple[list[dict[str, Any]], ReplayResult]
EXPECTED = {
    ("retry_rate", "django__django-11299"),
    ("retry_rate", "django__django-14349"),
    ("runaway_task", "scikit-learn__scikit-learn-25102"),
}


@pytest.fixture(scope="module", name="replayed")
def _replayed(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    out = tmp_path_factory.mktemp("real") / "anomalies.jsonl"
    with out.open("wb") as sink:
        result = replay_file(REAL_TRACE, sink, autonomy=Autonomy.ACT)
    return [orjson.loads(line) for line in Path(out).read_bytes().splitlines()], result


def test_every_line_is_read_and_every_dollar_counted(replayed: Replayed) -> None:
    _, result = replayed
    assert result.lines == 40_143
    assert result.rejected == []
    stats = result.engine.stats
    assert stats.tasks_started == stats.tasks_finished == 500
    assert stats.spend_usd == pytest.approx(229.98, abs=0.01)
    assert stats.unpriced_steps == 0


def test_kills_nothing_and_raises_nothing_critical(replayed: Replayed) -> None:
    anomalies, result = replayed
    assert result.engine.stats.kills == 0
    assert not [a for a in anomalies if a["action"] == Action.KILL.value]
    assert not [a for a in anomalies if a["severity"] == Severity.CRITICAL.value]


def test_raises_only_what_a_person_would_agree_with(replayed: Replayed) -> None:
    anomalies, _ = replayed
    firing = [a for a in anomalies if a["status"] == AnomalyStatus.FIRING.value]
    found = {(a["detector"], a["scope"]["root_task_id"]) for a in firing if "root_task_id" in a["scope"]}
    assert found == EXPECTED
    assert len(firing) == len(EXPECTED), [a["summary"] for a in firing]


def test_every_episode_resolves_when_its_task_finishes(replayed: Replayed) -> None:
    anomalies, _ = replayed
    states = Counter((a["anomaly_id"], a["status"]) for a in anomalies)
    opened = {aid for aid, status in states if status == "firing"}
    resolved = {aid for aid, status in states if status == "resolved"}
    assert opened == resolved
