"""What the alerting stage's Kafka tests share: the local Slack/PagerDuty servers, the alerting config
that points at them, ``burnguard alerter`` as a subprocess, and readers of what the servers got."""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from alerting.testing.anomalies import T0, make_anomaly
from alerting.testing.pagerduty_server import PagerDutyServer
from alerting.testing.slack_server import SlackServer
from schemas.anomaly import Anomaly
from streams.alert_state import decode_state
from tests.alerting.conftest import PD_KEY, SLACK_TOKEN
from tests.streams.conftest import BURNGUARD, Names, WorkerProcess, read_all

__all__ = [
    "V1_RECORD",
    "V1_THREAD_TS",
    "AlerterProcess",
    "Channels",
    "alerter_env",
    "outbox_empty",
    "produce_anomalies",
    "state_of",
    "storm",
    "triggers_by_key",
]

#: a state record exactly as the alerter wrote it before the notification log (Slack's threads under
#: a top-level "slack" key): an episode fired, was posted and paged, then resolved; PagerDuty took the
#: resolve, Slack replied in the thread and was killed before editing the parent (written by
#: streams.alert_state.encode_state at 72c1c7d, the last commit before the notification log)
V1_RECORD = Path(__file__).parent / "data" / "alerter_state_v1.json"
V1_THREAD_TS = "1793606400.000001"


SECRETS = {"BURNGUARD_TEST_SLACK_TOKEN": SLACK_TOKEN, "BURNGUARD_TEST_PD_KEY": PD_KEY}


@dataclass
class Channels:
    slack: SlackServer
    pd: PagerDutyServer
    ca_file: Path

    def config(
        self,
        path: Path,
        *,
        group_wait: str = "2s",
        group_interval: str = "1h",
        pd_key_env: str = "",
        routes: str = "",
    ) -> Path:
        """An alerting config: one receiver on both channels, short timeouts and backoffs; ``routes``
        is YAML for the root's ``routes:`` (child routes, e.g. one workflow with a longer group_wait)."""
        key_env = pd_key_env or "BURNGUARD_TEST_PD_KEY"
        children = f"\n  routes:\n{textwrap.indent(textwrap.dedent(routes).strip(), '    ')}" if routes else ""
        path.write_text(
            f"""
route:
  receiver: oncall
  group_by: [workflow, detector]
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: 4h{children}
receivers:
  - name: oncall
    slack: {{channel: "#oncall"}}
    pagerduty: {{routing_key: {{env: {key_env}}}}}
slack:
  token: {{env: BURNGUARD_TEST_SLACK_TOKEN}}
  base_url: "{self.slack.base_url}"
  timeout_s: 1
  messages_per_s: 50
pagerduty:
  base_url: "{self.pd.base_url}"
  timeout_s: 1
  events_per_minute: 6000
  ca_file: "{self.ca_file}"
retry: {{initial_backoff_s: 0.2, max_backoff_s: 1, max_elapsed_s: 600}}
"""
        )
        return path

    def assert_well_formed(self) -> None:
        assert self.slack.violations == [] and self.pd.violations == []


@pytest.fixture
async def channels(tmp_path: Path) -> AsyncIterator[Channels]:
    async with SlackServer(SLACK_TOKEN) as slack, PagerDutyServer({PD_KEY}) as pd:
        ca_file = tmp_path / "pagerduty-ca.pem"
        ca_file.write_bytes(pd.cert_pem)
        yield Channels(slack, pd, ca_file)


def alerter_env(names: Names, config: Path, **extra: str) -> dict[str, str]:
    return names.env(BURNGUARD_ALERTING_CONFIG=str(config), BURNGUARD_LOG_LEVEL="info", **SECRETS, **extra)


class AlerterProcess(WorkerProcess):
    """``burnguard alerter`` as a subprocess (SIGTERM or SIGKILL it like a worker)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [str(BURNGUARD), "alerter"], env=env, cwd=log.parent, stdout=self._out, stderr=subprocess.STDOUT
        )


@pytest.fixture
def start_alerter(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], AlerterProcess]]:
    started: list[AlerterProcess] = []

    def start(env: dict[str, str]) -> AlerterProcess:
        alerter = AlerterProcess(env, tmp_path / f"alerter-{len(started)}.log")
        started.append(alerter)
        return alerter

    yield start
    import sys

    for alerter in started:
        alerter.stop()
        sys.stderr.write(f"--- last lines of {alerter.log.name}:\n{alerter.tail()}\n")


async def produce_anomalies(names: Names, anomalies: list[Anomaly]) -> None:
    """Keyed by anomaly id as the detect stage sends them, all handed over at once (a storm arrives
    together, well within any group_wait here), then flushed and acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=names.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [await producer.send(names.anomalies, key=a.anomaly_id.encode(), value=a.to_json()) for a in anomalies]
        await asyncio.gather(*sent)  # each acknowledged, or its error raised here
    finally:
        await producer.stop()


def triggers_by_key(pd: PagerDutyServer, action: str = "trigger") -> Counter[str]:
    return Counter(e["dedup_key"] for e in pd.events if e["event_action"] == action)


def paged_anomaly_ids(pd: PagerDutyServer) -> Counter[str]:
    """Each anomaly id named by an accepted trigger (its lead and the others listed)."""
    found: Counter[str] = Counter()
    for e in pd.events:
        if e["event_action"] != "trigger":
            continue
        details = e["payload"]["custom_details"]
        found[details["anomaly_id"]] += 1
        for other in details.get("others", []):
            found[other["anomaly_id"]] += 1
    return found


async def state_of(names: Names) -> Any:
    """The alerter's latest state record (decoded), or ``None`` before the first."""
    key = f"{names.app_id}-alerter".encode()
    records = [r for r in await read_all(names.bootstrap, names.alerts_state) if r.key == key]
    return decode_state(records[-1].value) if records else None


async def dead_letters(names: Names) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await read_all(names.bootstrap, names.alerts_dlq)]


def storm(workflow: str, n: int, t0: float = T0, detector: str = "runaway_task") -> list[Any]:
    """``n`` critical anomalies of one workflow and detector, a task each, a second apart."""
    return [
        make_anomaly(workflow=workflow, task=f"{workflow}-{i}", severity="critical", ts=t0 + i, detector=detector)
        for i in range(n)
    ]


async def outbox_empty(names: Names) -> bool:
    """The alerter's state record says every notification is delivered (or dead-lettered)."""
    state = await state_of(names)
    return state is not None and len(state.outbox) == 0
