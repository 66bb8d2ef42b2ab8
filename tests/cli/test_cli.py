"""The command line others script against (CONTRACT §4), run as a user would."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import jsonschema
import orjson
from typer.testing import CliRunner

from burnguard.cli import app
from tests.factory import task_events
from tests.paths import REAL_TRACE

runner = CliRunner()


def test_schema_export_validates_real_events_and_rejects_a_step_without_category(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    schema = json.loads((tmp_path / "burnguard.cost_event.v1.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    with gzip.open(REAL_TRACE) as fh:
        for _ in range(300):
            validator.validate(orjson.loads(next(fh)))
    bad = {
        "event_id": "e",
        "ts": "2026-11-02T10:00:00Z",
        "kind": "step",
        "team": "t",
        "workflow": "w",
        "task_id": "x",
    }
    assert not validator.is_valid(bad)
    assert {p.name for p in tmp_path.iterdir()} == {
        "burnguard.cost_event.v1.schema.json",
        "burnguard.anomaly.v1.schema.json",
        "burnguard.kill.v1.schema.json",
        "burnguard.kill_ack.v1.schema.json",
    }


def test_config_validate_names_every_error_with_its_location(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "defaults:\n  autonomy: yolo\n  detectors:\n    runaway_task: {warn_factor: -1}\n"
        "overrides:\n  - match: {}\n    detectors: {nope: {}}\n"
    )
    result = runner.invoke(app, ["config", "validate", str(cfg)])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    for loc in (
        "defaults.autonomy",
        "defaults.detectors.runaway_task.warn_factor",
        "overrides.0.match",
        "overrides.0.detectors.nope",
    ):
        assert loc in out, out


def test_config_validate_accepts_a_good_file(tmp_path: Path) -> None:
    cfg = tmp_path / "good.yaml"
    cfg.write_text(
        "version: '2026-11-23.1'\noverrides:\n  - match: {workflow: wf}\n    autonomy: act\n"
        "    detectors: {task_budget: {ceiling_usd: 2.5}}\n"
        "budgets:\n  - {name: monthly, match: {team: team-a}, period: month, amount_usd: 500}\n"
    )
    result = runner.invoke(app, ["config", "validate", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_replay_writes_every_anomaly_and_exits_zero_despite_bad_lines(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [
        orjson.dumps(e)
        for e in task_events("t1", 1_793_606_400.0, steps=12, cost_per_step=0.1, budget_usd=1.0)
    ]
    lines.insert(3, b'{"not": "an event"}')
    lines.insert(5, b"garbage")
    events.write_bytes(b"\n".join(lines) + b"\n")
    out, dlq = tmp_path / "anomalies.jsonl", tmp_path / "dlq.jsonl"
    result = runner.invoke(
        app, ["replay", str(events), "--out", str(out), "--dlq", str(dlq), "--autonomy", "act"]
    )
    assert result.exit_code == 0, result.output
    anomalies = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    budget = [a for a in anomalies if a["detector"] == "task_budget"]
    assert [a["status"] for a in budget] == ["firing", "firing", "resolved"]
    assert budget[1]["action"] == "kill" and budget[1]["schema"] == "burnguard.anomaly/1"
    assert budget[1]["ts"].endswith("Z")
    rejected = [orjson.loads(line) for line in dlq.read_bytes().splitlines()]
    assert [r["line"] for r in rejected] == [4, 6]
    assert all(r["reason"] for r in rejected)


def test_replay_of_a_missing_file_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_demo_shows_what_would_be_sent_to_slack_and_pagerduty() -> None:
    result = runner.invoke(app, ["demo", "--pace", "0", "--alerts"])
    assert result.exit_code == 0, result.output[-2000:]
    assert "every incident detected, no false kill" in result.output
    assert "would send" in result.output and "PagerDuty trigger" in result.output
    sent = int(result.output.split(" notifications would have been sent")[0].rsplit(maxsplit=1)[-1])
    assert 5 <= sent <= 100


def test_alerter_refuses_a_bad_alerting_config_from_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "alerting.yaml"
    cfg.write_text("route: {receiver: nobody}\nreceivers: [{name: oncall, slack: {channel: '#oncall'}}]\n")
    result = runner.invoke(app, ["alerter"], env={"BURNGUARD_ALERTING_CONFIG": str(cfg)})
    assert result.exit_code == 2, result.output
    assert "unknown receiver 'nobody'" in result.output
