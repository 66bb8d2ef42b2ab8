"""An episode that escalates moves to the routes its new severity matches; its resolution must still
close the group its first state went to (the config module's example routes warnings to ``finops``
and critical findings to ``oncall``): a group left holding a firing state would remind every 4 h
for ever and never resolve."""

from __future__ import annotations

from alerting.config import AlertingConfig
from alerting.pipeline import AlertPipeline
from alerting.testing.anomalies import T0, make_anomaly, resolved
from schemas.anomaly import Severity

CONFIG = AlertingConfig.model_validate(
    {
        "route": {
            "receiver": "finops",
            "routes": [{"match": {"severity": "critical"}, "receiver": "oncall", "group_wait": "10s"}],
        },
        "receivers": [{"name": "finops"}, {"name": "oncall"}],
    }
)


def test_the_resolution_of_an_escalated_episode_closes_every_group_it_was_in() -> None:
    pipeline = AlertPipeline(CONFIG)
    warning = make_anomaly(severity="warning", detector="task_budget")
    critical = warning.model_copy(update={"severity": Severity.CRITICAL, "ts": T0 + 60})
    sent = [*pipeline.process(warning, now=T0), *pipeline.flush(T0 + 30)]
    sent += [*pipeline.process(critical, now=T0 + 60), *pipeline.flush(T0 + 70)]
    sent += [*pipeline.process(resolved(critical, ts=T0 + 120), now=T0 + 120), *pipeline.flush(T0 + 4000)]
    steps = [(n.receiver, n.reason) for n in sent]
    assert steps[:2] == [("finops", "new"), ("oncall", "new")]
    assert sorted(steps[2:]) == [("finops", "resolved"), ("oncall", "resolved")]
    assert pipeline.groups == {}
    assert pipeline.flush(T0 + 5 * 3600) == []  # no reminder of a closed episode
