from __future__ import annotations

from pathlib import Path

import pytest

from alerting.config import AlertingConfig, ConfigError, load_alerting_config

GOOD = """
route:
  receiver: finops
  group_wait: 10s
  routes:
    - match: {severity: critical}
      match_re: {workflow: "support-.*"}
      receiver: oncall
      repeat_interval: 1h
receivers:
  - name: finops
    slack: {channel: "#agent-spend"}
  - name: oncall
    pagerduty: {routing_key: {env: TEST_PD_KEY}}
slack:
  token: {file: TOKEN_FILE}
"""


def test_loads_with_secrets_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "slack-token"
    token.write_text("xoxb-secret-token\n")
    monkeypatch.setenv("TEST_PD_KEY", "R0UT1NGKEY0000000000000000000001")
    path = tmp_path / "alerting.yaml"
    path.write_text(GOOD.replace("TOKEN_FILE", str(token)))
    cfg = load_alerting_config(path)
    assert cfg.slack.token is not None and cfg.slack.token.get_secret_value() == "xoxb-secret-token"
    dump = cfg.model_dump_json() + repr(cfg) + str(cfg.model_dump())
    assert "xoxb-secret-token" not in dump and "R0UT1NGKEY" not in dump
    assert cfg.route.routes[0].repeat_interval == 3600.0 and cfg.route.group_wait == 10.0


def test_errors_name_their_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_PD_KEY", raising=False)
    path = tmp_path / "bad.yaml"
    path.write_text(
        """
route:
  receiver: finops
  group_wait: soon
  routes:
    - match: {wrkflow: x}
      match_re: {workflow: "("}
receivers:
  - name: finops
  - name: oncall
    pagerduty: {routing_key: {env: TEST_PD_KEY}}
"""
    )
    with pytest.raises(ConfigError) as err:
        load_alerting_config(path)
    where = {loc for loc, _ in err.value.errors}
    assert {
        "route.group_wait",
        "route.routes.0.match",
        "route.routes.0.match_re",
        "receivers.1.pagerduty.routing_key",
    } <= where
    assert "TEST_PD_KEY is not set" in str(err.value)


def test_unknown_receiver_and_inline_secret_are_refused() -> None:
    with pytest.raises(ValueError, match=r"route.routes.0.receiver: unknown receiver 'nobody'"):
        AlertingConfig.model_validate(
            {"route": {"receiver": "console", "routes": [{"match": {"team": "a"}, "receiver": "nobody"}]}}
        )
    with pytest.raises(ValueError, match="never inline"):
        AlertingConfig.model_validate(
            {"receivers": [{"name": "console", "pagerduty": {"routing_key": "plain-text-key"}}]}
        )
    with pytest.raises(ValueError, match=r"slack\.token"):
        AlertingConfig.model_validate({"receivers": [{"name": "console", "slack": {"channel": "#x"}}]})


def test_builtin_default_is_a_dry_run() -> None:
    cfg = load_alerting_config(None)  # its routing: tests/alerting/test_default_routing.py
    assert all(r.slack is None and r.pagerduty is None for r in cfg.receivers)


def test_checks_across_fields_are_reported_with_the_field_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "route:\n  receiver: nobody\n  group_wait: soon\n  group_by: [severty]\n"
        "receivers:\n  - name: a\n  - name: a\ninhibit_rules:\n  - {source: {}, target: {}, equal: [tenat]}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_alerting_config(path)
    assert err.value.errors == [
        ("route.receiver", "unknown receiver 'nobody'; defined: a"),
        ("route.group_wait", "not a duration: 'soon' (seconds, or a string like 30s, 5m, 4h)"),
        ("route.group_by", "unknown label 'severty' (did you mean 'severity'?)"),
        ("receivers", "the name(s) 'a' are used more than once"),
        ("inhibit_rules.0.equal", "unknown label 'tenat' (did you mean 'tenant'?)"),
    ]
