"""``burnguard config validate|show`` as a user runs them: every problem at once, in sentences,
warnings for what never takes effect, alerting configs too, and the settings the worker would use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from burnguard.cli import app

runner = CliRunner()
README = Path(__file__).resolve().parents[2] / "README.md"


def validate(path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["config", "validate", str(path), *args])
    return result.exit_code, " ".join(result.output.split())


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BAD = """
versoin: "1"
defaults:
  autonomy: acts
  detectors:
    runaway_task: {warn_factr: 2}
    fanout: {}
overrides:
  - match: {team: t}
    kill_detectors: [runaway]
    kill_scop: agent
  - match: {workflow: w}
    detectors: {task_budget: {ceiling_usd: -1}}
budgets:
  - {name: b, match: {teem: x}, amount_usd: 10}
"""


def test_validate_reports_every_error_at_once_in_sentences_with_did_you_mean(tmp_path: Path) -> None:
    code, out = validate(write(tmp_path, BAD))
    assert code == 1
    assert "8 error(s)" in out, out
    for expected in (
        "versoin: unknown key 'versoin' (did you mean 'version'?)",
        "defaults.autonomy: 'acts' is not one of observe, advise, approve, act (did you mean 'act'?)",
        "defaults.detectors.runaway_task.warn_factr: unknown key 'warn_factr' (did you mean 'warn_factor'?)",
        "defaults.detectors.fanout: unknown detector 'fanout' (did you mean 'fan_out'?)",
        # an unknown kill detector in an override is found together with the field errors
        "overrides.0.kill_detectors: unknown detector 'runaway' (did you mean 'runaway_task'?)",
        "overrides.0.kill_scop: unknown key 'kill_scop' (did you mean 'kill_scope'?)",
        # an override's knob keeps the detector's bounds (it used to pass and crash the engine)
        "overrides.1.detectors.task_budget.ceiling_usd: must be more than 0 (got -1)",
        "budgets.0.match: unknown match key 'teem' (did you mean 'team'?)",
    ):
        assert expected in out, out
    assert "Input should" not in out and "pydantic" not in out and "Extra inputs" not in out
    # in the order of the file
    assert out.index("versoin:") < out.index("defaults.autonomy") < out.index("overrides.1.") < out.index("budgets.0")


WARN = """
defaults:
  kill_detectors: [runaway_task, cost_shift]
overrides:
  - match: {workflow: w1}
  - match: {workflow: w2}
    autonomy: act
    kill_detectors: [burn_rate]
  - match: {workflow: w3}
    autonomy: approve
    detectors: {task_budget: {enabled: false}, runaway_task: {enabled: false}}
    kill_detectors: [task_budget, runaway_task]
  - match: {workflow: w4}
    kill_scope: agent
"""


def test_validate_warns_about_what_never_takes_effect_and_strict_fails(tmp_path: Path) -> None:
    path = write(tmp_path, WARN)
    code, out = validate(path)
    assert code == 0, out
    assert "valid, 6 warning(s)" in out, out
    for expected in (
        "warning: defaults.kill_detectors: cost_shift never kills",
        "warning: overrides.0: sets nothing for workflow w1",
        "warning: overrides.1.kill_detectors: burn_rate never kills",
        "warning: overrides.1: autonomy act for workflow w2, but no detector that can kill is both in "
        "kill_detectors and enabled, so nothing is ever killed",
        "warning: overrides.2: autonomy approve for workflow w3, but no detector that can kill",
        "warning: overrides.3.kill_scope: has no effect: autonomy for workflow w4 is advise",
    ):
        assert expected in out, out
    assert validate(path, "--strict")[0] == 1


def test_a_setting_a_later_override_with_the_same_match_sets_again_is_a_warning(tmp_path: Path) -> None:
    text = (
        "overrides:\n  - match: {team: a}\n    autonomy: approve\n    detectors: {fan_out: {min_depth: 4}}\n"
        "  - match: {team: b}\n    autonomy: observe\n"
        "  - match: {team: a}\n    autonomy: act\n    detectors: {fan_out: {min_depth: 5, depth_margin: 1}}\n"
    )
    code, out = validate(write(tmp_path, text))
    assert code == 0 and "valid, 2 warning(s)" in out, out
    assert "warning: overrides.0.autonomy: never takes effect: overrides.2 has the same match and sets it too" in out
    assert "warning: overrides.0.detectors.fan_out.min_depth: never takes effect: overrides.2" in out


def test_autonomy_act_by_default_with_nothing_able_to_kill_is_a_warning(tmp_path: Path) -> None:
    code, out = validate(write(tmp_path, "defaults:\n  autonomy: act\n  kill_detectors: [cost_shift]\n"))
    assert code == 0
    assert "warning: defaults.autonomy: autonomy act by default, but no detector that can kill" in out, out
    assert validate(write(tmp_path, "defaults: {autonomy: act}\n", "fine.yaml")) == (
        0,
        f"{tmp_path / 'fine.yaml'}: valid (detectors config: version builtin-1, 0 override(s), 0 budget(s))",
    )


ALERTING_BAD = """
route:
  reciever: finops
  group_wait: soon
  group_by: [workflw]
  routes:
    - match: {severity: critical}
      receiver: oncal
