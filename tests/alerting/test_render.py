"""What every channel says about a notification: the headline, the action line, the title."""

from __future__ import annotations

from rich.console import Console

from alerting.config import AlertingConfig
from alerting.console import render_notification
from alerting.notifier import Notification
from alerting.pipeline import AlertPipeline
from alerting.render import action_line, headline, title
from alerting.slack import slack_message
from alerting.testing.anomalies import T0, make_anomaly, resolved
from schemas.anomaly import Action, Anomaly


def _notifications(first: Anomaly, then: Anomaly | None = None, **route: object) -> list[Notification]:
    config = AlertingConfig.model_validate({"route": {"receiver": "console", "group_wait": 0, **route}})
    pipeline = AlertPipeline(config)
    out = pipeline.process(first, now=T0)
    if then is not None:
        out += pipeline.process(then, now=T0 + 600)
    return out


def _engine_resolved(anomaly: Anomaly) -> Anomaly:
    """Resolved the way detectors.episodes resolves it: ``Resolved: <reason>. Was: <summary>``, no action."""
    return resolved(anomaly).model_copy(
        update={"summary": f"Resolved: task finished. Was: {anomaly.summary}", "action": Action.NONE}
    )


def _text(n: Notification) -> str:
    console = Console(record=True, width=200)
    console.print(render_notification(n))
    return console.export_text()


def test_a_resolved_notification_says_resolved_once() -> None:
    a = make_anomaly(severity="critical")
    _, done = _notifications(a, _engine_resolved(a))
    assert headline(done) == f"Resolved: task finished. Was: {a.summary}"
    text, blocks = slack_message(done)
    assert "resolved: Resolved" not in text and "resolved: Resolved" not in str(blocks)
    assert "resolved: Resolved" not in _text(done)
    # a summary that does not say it is still marked
    _, plain = _notifications(a, resolved(a).model_copy(update={"summary": "spend back to normal"}))
    assert headline(plain) == "resolved: spend back to normal"


def test_a_resolved_notification_does_not_call_its_action_observe_only() -> None:
    a = make_anomaly(severity="critical", kill_proposed=True)
    _, done = _notifications(a, _engine_resolved(a))
    assert action_line(done.lead) == "none: resolved"
    _, blocks = slack_message(done)
    assert "observe only" not in str(blocks) and "kill proposed" not in str(blocks)
    assert "observe only" not in _text(done)
    observe = make_anomaly(action="none")
    assert action_line(observe) == "recorded (observe only)"  # a firing observe-only anomaly still says so


def test_a_tenant_scoped_anomaly_names_its_tenant_in_the_title() -> None:
    burn = make_anomaly(detector="burn_rate", task=None, severity="critical")
    burn = burn.model_copy(update={"scope": {"tenant": "acme"}})
    (n,) = _notifications(burn)
    assert title(n) == "[CRITICAL] burn_rate · tenant acme"
    team = burn.model_copy(update={"scope": {"tenant": "acme", "team": "support"}, "anomaly_id": "burn-team"})
    (m,) = _notifications(team)
    assert title(m) == "[CRITICAL] burn_rate · team support"
    (w,) = _notifications(make_anomaly(workflow="triage"))
    assert title(w) == "[WARNING] runaway_task · triage"


def test_a_finding_on_a_task_whose_kill_is_proposed_names_that_proposal() -> None:
    later = make_anomaly(detector="runaway_task", severity="critical", kill_proposal="kill-9a28c39974725e53b781c9e3")
    assert action_line(later) == (
        "kill already proposed for this task — see: burnguard kill show kill-9a28c39974725e53b781c9e3"
    )
    (n,) = _notifications(later)
    assert "burnguard kill show kill-9a28c39974725e53b781c9e3" in str(slack_message(n)[1])
