from __future__ import annotations

from alerting.config import RouteConfig
from alerting.matchers import labels_of
from alerting.routing import RouteTree
from alerting.testing.anomalies import make_anomaly


def _tree() -> RouteTree:
    return RouteTree(
        RouteConfig(
            receiver="default",
            routes=(
                RouteConfig.model_validate({"match": {"team": "payments"}, "receiver": "payments", "continue": True}),
                RouteConfig(
                    match={"severity": "critical"},
                    receiver="oncall",
                    group_wait=0,
                    routes=(RouteConfig(match_re={"workflow": "research-.*"}, receiver="research-oncall"),),
                ),
                RouteConfig(match={"detector": "burn_rate"}, receiver="finops", group_by=("tenant",)),
            ),
        )
    )


def _receivers(**kw: object) -> list[str]:
    return [r.receiver for r in _tree().match(labels_of(make_anomaly(**kw)))]  # type: ignore[arg-type]


def test_default_route_catches_the_rest() -> None:
    assert _receivers(severity="warning") == ["default"]


def test_first_match_stops_unless_continue() -> None:
    assert _receivers(team="payments", severity="critical") == ["payments", "oncall"]
    assert _receivers(team="payments", severity="warning") == ["payments"]


def test_children_refine_and_inherit() -> None:
    routes = _tree().match(labels_of(make_anomaly(severity="critical", workflow="research-assistant")))
    assert [(r.receiver, r.group_wait, r.group_by) for r in routes] == [
        ("research-oncall", 0.0, ("workflow", "detector"))
    ]
    assert _receivers(severity="critical", workflow="support") == ["oncall"]


def test_regex_is_anchored_and_grouping_overrides() -> None:
    assert _receivers(severity="critical", workflow="xresearch-a") == ["oncall"]
    (route,) = _tree().match(labels_of(make_anomaly(detector="burn_rate")))
    assert route.group_by == ("tenant",) and route.repeat_interval == 4 * 3600
