"""Words every channel shares: values with units, the action taken, the scope, the title.

>>> format_value(12.5, "USD"), format_value(3.2, "USD/h"), format_value(0.42, "fraction"), format_value(95, "seconds")
('$12.50', '$3.20/h', '42%', '1m 35s')

Every channel leads with the money at stake (``evidence.usd_at_stake``, the expected extra spend if
nothing is done; per day for a cost shift: ``evidence.usd_at_stake_per``):

>>> from alerting.testing.anomalies import make_anomaly
>>> at_stake(make_anomaly(usd_at_stake=41.0, usd_at_stake_per="day")), at_stake(make_anomaly(usd_at_stake=2.5))
('$41.00/day at stake', '$2.50 at stake')
>>> at_stake(make_anomaly())  # a finding that does not say
''
"""

from __future__ import annotations

from alerting.notifier import Notification
from schemas.anomaly import SCOPE_KEYS, Action, Anomaly, AnomalyStatus

__all__ = [
    "action_line",
    "approve_command",
    "at_stake",
    "format_value",
    "headline",
    "lead_line",
    "link_lines",
    "scope_line",
    "title",
    "top_lines",
]


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit.upper() == "USD":
        return f"${value:,.2f}" if abs(value) >= 0.1 else f"${value:,.4f}"
    if unit.upper() == "USD/H":
        return f"${value:,.2f}/h"
    if unit == "fraction":
        return f"{value:.0%}"
    if unit == "x":
        return f"{value:.1f}x"
    if unit == "seconds":
        minutes, seconds = divmod(round(value), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h {minutes}m" if hours else f"{minutes}m {seconds}s" if minutes else f"{seconds}s"
    return f"{value:,.4g} {unit}"


def approve_command(anomaly: Anomaly) -> str:
    """The command an operator runs to approve the kill this anomaly proposes: it names the
    proposal's command id (``evidence.kill_command_id``, what ``burnguard kill list`` shows)."""
    return f"burnguard kill approve {anomaly.evidence.get('kill_command_id') or anomaly.anomaly_id}"


def action_line(anomaly: Anomaly) -> str:
    """What burnguard did: alerted, proposed a kill (with the exact approve command), or killed;
    nothing more once it resolved (a resolved anomaly carries ``action: none``, not observe-only)."""
    if anomaly.status is AnomalyStatus.RESOLVED:
        return "none: resolved"
    if anomaly.action is Action.KILL:
        return f"killed: the {anomaly.evidence.get('kill_scope', 'task')} was halted by burnguard"
    if anomaly.evidence.get("kill_proposed"):
        return f"kill proposed — approve with: {approve_command(anomaly)}"
    if anomaly.evidence.get("kill_proposal"):  # a later finding on a task whose kill is proposed
        return f"kill already proposed for this task — see: burnguard kill show {anomaly.evidence['kill_proposal']}"
    if anomaly.action is Action.ALERT:
        return "alerted (no automatic action)"
    return "recorded (observe only)"


def scope_line(anomaly: Anomaly) -> str:
    return " · ".join(f"{k}={anomaly.scope[k]}" for k in SCOPE_KEYS if k in anomaly.scope)


def top_lines(anomaly: Anomaly, n: int = 5) -> list[tuple[str, float]]:
    """The budget lines that drove it (``evidence.top_lines``), costliest first, in USD."""
    lines = anomaly.evidence.get("top_lines") or {}
    if not isinstance(lines, dict):
        return []
    pairs = [(str(k), float(v)) for k, v in lines.items() if isinstance(v, int | float)]
    return sorted(pairs, key=lambda kv: -kv[1])[:n]


def at_stake(anomaly: Anomaly) -> str:
    """``$41.00/day at stake`` from ``evidence.usd_at_stake``; empty when the anomaly has none, or
    once it resolved (nothing is at stake any more)."""
    usd = anomaly.evidence.get("usd_at_stake")
    if anomaly.status is AnomalyStatus.RESOLVED or isinstance(usd, bool) or not isinstance(usd, int | float):
        return ""
    per = anomaly.evidence.get("usd_at_stake_per")
    return f"${usd:,.2f}{f'/{per}' if isinstance(per, str) and per else ''} at stake"


def lead_line(notification: Notification) -> str:
    """The one line a channel leads with: the money at stake, then the title and the summary."""
    money = at_stake(notification.lead) if notification.status is AnomalyStatus.FIRING else ""
    line = f"{title(notification)}: {_summary(notification)}"
    return f"{money} — {line}" if money else line


def headline(notification: Notification) -> str:
    """The lead's summary after the money at stake, or marked resolved once the group has resolved."""
    money = at_stake(notification.lead) if notification.status is AnomalyStatus.FIRING else ""
    return f"{money} — {_summary(notification)}" if money else _summary(notification)


def _summary(notification: Notification) -> str:
    """The lead's summary, marked resolved once the group has resolved (the engine's resolved
    summaries already say ``Resolved: …``: not twice)."""
    summary = notification.lead.summary
    if notification.status is AnomalyStatus.RESOLVED and not summary.lower().startswith("resolved"):
        return f"resolved: {summary}"
    return summary


def _where(notification: Notification) -> str:
    """The most specific scope the group or its lead names: a workflow, else a team, else a tenant."""
    lead = notification.lead
    workflow = notification.group_labels.get("workflow") or lead.scope.get("workflow")
    if workflow:
        return workflow
    for name in ("team", "tenant"):
        value = notification.group_labels.get(name) or lead.scope.get(name)
        if value:
            return f"{name} {value}"
    return "all"


def title(notification: Notification) -> str:
    lead = notification.lead
    where = _where(notification)
    resolved = notification.status is AnomalyStatus.RESOLVED
    state = "RESOLVED" if resolved else notification.severity.value.upper()
    count = len(notification.firing) if notification.firing else len(notification.resolved)
    more = f" ({count} anomalies)" if count > 1 else ""
    return f"[{state}] {lead.detector} · {where}{more}"


def link_lines(anomaly: Anomaly, templates: dict[str, str]) -> list[tuple[str, str]]:
    """``(name, url)`` from the config's link templates; a template with an unknown field is skipped."""
    fields = {**anomaly.scope, "anomaly_id": anomaly.anomaly_id, "detector": anomaly.detector}
    out = []
    for name, template in templates.items():
        try:
            out.append((name, template.format(**fields)))
        except (KeyError, IndexError, ValueError):
            continue
    return out
