"""The README tells the truth about configuration: every knob `config show` prints and every key of
the alerting config is documented with its default, and its example configs and output are real."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from detectors.budgets import MoneyBudget
from detectors.config import Match, Override
from tests.cli.test_config_cli import show, validate, write

README = Path(__file__).resolve().parents[2] / "README.md"


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{path}.{k}" if path else k)]
    return [(path, value)]


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _readme_knobs() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Configuration") :]
    section = section[: section.index("\n## ")]
    rows = re.findall(r"^\| `([^`]+)` \|([^|]*)\|", section, flags=re.MULTILINE)
    return {key: default.strip() for key, default in rows}


def test_every_knob_config_show_prints_is_documented_in_the_readme_with_its_default() -> None:
    code, text, doc = show(env={"BURNGUARD_CONFIG": ""})
    assert code == 0, text
    documented = _readme_knobs()
    expected: dict[str, str | None] = {}
    for path, value in _leaves(doc):
        if path in ("overrides", "budgets"):
            continue
        key = path.removeprefix("defaults.").removeprefix("detectors.")
        expected[key] = _fmt(value)
    # what an override or a budget may set (empty in the defaults, so not in the dump)
    expected.update({k: None for k in Override.model_fields if k != "detectors"})
    expected.update({f"budgets[].{k}": None for k in MoneyBudget.model_fields})
    assert set(Match.model_fields) == {"tenant", "team", "workflow"}
    missing = sorted(k for k in expected if k not in documented)
    assert not missing, f"knobs missing from the README's Configuration section: {missing}"
    wrong = {k: (documented[k], v) for k, v in expected.items() if v is not None and documented[k] != v}
    assert not wrong, f"README default differs from the code's (README, code): {wrong}"


def _model_keys(model: type[Any], prefix: str = "") -> list[str]:
    """Every key an alerting config may hold, ``receivers[].slack.channel``-style (a route's
    ``routes`` and the matchers of inhibit rules are not walked into)."""
    from pydantic import BaseModel

    from alerting.config import RouteConfig
    from alerting.matchers import Matchers

    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        inner = [a for a in (field.annotation, *getattr(field.annotation, "__args__", ())) if isinstance(a, type)]
        sub = next((a for a in inner if issubclass(a, BaseModel)), None)
        many = "tuple" in str(field.annotation)
        if sub is None or (sub in (RouteConfig, Matchers) and prefix):
            keys.append(key)
        else:
            keys += _model_keys(sub, f"{key}[]." if many and sub is not RouteConfig else f"{key}.")
    return keys


def test_every_alerting_key_is_documented_in_the_readme_with_its_default() -> None:
    from alerting.config import AlertingConfig, parse_duration
    from alerting.routing import RouteTree

    text = README.read_text(encoding="utf-8")
    section = text[text.index("### The alerting stage on Kafka") : text.index("## The kill switch")]
    documented = {k: d.strip() for k, d in re.findall(r"^\| `([^`]+)` \|([^|]*)\|", section, flags=re.MULTILINE)}
    keys = _model_keys(AlertingConfig)
    assert "receivers[].slack.channel" in keys and "route.group_wait" in keys and "retry.max_elapsed_s" in keys
    missing = sorted(set(keys) - set(documented))
    assert not missing, f"alerting keys missing from the README's alerting section: {missing}"
    root = RouteTree(AlertingConfig().route).root
    defaults: dict[str, Any] = dict(_leaves(AlertingConfig().model_dump(mode="json", exclude={"route", "links"})))
    defaults.update({f"route.{k}": getattr(root, k) for k in ("group_wait", "group_interval", "repeat_interval")})
    defaults.update({"route.receiver": root.receiver, "route.group_by": list(root.group_by)})
    for key, value in defaults.items():
        if key not in documented:
            continue
        cell = documented[key]
        if key in ("dedup_ttl",) or (key.startswith("route.") and isinstance(value, float)):
            assert parse_duration(cell) == value, (key, cell, value)
        else:
            assert cell == _fmt(value), (key, cell, value)


def _readme_yaml(after: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("```yaml\n", text.index(after)) + len("```yaml\n")
    return text[start : text.index("```", start)]


def test_the_readme_example_configs_are_valid_without_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNGUARD_SLACK_TOKEN", "xoxb-test")
    monkeypatch.setenv("BURNGUARD_PD_ROUTING_KEY", "R0UT1NG")
    detectors = write(tmp_path, _readme_yaml("### Configuration"), "detectors.yaml")
    assert validate(detectors, "--strict") == (
        0,
        f"{detectors}: valid (detectors config: version 2026-11-23.1, 2 override(s), 1 budget(s))",
    )
    alerting = write(tmp_path, _readme_yaml("To run it against a real Slack workspace"), "alerting.yaml")
    assert validate(alerting, "--strict") == (0, f"{alerting}: valid (alerting config: 2 receiver(s), 2 route(s))")


def test_the_readme_shows_what_config_validate_prints(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("```\nerror: bad.yaml:", text.index("### Configuration")) + len("```\n")
    shown = " ".join(text[start : text.index("```", start)].split())
    bad = write(
        tmp_path,
        "defaults:\n  autonomy: acts\noverrides:\n  - match: {team: t}\n    kill_detectors: [runaway]\n"
        "  - match: {workflow: w}\n    detectors: {task_budget: {ceiling_usd: -1}}\n",
        "bad.yaml",
    )
    code, out = validate(bad)
    assert code == 1 and out == shown.replace("bad.yaml", str(bad)), (out, shown)
