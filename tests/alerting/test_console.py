from __future__ import annotations

from rich.console import Console

from alerting.config import AlertingConfig
from alerting.console import ConsoleReceiver
from alerting.dispatch import Dispatcher
from alerting.notifier import Notifier
from alerting.pipeline import AlertPipeline
from alerting.retry import RetryStage
from alerting.testing.anomalies import T0, make_anomaly, resolved


async def test_console_receiver_prints_what_would_be_sent() -> None:
    console = Console(record=True, width=140)
    receiver = ConsoleReceiver(console)
    assert isinstance(receiver, Notifier)
    config = AlertingConfig.model_validate({"route": {"receiver": "console", "group_wait": 0}})
    pipeline = AlertPipeline(config)
    a = make_anomaly(severity="critical", kill_proposed=True)
    dispatcher = Dispatcher(config.receivers, [receiver], RetryStage(config.retry))
    (report,) = await dispatcher.deliver(pipeline.process(a, now=T0))
    assert report.delivered
    receiver.show(pipeline.process(resolved(a), now=T0 + 600))
    text = console.export_text()
    assert f"burnguard kill approve {a.anomaly_id}" in text and "$12.15" in text and "[RESOLVED]" in text
    assert len(receiver.sent) == 2
