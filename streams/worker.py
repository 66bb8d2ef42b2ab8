"""``burnguard worker``: check the broker, create the topics, then run the Faust worker until a
signal stops it (SIGTERM/SIGINT: graceful; SIGKILL: the state table and redelivery take over)."""

from __future__ import annotations

import asyncio
import logging

import faust

from detectors.config import BurnguardConfig
from streams.app import create_app
from streams.settings import StreamSettings
from streams.topics import ensure_topics

__all__ = ["run_worker"]

log = logging.getLogger("burnguard.streams")


def run_worker(settings: StreamSettings, config: BurnguardConfig | None = None) -> None:
    """Run one worker of the app in this process; returns (raises ``SystemExit``) when it stops.

    Raises :class:`~streams.topics.BrokerUnreachable` before starting when the broker does not answer.
    """
    # one loop for the topic check and for Faust, which takes the current loop when it starts
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        counts = loop.run_until_complete(ensure_topics(settings))
    except BaseException:
        loop.close()
        raise
    app = create_app(settings, config, source_partitions=counts.get(settings.events_topic))
    worker = faust.Worker(
        app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=True,
    )
    log.info("burnguard worker: %s", settings.describe())
    worker.execute_from_commandline()
