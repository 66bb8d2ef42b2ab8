"""The channels, registered in one place: name -> how to build it and how to upgrade its old state.

Each channel's module defines its :class:`~alerting.notifier.Notifier` and its
:class:`~alerting.notifier.ChannelSpec`; :data:`CHANNELS` lists them. Adding a channel is its
module plus one line here (and, today, its receiver and settings fields in :mod:`alerting.config`).
Whoever runs the channels — the alerting stage, a benchmark — calls :func:`build_channels` and
never names one: each channel keeps what it must remember in the :class:`~alerting.nflog.NotificationLog`
it is given.

>>> from alerting.config import AlertingConfig
>>> [n.channel for n in build_channels(AlertingConfig(), {}, NotificationLog())]  # no channel configured: a dry run
['console']
>>> sorted(CHANNELS)
['pagerduty', 'slack']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerting.config import AlertingConfig
from alerting.console import CONSOLE
from alerting.nflog import NotificationLog
from alerting.notifier import ChannelSpec, Notifier
from alerting.pagerduty import PAGERDUTY
from alerting.slack import SLACK

__all__ = ["CHANNELS", "FALLBACK", "build_channels", "upgrade_channel_state"]

#: every channel a receiver may use, by name
CHANNELS: dict[str, ChannelSpec] = {spec.name: spec for spec in (SLACK, PAGERDUTY)}

#: what a config none of whose receivers uses a channel gets: the console prints what would be sent
FALLBACK = CONSOLE


def build_channels(config: AlertingConfig, environ: Mapping[str, str], log: NotificationLog) -> list[Notifier]:
    """The channels the configured receivers use, each keeping its state in its part of ``log``
    (the fallback when none is used: a dry run)."""
    built = [spec.build(config, environ, log.channel(name)) for name, spec in CHANNELS.items()]
    found = [n for n in built if n is not None]
    if found:
        return found
    fallback = FALLBACK.build(config, environ, log.channel(FALLBACK.name))
    return [fallback] if fallback is not None else []


def upgrade_channel_state(record: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """A notification log snapshot from a state record written before the log existed, where a
    channel with state kept it under its own name at the top level (``{"slack": {"threads": ...}}``)."""
    upgraded: dict[str, dict[str, dict[str, Any]]] = {}
    for name, spec in CHANNELS.items():
        if spec.upgrade is not None and name in record:
            entries = spec.upgrade(record[name])
            if entries:
                upgraded[name] = {key: entry.to_json() for key, entry in entries.items()}
    return upgraded
