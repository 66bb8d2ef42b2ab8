"""The outbox: what the pipeline released and its channels have not all finished."""

from __future__ import annotations

from alerting.config import AlertingConfig
from alerting.outbox import Outbox
from alerting.pipeline import AlertPipeline
from alerting.testing.anomalies import T0, make_anomaly


def test_a_group_keeps_its_order_in_the_outbox() -> None:
    pipeline = AlertPipeline(
        AlertingConfig.model_validate({"route": {"receiver": "console", "group_wait": 0, "group_interval": 1}})
    )
    outbox = Outbox()
    outbox.add(pipeline.process(make_anomaly(task="a", severity="critical"), now=T0))
    outbox.add(pipeline.process(make_anomaly(task="b", severity="critical"), now=T0 + 2))
    (key,) = outbox.groups()
    first = outbox.first(key)
    assert first is not None and first.notification.sequence == 0
    outbox.remove(first.notification.notification_id)
    second = outbox.first(key)
    assert second is not None and second.notification.sequence == 1
