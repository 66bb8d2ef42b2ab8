"""Operator configuration: how settings resolve, and how a bad file is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.config import Autonomy, ConfigError, load_config

FILE = """
version: "t-1"
defaults:
  autonomy: advise
  detectors:
    runaway_task: {critical_factor: 6}
overrides:
  - match: {workflow: triage}
    autonomy: act
    detectors:
      task_budget: {ceiling_usd: 2.5}
  - match: {team: support}
    autonomy: observe
    kill_scope: agent
budgets:
  - {name: support-daily, match: {team: support}, period: day, amount_usd: 50}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "burnguard.yaml"
    path.write_text(FILE)
    return path


def test_the_most_specific_override_wins_and_the_rest_is_inherited(config_file: Path) -> None:
    cfg = load_config(config_file)
    triage = cfg.resolve("default", "support", "triage")
    assert triage.policy.autonomy is Autonomy.ACT  # workflow beats team
    assert triage.policy.kill_scope == "agent"  # from the team override
    assert triage.params["task_budget"].ceiling_usd == 2.5  # type: ignore[attr-defined]
    assert triage.params["runaway_task"].critical_factor == 6  # type: ignore[attr-defined]  # from defaults
    other = cfg.resolve("default", "support", "billing")
    assert other.policy.autonomy is Autonomy.OBSERVE
    assert other.params["task_budget"].ceiling_usd != 2.5  # type: ignore[attr-defined]
    assert cfg.resolve("default", "research", "triage").policy.kill_scope == "task"  # team does not match


def test_budgets_attach_to_exactly_the_level_they_name(config_file: Path) -> None:
    cfg = load_config(config_file)
    assert [b.name for b in cfg.budgets_for("default", "support", None)] == ["support-daily"]
    assert cfg.budgets_for("default", "support", "triage") == ()  # a team budget is not a workflow's
    assert cfg.budgets_for("default", None, None) == ()


def test_no_file_and_an_empty_file_give_the_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(None).version == load_config(empty).version == "builtin-1"


@pytest.mark.parametrize(
    ("text", "location", "message"),
    [
        ("defaults: [1, 2\n", "line 2, column 1", "not valid YAML"),
        ("- a list\n", "<root>", "not a config file: it holds a list, not a mapping of version, defaults"),
        ("defaults: {autonomy: yolo}\n", "defaults.autonomy", "'yolo' is not one of observe, advise, approve, act"),
        ("defaults: {detectors: {no_such: {}}}\n", "defaults.detectors.no_such", "unknown detector 'no_such'"),
        ("defaults: {kill_detectors: [doom]}\n", "defaults.kill_detectors", "unknown detector 'doom'; known: "),
        (
            "overrides: [{match: {team: a}, kill_detectors: [fan_uot]}]\n",
            "overrides.0.kill_detectors",
            "unknown detector 'fan_uot' (did you mean 'fan_out'?)",
        ),
        ("\x00\x01", "<file>", "not a YAML file"),
    ],
)
def test_every_error_names_where_it_is(tmp_path: Path, text: str, location: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.path == str(path)
    assert any(loc == location and message in msg for loc, msg in caught.value.errors), caught.value.errors


def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert caught.value.errors == [("<file>", "cannot read: No such file or directory")]


def test_an_override_keeps_the_bounds_of_the_knobs_it_sets(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("overrides:\n  - match: {workflow: w}\n    detectors: {runaway_task: {warn_factor: 0.5}}\n")
    with pytest.raises(ConfigError) as caught:  # it used to load, then fail when the engine resolved w
        load_config(path)
    assert caught.value.errors == [("overrides.0.detectors.runaway_task.warn_factor", "must be more than 1 (got 0.5)")]


def test_resolution_says_which_overrides_applied_in_order(config_file: Path) -> None:
    cfg = load_config(config_file)
    assert cfg.resolve("default", "support", "triage").applied == (1, 0)  # team first, then workflow
    assert cfg.resolve("default", "research", "billing").applied == ()


def test_the_detectors_that_can_kill_are_the_default_kill_detectors() -> None:
    from detectors.config import KILL_DETECTORS_DEFAULT
    from detectors.registry import KILL_CAPABLE

    assert set(KILL_DETECTORS_DEFAULT) == KILL_CAPABLE
