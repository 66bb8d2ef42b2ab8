"""The console receiver: prints what would be sent (for ``burnguard demo`` and dry runs), with Rich."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table

from alerting.config import ReceiverConfig
from alerting.notifier import Notification
from alerting.pagerduty import pagerduty_severity
from alerting.render import action_line, format_value, headline, link_lines, scope_line, title, top_lines
from schemas.anomaly import AnomalyStatus

__all__ = ["ConsoleReceiver", "render_notification"]

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def render_notification(n: Notification, links: dict[str, str] | None = None) -> RenderableType:
    """One notification as a panel: the summary, observed vs expected, budget lines, action, scope."""
    lead = n.lead
    resolved = n.status is AnomalyStatus.RESOLVED
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("summary", headline(n))
    grid.add_row(
        "observed",
        f"{format_value(lead.observed, lead.unit)} ({lead.metric}); expected {format_value(lead.expected, lead.unit)},"
        f" threshold {format_value(lead.threshold, lead.unit)}",
    )
    lines = top_lines(lead)
    if lines:
        grid.add_row("budget lines", " · ".join(f"{k} ${v:,.2f}" for k, v in lines))
    grid.add_row("action", action_line(lead))
    grid.add_row("scope", scope_line(lead))
    others = len(n.firing or n.resolved) - 1
    if others > 0:
        grid.add_row("group", f"{others} more anomalies in this group")
    for name, url in link_lines(lead, links or {}):
        grid.add_row(name, url)
    channel = "resolve" if resolved else f"trigger ({pagerduty_severity(lead)})"
    grid.add_row("would send", f"Slack {'thread reply' if n.sequence else 'message'} · PagerDuty {channel}")
    style = "green" if resolved else _STYLE.get(n.severity.value, "white")
    return Panel(grid, title=f"[{style}]{title(n)}", subtitle=f"dedup_key {n.dedup_key}", border_style=style)


class ConsoleReceiver:
    """A notifier that prints; ``sent`` keeps what it printed. Handles every receiver."""

    channel = "console"

    def __init__(self, console: Console | None = None, *, links: dict[str, str] | None = None) -> None:
        self.console = console or Console()
        self.links = links or {}
        self.sent: list[Notification] = []

    def handles(self, receiver: ReceiverConfig) -> bool:
        return True

    def show(self, notifications: Iterable[Notification]) -> None:
        """Print them now (synchronous, for the demo's loop)."""
        for n in notifications:
            self.sent.append(n)
            self.console.print(render_notification(n, self.links))

    async def send(self, notification: Notification, receiver: ReceiverConfig) -> None:
        self.show([notification])

    async def aclose(self) -> None:
        return None
