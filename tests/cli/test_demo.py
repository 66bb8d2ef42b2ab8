"""The demo's claim, checked: every injected incident is detected, no kill is wrong, kills save money.

One 48-hour simulated fleet (the demo's default) runs through the engine in ``act`` autonomy, with
killed tasks halted as their runtime would; each incident type is then its own scenario test.
"""

from __future__ import annotations

import pytest

from burnguard.demo import simulate_and_detect
from burnguard.scorecard import IncidentScore, Scorecard
from detectors.config import Autonomy

KINDS = ("runaway_loop", "retry_storm", "routing_regression", "traffic_flood", "subagent_explosion", "zombie_task")
#: the detectors that should be the ones to notice each kind of incident
EXPECTED_DETECTORS = {
    "runaway_loop": {"runaway_task", "task_budget"},
    "retry_storm": {"retry_rate"},
    "routing_regression": {"cost_shift"},
    "traffic_flood": {"burn_rate"},
    "subagent_explosion": {"fan_out"},
    "zombie_task": {"stale_task", "runaway_task"},
}
KILLED = {"runaway_loop", "subagent_explosion", "zombie_task"}


@pytest.fixture(scope="module", name="card")
def _card() -> Scorecard:
    _, card = simulate_and_detect(hours=48.0, seed=7, autonomy=Autonomy.ACT)
    return card


def _score(card: Scorecard, kind: str) -> IncidentScore:
    (score,) = [s for s in card.incidents if s.incident.kind == kind]
    return score


def test_the_demo_injects_every_incident_type(card: Scorecard) -> None:
    assert sorted(s.incident.kind for s in card.incidents) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_incident_is_detected_by_the_detector_made_for_it(card: Scorecard, kind: str) -> None:
    score = _score(card, kind)
    assert score.detected, f"{kind} was missed"
    assert score.detectors & EXPECTED_DETECTORS[kind], f"{kind} seen only by {score.detectors}"
    assert score.delay_s is not None and score.delay_s < 3600


@pytest.mark.parametrize("kind", sorted(KILLED))
def test_task_incidents_are_halted_early_enough_to_save_most_of_the_money(card: Scorecard, kind: str) -> None:
    score = _score(card, kind)
    assert score.kill is not None, f"{kind} was not killed"
    without = score.incident.cost_without_kill_usd
    assert without is not None and score.spent_usd is not None
    assert score.spent_usd < 0.2 * without, f"{kind}: spent ${score.spent_usd:.2f} of ${without:.2f}"


def test_no_false_kill_and_few_false_alerts(card: Scorecard) -> None:
    assert card.false_kills == []
    assert len(card.false_alerts) <= 25, [a.summary for a in card.false_alerts]
    assert card.ok