receivers:
  - name: finops
    slack: {channel: "#spend"}
slak: {}
"""


def test_validate_tells_an_alerting_config_and_reports_all_its_errors(tmp_path: Path) -> None:
    code, out = validate(write(tmp_path, ALERTING_BAD, "alerting.yaml"))
    assert code == 1
    assert "7 error(s) (alerting config)" in out, out
    for expected in (
        "route.receiver: the root route needs a receiver",
        "route.reciever: unknown key 'reciever' (did you mean 'receiver'?)",
        "route.group_wait: not a duration: 'soon'",
        "route.group_by: unknown label 'workflw' (did you mean 'workflow'?)",
        # checks across fields are made even though fields are wrong
        "route.routes.0.receiver: unknown receiver 'oncal'; defined: finops",
        "slak: unknown key 'slak' (did you mean 'slack'?)",
        "slack.token: a receiver posts to Slack, so a bot token is needed",
    ):
        assert expected in out, out


def test_validate_accepts_a_good_alerting_config_and_warns_about_dead_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PD_KEY", "R0UT1NG")
    text = (
        "route:\n  receiver: finops\n  routes:\n    - receiver: finops\n    - match: {severity: critical}\n"
        "      receiver: oncall\nreceivers:\n  - name: finops\n  - name: oncall\n"
        "    pagerduty: {routing_key: {env: TEST_PD_KEY}}\n  - name: nobody\n"
    )
    code, out = validate(write(tmp_path, text, "alerting.yaml"))
    assert code == 0, out
    assert "valid, 2 warning(s) (alerting config: 3 receiver(s), 3 route(s))" in out, out
    assert "warning: route.routes.1: can never be reached: route.routes.0 has no match" in out
    assert "warning: receivers.2: 'nobody' is named by no route" in out
    # --kind says what the file is: as a detector config, these keys are unknown
    code, out = validate(tmp_path / "alerting.yaml", "--kind", "detectors")
    assert code == 1 and "route: unknown key 'route'" in out, out


def test_validate_says_in_one_line_what_a_file_that_is_not_yaml_is(tmp_path: Path) -> None:
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    for path, says in (
        (binary, "not a YAML file: byte 128 is not UTF-8 text (a binary file?)"),
        (write(tmp_path, "a,b\n1,2\n", "data.csv"), "not a config file: it holds text, not a mapping"),
        (write(tmp_path, "key: [1, 2\n", "broken.yaml"), "line 2, column 1: not valid YAML"),
    ):
        result = runner.invoke(app, ["config", "validate", str(path)])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and lines[0].startswith("error: "), result.output


CONFIG = """
version: "t-7"
defaults:
  detectors:
    runaway_task: {critical_factor: 6}
overrides:
  - match: {team: payments}
    autonomy: approve
  - match: {workflow: support-triage}
    autonomy: act
    detectors:
      task_budget: {ceiling_usd: 2.5}
