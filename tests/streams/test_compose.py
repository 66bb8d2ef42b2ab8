"""docker-compose.yml runs what scripts/kafka-local runs: this keeps the two from drifting apart.

No Docker here, so the file is read, not run: its services, the commands and options they call,
the BURNGUARD_* settings they set, the Kafka image version and the broker settings must all exist
in the code and match the script that CI uses.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.main import get_command

from burnguard.cli import app
from streams.settings import StreamSettings
from tests.paths import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _script_settings() -> dict[str, str]:
    text = (REPO / "scripts" / "kafka-local").read_text()
    block = text[text.index("process.roles=") : text.index("EOF", text.index("process.roles="))]
    return dict(line.split("=", 1) for line in block.splitlines() if "=" in line and not line.startswith("#"))


def test_the_services_exist() -> None:
    assert set(SERVICES) == {"kafka", "worker", "alerter", "simulator"}
    for name in ("worker", "alerter"):
        assert SERVICES[name]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_the_broker_image_is_the_version_the_pom_fetches() -> None:
    pom = (REPO / "kafka" / "pom.xml").read_text()
    versions = set(re.findall(r"<kafka\.version>([^<]+)</kafka\.version>", pom)) or set(
        re.findall(r"<artifactId>kafka_2\.13</artifactId>\s*<version>([^<]+)</version>", pom)
    )
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{versions.pop()}"


def test_broker_settings_match_scripts_kafka_local() -> None:
    env = SERVICES["kafka"]["environment"]
    script = _script_settings()
    for key in (
        "process.roles",
        "node.id",
        "num.partitions",
        "default.replication.factor",
        "min.insync.replicas",
        "auto.create.topics.enable",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "group.initial.rebalance.delay.ms",
        "log.retention.hours",
    ):
        compose_key = "KAFKA_" + key.upper().replace(".", "_")
        assert str(env[compose_key]) == script[key], key


def test_ports_are_published_on_loopback_only() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_commands_and_options_exist_in_the_cli() -> None:
    cli = get_command(app)
    for name in ("worker", "alerter", "simulator"):
        words = SERVICES[name]["command"]
        command = cli.commands[words[0]]  # type: ignore[attr-defined]
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for word in words[1:]:
            if word.startswith("--"):
                assert word in known, f"{name}: burnguard {words[0]} has no option {word}"


def test_burnguard_settings_named_are_read_by_the_worker() -> None:
    source = (REPO / "streams" / "settings.py").read_text()
    for name in ("worker", "alerter", "simulator"):
        for key in SERVICES[name].get("environment") or {}:
            assert key.startswith("BURNGUARD_")
            assert f'"{key.removeprefix("BURNGUARD_")}"' in source, f"{key} is not a setting"
    env = {k: str(v) for k, v in SERVICES["worker"]["environment"].items()}
    settings = StreamSettings.from_env(env)
    assert settings.bootstrap == "kafka:19092" and settings.partitions == 4


def test_the_image_copies_every_package() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("schemas", "detectors", "alerting", "streams", "burnguard"):
        assert f"COPY {package} ./{package}" in dockerfile
        assert Path(REPO / package / "__init__.py").exists()
