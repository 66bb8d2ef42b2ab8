"""Episodes, false alerts, false and collateral kills on hand-made anomalies: matched by scope and event
time (the scorecard's ``scope_only`` rule), never by detector name."""

from __future__ import annotations

import tests.benchmarks._paths  # noqa: F401  (puts benchmarks/ on the path)
from alerting.testing.anomalies import T0, make_anomaly
from burnguard.scorecard import score_run

from detection_corpus import LabelledIncident  # isort: skip
from detection_scoring import aggregate, episodes, percentile, score_item  # isort: skip

SCOPE = {"tenant": "acme", "team": "support", "workflow": "support-triage"}
RUNAWAY = LabelledIncident("runaway_loop", T0, T0 + 3600, {**SCOPE, "root_task_id": "loop"}, "loop", 60.0)
REGRESSION = LabelledIncident("routing_regression", T0 + 7200, T0 + 9000, {**SCOPE, "workflow": "doc-qa"})


def test_an_episode_is_one_scope_and_detector_in_a_15_minute_bucket() -> None:
    found = [
        make_anomaly(detector="cost_shift", task=None, ts=T0),
        make_anomaly(detector="cost_shift", task=None, ts=T0 + 600),  # same bucket
        make_anomaly(detector="cost_shift", task=None, ts=T0 + 900),  # next bucket
        make_anomaly(detector="burn_rate", task=None, ts=T0 + 60),  # another detector
        make_anomaly(detector="cost_shift", workflow="doc-qa", task=None, ts=T0 + 60),  # another scope
        make_anomaly(detector="cost_shift", task=None, ts=T0 + 120, severity="info"),  # not an alert
    ]
    assert len(episodes(found)) == 4


def test_matching_is_by_scope_and_time_whatever_the_detector() -> None:
    found = [
        # any detector on the runaway's own task explains it, as does its workflow seen from above
        make_anomaly(detector="retry_rate", task="loop", ts=T0 + 300),
        make_anomaly(detector="burn_rate", task=None, ts=T0 + 200),
        make_anomaly(detector="task_budget", task="loop", ts=T0 + 900, severity="critical", action="kill"),
        # another task of the same workflow in the same hour: false, and its kill a false kill
        make_anomaly(detector="runaway_task", task="other", ts=T0 + 400, severity="critical", action="kill"),
        # a task of the regressed workflow during the regression: explains it; its kill is collateral
        make_anomaly(detector="task_budget", workflow="doc-qa", task="t9", ts=T0 + 7300, severity="critical",
                     action="kill"),
        # the right scope long after the aftermath: false
        make_anomaly(detector="cost_shift", workflow="doc-qa", task=None, ts=T0 + 9000 + 3 * 3600),
    ]
    card = score_run([RUNAWAY, REGRESSION], found, {"loop": 3.0}, scope_only=True)
    result = score_item("hand-made", "tuning", "fleet", 5000, 1, card, found)
    runaway, regression = result.incidents
    assert runaway["detected"] and runaway["delay_s"] == 200 and runaway["killed"]
    assert runaway["by_detector"] == {"burn_rate": 200, "retry_rate": 300, "task_budget": 900}
    assert runaway["spent_share"] == 3.0 / 60.0
    assert regression["detected"] and regression["delay_s"] == 100 and regression["within_deadline"]
    assert result.false_episodes == {"runaway_task": 1, "cost_shift": 1}
    assert result.false_kills == {"runaway_task": 1}
    assert result.collateral_kills == {"task_budget": 1}
    total = aggregate([result])["tuning"]["detectors"]["total"]
    assert total["false_episodes_per_10k_tasks"] == 4.0 and total["false_kills"] == 1
    assert total["collateral_kills"] == 1 and total["incidents_explained"] == 2


def test_a_late_detection_misses_its_deadline() -> None:
    found = [make_anomaly(detector="cost_shift", workflow="doc-qa", task=None, ts=T0 + 7200 + 901)]
    card = score_run([REGRESSION], found, {}, scope_only=True)
    (line,) = score_item("late", "held-out", "fleet", 10, 1, card, found).incidents
    assert line["detected"] and not line["within_deadline"] and line["deadline_s"] == 900


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0], 0.95) == 5.0 and percentile([5.0, 1.0, 3.0], 0.5) == 3.0
