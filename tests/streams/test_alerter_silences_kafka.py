"""Silences on the real broker: ``burnguard silence add|list|expire`` write the compacted silences
topic, and every running ``burnguard alerter`` obeys them within seconds, without a restart."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.streams.alerter_fixtures import (
    Channels,
    alerter_env,
    channels,
    paged_anomaly_ids,
    produce_anomalies,
    start_alerter,
    storm,
)
from tests.streams.conftest import BURNGUARD, REPO, Names, WorkerProcess, read_all, wait_until

pytestmark = pytest.mark.kafka
__all__ = ["channels", "start_alerter"]  # fixtures


def silence(names: Names, *args: str) -> subprocess.CompletedProcess[str]:
    """``burnguard silence ARGS`` as a user runs it: the broker from the environment, no file."""
    return subprocess.run(
        [str(BURNGUARD), "silence", *args],
        env={**names.env(), "COLUMNS": "200"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def logged(process: WorkerProcess, text: str) -> Any:
    async def check() -> bool:
        return text in process.log.read_text(errors="replace")

    return check


def slack_names(channels: Channels, anomaly_id: str) -> bool:
    return any(anomaly_id in orjson.dumps(m).decode() for m in channels.slack.messages)


async def test_a_silence_added_with_the_cli_is_obeyed_by_every_running_alerter_until_it_is_expired(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    config = channels.config(tmp_path / "alerting.yaml", group_wait="1s", group_interval="2s")
    active, standby = start_alerter(alerter_env(names, config)), start_alerter(alerter_env(names, config))
    alerters = [active, standby]

    async def one_took() -> bool:
        return any("alerter took" in a.log.read_text(errors="replace") for a in alerters)

    await wait_until(one_took, "an alerter holding the anomalies", 90, alerters)

    added = silence(names, "add", "-m", "workflow=muted", "--duration", "1h", "--by", "ana", "--comment", "deploy")
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    assert "every running alerter obeys it" in " ".join(added.stderr.split())
    for alerter in alerters:  # the standby too: it follows the topic without a consumer group
        await wait_until(logged(alerter, f"silence {silence_id} in force"), "the silence read", 30, alerters)
    listed = silence(names, "list")
    assert listed.returncode == 0 and silence_id in listed.stdout and "workflow=muted" in listed.stdout

    muted, loud = storm("muted", 1)[0], storm("loud", 1)[0]
    await produce_anomalies(names, [muted, loud])  # one batch: the groups are evaluated in one flush

    async def loud_paged() -> bool:
        return paged_anomaly_ids(channels.pd)[loud.anomaly_id] >= 1 and slack_names(channels, loud.anomaly_id)

    await wait_until(loud_paged, "the anomaly no silence matches paged and posted", 90, alerters)
    assert paged_anomaly_ids(channels.pd)[muted.anomaly_id] == 0 and not slack_names(channels, muted.anomaly_id)

    expired = silence(names, "expire", silence_id)
    assert expired.returncode == 0, expired.stderr
    for alerter in alerters:
        await wait_until(logged(alerter, f"silence {silence_id} ended"), "the expiry read", 30, alerters)
    assert silence_id not in silence(names, "list").stdout
    assert "(ended)" in silence(names, "list", "--expired").stdout

    async def muted_paged() -> bool:  # still grouped: the next group tick notifies it
        return paged_anomaly_ids(channels.pd)[muted.anomaly_id] >= 1 and slack_names(channels, muted.anomaly_id)

    await wait_until(muted_paged, "the anomaly the silence held, paged once it ended", 60, alerters)
    (record,) = [r for r in await read_all(names.bootstrap, names.silences) if r.key == silence_id.encode()][-1:]
    assert orjson.loads(record.value)["created_by"] == "ana"
    channels.assert_well_formed()


async def test_an_alerter_started_after_the_silence_obeys_it_from_its_first_anomaly(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    added = silence(names, "add", "--match-re", "workflow=mut.*", "-m", "severity=critical")
    assert added.returncode == 0, added.stderr
    muted, loud = storm("muted", 1)[0], storm("loud", 1)[0]
    await produce_anomalies(names, [muted, loud])  # written before any alerter runs
    config = channels.config(tmp_path / "alerting.yaml", group_wait="1s", group_interval="1h")
    alerter = start_alerter(alerter_env(names, config))

    async def loud_paged() -> bool:
        return paged_anomaly_ids(channels.pd)[loud.anomaly_id] >= 1

    await wait_until(loud_paged, "the anomaly no silence matches paged", 90, [alerter])
    assert paged_anomaly_ids(channels.pd)[muted.anomaly_id] == 0
    assert "silences: 1 in force" in alerter.log.read_text(errors="replace")
