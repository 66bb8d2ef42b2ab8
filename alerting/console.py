"""The console receiver: prints what would be sent (for ``burnguard demo`` and dry runs), with Rich."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table

from alerting.config import AlertingConfig, ReceiverConfig
from alerting.nflog import ChannelLog
from alerting.notifier import ChannelSpec, Notification
from alerting.pagerduty import pagerduty_severity
from alerting.render import action_line, format_value, headline, link_lines, scope_line, title, top_lines
from schemas.anomaly import AnomalyStatus

__all__ = ["CONSOLE", "ConsoleReceiver", "render_notification", "would_send"]

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
#: why a notification goes out again for the same group (a first notice or a resolve says itself)
_WHY = {"escalated": ", escalated", "repeat": ", a reminder: still firing"}


def would_send(n: Notification, receiver: ReceiverConfig | None) -> str:
    """What the notification's receiver would send, channel by channel.

    A receiver without channel settings stands for the channel its name says (``slack``,
    ``pagerduty``: the built-in routing's dry run); any other sends nothing.
    """
    name = n.receiver
    slack = receiver.slack if receiver is not None else None
    pagerduty = receiver.pagerduty if receiver is not None else None
    channels = [c for c, on in (("slack", slack), ("pagerduty", pagerduty)) if on]
    if not channels and name in ("slack", "pagerduty"):
        channels = [name]
    parts = []
    if "slack" in channels:
        where = f" {slack.channel}" if slack is not None else ""
        parts.append(f"Slack{where} {'thread reply' if n.sequence else 'message'}")
    if "pagerduty" in channels:
        resolved = n.status is AnomalyStatus.RESOLVED
        parts.append(f"PagerDuty {'resolve' if resolved else f'trigger ({pagerduty_severity(n.lead)})'}")
    return " · ".join(parts) or f"nothing: receiver {name} has no channel"


def render_notification(
    n: Notification, links: dict[str, str] | None = None, receiver: ReceiverConfig | None = None
) -> RenderableType:
    """One notification as a panel: the summary, observed vs expected, budget lines, action, scope,
    what would be sent and the dedup key (in full: it is what PagerDuty and Slack threads key on)."""
    lead = n.lead
    resolved = n.status is AnomalyStatus.RESOLVED
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
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
    when = time.strftime("%b %d %H:%M:%S UTC", time.gmtime(n.created_at))
    grid.add_row("would send", f"{would_send(n, receiver)}; {when}{_WHY.get(n.reason, '')}")
    grid.add_row("dedup key", n.dedup_key)
    style = "green" if resolved else _STYLE.get(n.severity.value, "white")
    return Panel(grid, title=f"[{style}]{title(n)}", border_style=style)


class ConsoleReceiver:
    """A notifier that prints; ``sent`` keeps what it printed. Handles every receiver.

    ``config`` names the receivers :meth:`show` looks up to say what each would send.
    """

    channel = "console"

    def __init__(
        self,
        console: Console | None = None,
        *,
        links: dict[str, str] | None = None,
        config: AlertingConfig | None = None,
    ) -> None:
        self.console = console or Console()
        self.links = links or {}
        self.receivers = {r.name: r for r in config.receivers} if config is not None else {}
        self.sent: list[Notification] = []

    def handles(self, receiver: ReceiverConfig) -> bool:
        return True

    def show(self, notifications: Iterable[Notification]) -> None:
        """Print them now (synchronous, for the demo's loop)."""
        for n in notifications:
            self._print(n, self.receivers.get(n.receiver))

    def _print(self, n: Notification, receiver: ReceiverConfig | None) -> None:
        self.sent.append(n)
        self.console.print(render_notification(n, self.links, receiver))

    async def send(self, notification: Notification, receiver: ReceiverConfig) -> None:
        self._print(notification, receiver)

    async def aclose(self) -> None:
        return None


def _build(config: AlertingConfig, environ: Mapping[str, str], log: ChannelLog) -> ConsoleReceiver:
    return ConsoleReceiver(links=config.links)


#: the channel a config with no channel gets (a dry run): see :func:`alerting.channels.build_channels`
CONSOLE = ChannelSpec(ConsoleReceiver.channel, _build)
