"""The built-in routing (no alerting file: the alerter's dry run, ``burnguard demo --alerts``):
warnings post to Slack only; critical findings also page PagerDuty, at once, so a kill followed a
second later by its resolution still pages, then resolves the page."""

from __future__ import annotations

from rich.console import Console

from alerting.config import load_alerting_config
from alerting.console import ConsoleReceiver
from alerting.pipeline import AlertPipeline
from alerting.testing.anomalies import T0, make_anomaly, resolved
from schemas.anomaly import Severity


def test_a_warning_goes_to_slack_only() -> None:
    pipeline = AlertPipeline(load_alerting_config(None))
    pipeline.ingest(make_anomaly(severity="warning"), now=T0)
    sent = pipeline.flush(T0 + 60)
    assert [n.receiver for n in sent] == ["slack"]


def test_a_critical_finding_pages_pagerduty_at_once_and_posts_to_slack() -> None:
    pipeline = AlertPipeline(load_alerting_config(None))
    sent = pipeline.process(make_anomaly(severity="critical", detector="burn_rate", task=None), now=T0)
    assert [n.receiver for n in sent] == ["pagerduty"]
    assert [n.receiver for n in pipeline.flush(T0 + 30)] == ["slack"]


def test_an_escalated_episode_stays_in_one_slack_thread_and_every_group_resolves() -> None:
    pipeline = AlertPipeline(load_alerting_config(None))
    warning = make_anomaly(severity="warning", detector="task_budget")
    critical = warning.model_copy(update={"severity": Severity.CRITICAL, "ts": T0 + 60})
    sent = [*pipeline.process(warning, now=T0), *pipeline.flush(T0 + 30), *pipeline.process(critical, now=T0 + 60)]
    sent += [*pipeline.flush(T0 + 400), *pipeline.process(resolved(critical, ts=T0 + 500), now=T0 + 500)]
    sent += pipeline.flush(T0 + 3600)
    steps = [(n.receiver, n.reason) for n in sent]
    assert steps == [
        ("slack", "new"), ("pagerduty", "new"), ("slack", "escalated"),
        ("pagerduty", "resolved"), ("slack", "resolved"),
    ]
    assert pipeline.groups == {}


def test_a_kill_resolved_a_second_later_still_pages_and_then_resolves() -> None:
    pipeline = AlertPipeline(load_alerting_config(None))
    kill = make_anomaly(severity="critical", action="kill")
    first = pipeline.process(kill, now=T0)
    pipeline.ingest(resolved(kill, ts=T0 + 1), now=T0 + 1)
    later = pipeline.flush(T0 + 3600)
    pages = [(n.reason, n.dedup_key) for n in [*first, *later] if n.receiver == "pagerduty"]
    assert [reason for reason, _ in pages] == ["new", "resolved"]
    assert pages[0][1] == pages[1][1]


def test_the_console_says_which_channel_each_notification_would_use() -> None:
    config = load_alerting_config(None)
    console = Console(record=True, width=80)
    receiver = ConsoleReceiver(console, config=config)
    pipeline = AlertPipeline(config)
    receiver.show(pipeline.process(make_anomaly(severity="critical", action="kill"), now=T0))
    receiver.show(pipeline.process(make_anomaly(severity="warning", workflow="doc-qa", task="t2"), now=T0 + 60))
    receiver.show(pipeline.flush(T0 + 120))
    text = console.export_text()
    assert text.count("PagerDuty trigger") == 1 and text.count("Slack message") == 2
    flat = "".join(text.replace("│", "").split())
    for n in receiver.sent:  # the whole key, at 80 columns (a panel's subtitle used to cut it)
        assert n.dedup_key in flat
