"""``burnguard worker``: check the broker, create the topics, then run the Faust worker until a
signal stops it (SIGTERM/SIGINT: graceful; SIGKILL: the state table and redelivery take over).
``burnguard alerter`` (:func:`run_alerter`): the alerting stage, a process of its own."""

from __future__ import annotations

import asyncio
import logging

import faust

from alerting.config import AlertingConfig
from detectors.config import BurnguardConfig
from streams.app import create_app
from streams.settings import StreamSettings
from streams.stage import EXIT_STAGE_FAILED
from streams.topics import ensure_topics

__all__ = ["run_alerter", "run_worker"]

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
    try:
        worker.execute_from_commandline()
    finally:
        failure = getattr(app, "burnguard_failure", None)
        if failure is not None:  # a stage could not go on (streams.stage): not a clean stop
            log.critical("burnguard worker stopped: %s", failure)
            raise SystemExit(EXIT_STAGE_FAILED)


def run_alerter(settings: StreamSettings, config: AlertingConfig, silences_path: str | None = None) -> None:
    """``burnguard alerter``: create the topics, read the silences topic (and ``silences_path``,
    a file, if given), then run the stage until SIGTERM/SIGINT, following the silences topic.

    Raises :class:`~streams.topics.BrokerUnreachable` before starting when the broker does not
    answer, :class:`~alerting.silences.SilencesFileError` when the silences file is damaged.
    """
    import signal

    from alerting.silences import SilenceStore
    from streams.alerter import Alerter
    from streams.silences_topic import SilenceFeed

    logging.basicConfig(
        level=settings.log_level.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s", force=True
    )

    silences = SilenceStore(silences_path)  # a damaged file stops it here, before any connection

    async def main() -> None:
        await ensure_topics(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        feed = SilenceFeed(settings, silences)
        await feed.start()  # the silences in force before the first anomaly is taken in
        alerter = Alerter(settings, config, silences=silences)
        log.info(
            "burnguard alerter: group %s at %s reads %s; state %s, dead letters %s; silences %s%s; receivers %s",
            alerter.group_id,
            settings.bootstrap,
            settings.anomalies_topic,
            settings.alerts_state_topic,
            settings.alerts_dlq_topic,
            settings.silences_topic,
            f" and {silences_path}" if silences_path else "",
            [r.name for r in config.receivers],
        )
        follow = asyncio.create_task(feed.follow(stop), name="follow silences")
        try:
            await alerter.run(stop)
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
            await feed.stop()

    asyncio.run(main())
