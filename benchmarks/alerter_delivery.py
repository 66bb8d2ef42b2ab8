"""Delivery rate of the alerting stage: anomalies on Kafka → ``burnguard alerter`` → Slack and PagerDuty.

Run: ``.venv/bin/python benchmarks/alerter_delivery.py`` (under a minute). It starts a private broker
(``scripts/kafka-local``; ``BURNGUARD_KAFKA_BOOTSTRAP`` if set instead), the local Slack and
PagerDuty (TLS) servers of ``alerting/testing``, and measures, for ``--groups`` groups of one
critical anomaly each (``group_wait`` 0, rate limits lifted):

- **alerter**: a ``burnguard alerter`` process; the time from producing the anomalies to the last of
  the ``2 × groups`` requests (a Slack message and a PagerDuty trigger per group) being accepted.
  This includes Kafka, the outbox and one acknowledged state write per delivered channel;
- **baseline, same run**: the same notifications through the same notifiers and Dispatcher in this
  process, with no Kafka, no outbox and no state writes.

The difference is what durability costs per notification.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kafka import REPO, kafka_broker, tag

SLACK_TOKEN = "xoxb-bench-0000-TOKEN"
PD_KEY = "BENCHroutingKEY0123456789abcdefg"


def config_text(slack_url: str, pd_url: str, ca_file: Path) -> str:
    return f"""
route: {{receiver: oncall, group_by: [workflow, detector], group_wait: 0, group_interval: 1h}}
receivers:
  - name: oncall
    slack: {{channel: "#bench"}}
    pagerduty: {{routing_key: {{env: BENCH_PD_KEY}}}}
slack: {{token: {{env: BENCH_SLACK_TOKEN}}, base_url: "{slack_url}", messages_per_s: 100000}}
pagerduty: {{base_url: "{pd_url}", events_per_minute: 6000000, ca_file: "{ca_file}"}}
"""


async def measure(bootstrap: str, groups: int) -> dict[str, float]:
    from alerting.channels import build_channels
    from alerting.config import load_alerting_config
    from alerting.dispatch import Dispatcher
    from alerting.nflog import NotificationLog
    from alerting.pipeline import AlertPipeline
    from alerting.retry import RetryStage
    from alerting.testing.anomalies import T0, make_anomaly
    from alerting.testing.pagerduty_server import PagerDutyServer
    from alerting.testing.slack_server import SlackServer
    from streams.settings import StreamSettings
    from streams.topics import ensure_topics

    anomalies = [make_anomaly(workflow=f"wf-{i}", severity="critical", ts=T0 + i) for i in range(groups)]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with SlackServer(SLACK_TOKEN) as slack, PagerDutyServer({PD_KEY}) as pd:
            ca = Path(tmp) / "ca.pem"
            ca.write_bytes(pd.cert_pem)
            cfg_path = Path(tmp) / "alerting.yaml"
            cfg_path.write_text(config_text(slack.base_url, pd.base_url, ca))
            app = f"bench-alerter-{tag()}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("BURNGUARD_")}
            env |= {
                "BURNGUARD_KAFKA_BOOTSTRAP": bootstrap,
                "BURNGUARD_APP_ID": app,
                "BURNGUARD_ANOMALIES_TOPIC": f"{app}-anomalies",
                "BURNGUARD_ALERTS_STATE_TOPIC": f"{app}-alerts-state",
                "BURNGUARD_ALERTS_DLQ_TOPIC": f"{app}-alerts-dlq",
                "BURNGUARD_EVENTS_TOPIC": f"{app}-events",
                "BURNGUARD_INTERNAL_TOPIC": f"{app}-internal",
                "BURNGUARD_SUMMARIES_TOPIC": f"{app}-summaries",
                "BURNGUARD_DLQ_TOPIC": f"{app}-dlq",
                "BURNGUARD_PARTITIONS": "4",
                "BURNGUARD_ALERTING_CONFIG": str(cfg_path),
                "BENCH_SLACK_TOKEN": SLACK_TOKEN,
                "BENCH_PD_KEY": PD_KEY,
            }
            settings = StreamSettings.from_env(env)
            await ensure_topics(settings)
            log = Path(tmp) / "alerter.log"
            with log.open("wb") as sink:
                proc = subprocess.Popen(
                    [str(REPO / ".venv" / "bin" / "burnguard"), "alerter"],
                    env=env,
                    cwd=REPO,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
                try:
                    while "alerter took" not in log.read_text():
                        if proc.poll() is not None:
                            raise RuntimeError(f"the alerter exited:\n{log.read_text()[-3000:]}")
                        await asyncio.sleep(0.1)
                    from aiokafka import AIOKafkaProducer

                    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
                    await producer.start()
                    started = time.perf_counter()
                    for a in anomalies:
                        await producer.send(settings.anomalies_topic, key=a.anomaly_id.encode(), value=a.to_json())
                    await producer.flush()
                    await producer.stop()
                    while len(slack.messages) < groups or len(pd.events) < groups:
                        if proc.poll() is not None:
                            raise RuntimeError(f"the alerter exited:\n{log.read_text()[-3000:]}")
                        await asyncio.sleep(0.01)
                    out["alerter_s"] = time.perf_counter() - started
                    await asyncio.sleep(1.5)  # its last state writes
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=30)
            writes = re.findall(r"(\d+) state writes", log.read_text())
            out["state_writes"] = float(writes[-1]) if writes else float("nan")

            # baseline: the same notifications through the same notifiers, in this process
            slack.messages.clear()
            pd.events.clear()
            os.environ.update(BENCH_SLACK_TOKEN=SLACK_TOKEN, BENCH_PD_KEY=PD_KEY)
            config = load_alerting_config(cfg_path)
            pipeline = AlertPipeline(config)
            due = [n for a in anomalies for n in pipeline.process(a, now=T0)]
            channels = build_channels(config, os.environ, NotificationLog())
            dispatcher = Dispatcher(config.receivers, channels, RetryStage(config.retry))
            started = time.perf_counter()
            await dispatcher.deliver(due)
            out["baseline_s"] = time.perf_counter() - started
            await dispatcher.aclose()
            assert len(slack.messages) == groups and len(pd.events) == groups
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200, help="groups of one anomaly (notifications)")
    args = parser.parse_args()
    with kafka_broker() as bootstrap:
        result = asyncio.run(measure(bootstrap, args.groups))
    n = args.groups
    print(f"{n} notifications = {n} Slack messages + {n} PagerDuty triggers, on this machine:")
    print(
        f"  burnguard alerter (Kafka, outbox, state writes): {result['alerter_s']:.2f} s, "
        f"{n / result['alerter_s']:.0f} notifications/s, {result['state_writes']:.0f} state writes"
    )
    print(
        f"  baseline, same run (Dispatcher in process):      {result['baseline_s']:.2f} s, "
        f"{n / result['baseline_s']:.0f} notifications/s"
    )


if __name__ == "__main__":
    main()