budgets:
  - {name: payments-daily, match: {team: payments}, period: day, amount_usd: 50}
  - {name: other-team, match: {team: research}, amount_usd: 50}
"""


def show(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, Any]:
    result = runner.invoke(app, ["config", "show", *args], env=env)
    return result.exit_code, result.stdout, yaml.safe_load(result.stdout) if result.exit_code == 0 else None


def test_show_reads_burnguard_config_as_the_worker_does(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    code, text, doc = show(env={"BURNGUARD_CONFIG": str(path)})
    assert code == 0, text
    assert doc["version"] == "t-7"
    assert text.startswith(f"# {path} (from BURNGUARD_CONFIG)\n")
    # --config beats the environment, as in the worker
    other = write(tmp_path, "version: other\n", "other.yaml")
    assert show("--config", str(other), env={"BURNGUARD_CONFIG": str(path)})[2]["version"] == "other"
    code, text, _ = show(env={"BURNGUARD_CONFIG": str(tmp_path / "missing.yaml")})
    assert code == 2


def test_show_prints_only_what_each_override_sets(tmp_path: Path) -> None:
    code, text, doc = show("--config", str(write(tmp_path, CONFIG)))
    assert code == 0, text
    assert doc["overrides"] == [
        {"match": {"team": "payments"}, "autonomy": "approve"},
        {
            "match": {"workflow": "support-triage"},
            "autonomy": "act",
            "detectors": {"task_budget": {"ceiling_usd": 2.5}},
        },
    ]
    assert "null" not in yaml.safe_dump(doc["overrides"])


def test_show_workflow_prints_the_settings_resolved_for_it(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    code, text, doc = show("--config", str(path), "--workflow", "support-triage", "--team", "payments")
    assert code == 0, text
    assert doc["scope"] == {"tenant": "default", "team": "payments", "workflow": "support-triage"}
    assert doc["overrides_applied"] == [
        {"override": 0, "match": {"team": "payments"}},
        {"override": 1, "match": {"workflow": "support-triage"}},
    ]
    assert "\n# the defaults, then overrides.0, overrides.1 (least specific first)\n" in text
    assert doc["autonomy"] == "act"  # the workflow override beats the team one
    assert doc["detectors"]["task_budget"]["ceiling_usd"] == 2.5
    assert doc["detectors"]["runaway_task"]["critical_factor"] == 6  # from defaults
    assert doc["detectors"]["cost_shift"]["factor"] == 2.5  # built in
    assert [b["name"] for b in doc["budgets"]] == ["payments-daily"]
    code, text, doc = show("--config", str(path), "--workflow", "billing", "--team", "research")
    assert doc["overrides_applied"] == [] and doc["autonomy"] == "advise"
    assert "# settings resolved for tenant default, team research, workflow billing\n# the defaults alone\n" in text


def test_every_command_that_reads_a_config_reports_it_the_same_way(tmp_path: Path) -> None:
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    events = write(tmp_path, "", "events.jsonl")
    replay = runner.invoke(app, ["replay", str(events), "--out", str(tmp_path / "o.jsonl"), "--config", str(binary)])
    assert replay.exit_code == 2, replay.output
    says = f"error: {binary}: not a YAML file: byte 0 is not UTF-8 text (a binary file?)"
    assert replay.output.strip().splitlines() == [says]
    # the alerter: every error in one pass (the unknown receiver with a bad field), then what to run
    bad = write(tmp_path, "route: {receiver: nobody, group_wait: soon}\nreceivers: [{name: oncall}]\n", "al.yaml")
    alerter = runner.invoke(app, ["alerter"], env={"BURNGUARD_ALERTING_CONFIG": str(bad)})
    assert alerter.exit_code == 2, alerter.output
    out = " ".join(alerter.output.split())
    assert "2 error(s) (alerting config)" in out, out
    assert "route.receiver: unknown receiver 'nobody'; defined: oncall" in out
    assert "route.group_wait: not a duration: 'soon'" in out
    assert f"Fix the file, then check it with burnguard config validate {bad}." in out
