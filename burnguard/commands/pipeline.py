"""``burnguard worker`` and ``burnguard alerter``: the two long-running processes of the Kafka
pipeline (registered on the app in :mod:`burnguard.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from burnguard.commands.common import (
    BootstrapOption,
    exit_with,
    print_config_error,
    settings_config,
    stream_settings,
)
from detectors.config import Autonomy


def worker(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="BURNGUARD_CONFIG",
            help="YAML config file (see README).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    bootstrap: BootstrapOption = None,
    web_host: Annotated[
        str | None,
        typer.Option(envvar="BURNGUARD_WEB_HOST", show_default="127.0.0.1", help="Address the web server binds to."),
    ] = None,
    web_port: Annotated[
        int | None,
        typer.Option(envvar="BURNGUARD_WEB_PORT", show_default="6066", help="Port of the web server.", min=1),
    ] = None,
    web: Annotated[
        bool | None,
        typer.Option("--web/--no-web", envvar="BURNGUARD_WEB_ENABLED", show_default="on", help="Run the web server."),
    ] = None,
    autonomy: Annotated[
        Autonomy | None,
        typer.Option(envvar="BURNGUARD_AUTONOMY", help="Override every workflow's autonomy for this worker."),
    ] = None,
) -> None:
    """Run the Kafka pipeline: read cost events, detect, publish anomalies and task summaries.

    Every setting has a BURNGUARD_ environment variable (the options' are shown below; the others,
    such as BURNGUARD_APP_ID, BURNGUARD_PARTITIONS, the topic names and the Kafka security
    settings, are listed in streams/settings.py and the README). An option overrides its variable.
    """
    from streams.killswitch_keys import KillKeysError, require_signing_key
    from streams.topics import BrokerUnreachable
    from streams.worker import run_worker

    settings = stream_settings(
        bootstrap=bootstrap,
        config_file=str(config) if config is not None else None,
        web_host=web_host,
        web_port=web_port,
        web_enabled=web,
        autonomy=autonomy.value if autonomy is not None else None,
    )
    cfg = settings_config(settings)
    try:
        require_signing_key(cfg, settings.autonomy)
    except KillKeysError as exc:
        exit_with(str(exc), 2)
    try:
        run_worker(settings, cfg)
    except BrokerUnreachable as exc:
        exit_with(str(exc), 1)


def alerter(
    alerting_config: Annotated[
        Path | None,
        typer.Option(
            envvar="BURNGUARD_ALERTING_CONFIG",
            help="Alerting YAML: routes, receivers, Slack/PagerDuty (without one, notifications are printed).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    silences: Annotated[
        Path | None,
        typer.Option(
            envvar="BURNGUARD_SILENCES",
            help="Also obey this silences file (burnguard silence add --file); the silences topic is always obeyed.",
            dir_okay=False,
        ),
    ] = None,
    bootstrap: BootstrapOption = None,
) -> None:
    """Run the alerting stage: read burnguard.anomalies, route, group and deliver to Slack and PagerDuty.

    A process of its own (consumer group APP_ID-alerter), so detection never waits on a channel.
    An anomaly's offset is committed once its notifications are in the durable outbox (the alerts state
    topic); permanent failures go to the alerts dead-letter topic. Kafka settings as for `burnguard worker`.
    """
    from alerting.config import ConfigError, load_alerting_config
    from alerting.silences import SilencesFileError, SilenceStore
    from streams.topics import BrokerUnreachable
    from streams.worker import run_alerter

    settings = stream_settings(
        bootstrap=bootstrap, alerting_config_file=str(alerting_config) if alerting_config is not None else None
    )
    try:
        config = load_alerting_config(settings.alerting_config_file)
    except ConfigError as exc:
        print_config_error(exc, "alerting", check=True)
        raise typer.Exit(2) from None
    try:
        if silences is not None:
            SilenceStore(silences)  # a corrupt file is said before anything connects
        run_alerter(settings, config, str(silences) if silences is not None else None)
    except SilencesFileError as exc:
        exit_with(str(exc), 2)
    except BrokerUnreachable as exc:
        exit_with(str(exc), 1)
