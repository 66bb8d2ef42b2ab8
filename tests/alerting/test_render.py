"""What every channel says about a notification: the headline, the action line, the title."""

from __future__ import annotations

import re

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


def test_every_channel_leads_with_the_money_at_stake() -> None:
    from alerting.pagerduty import trigger_fields

    shift = make_anomaly(detector="cost_shift", task=None, usd_at_stake=41.0, usd_at_stake_per="day")
    (n,) = _notifications(shift)
    text, blocks = slack_message(n)
    assert text.startswith("$41.00/day at stake — [WARNING] cost_shift · support-triage: ")
    assert text.count("at stake") == 1  # said once, first
    assert blocks[1]["text"]["text"].startswith("*$41.00/day at stake — ")  # the first line under the header
    fields = trigger_fields(n, "burnguard", {})
    assert fields["summary"].startswith("$41.00/day at stake — [WARNING] cost_shift")
    assert fields["summary"].count("at stake") == 1
    assert next(iter(fields["custom_details"])) == "at_stake"
    assert fields["custom_details"]["at_stake"] == "$41.00/day at stake"
    assert re.search(r"summary +\$41\.00/day at stake — ", _text(n))
    # a task finding's money has no period; a resolve has nothing at stake any more
    (task,) = _notifications(make_anomaly(usd_at_stake=3.5))
    assert slack_message(task)[0].startswith("$3.50 at stake — [WARNING] runaway_task")
    _, done = _notifications(shift, _engine_resolved(shift))
    assert "at stake" not in slack_message(done)[0] and "at stake" not in headline(done)
    # a finding that does not say is shown as before
    (plain,) = _notifications(make_anomaly(workflow="triage"))
    assert slack_message(plain)[0].startswith("[WARNING] runaway_task · triage: ")
