"""The demo's claim, checked: every injected incident is detected, no kill is wrong, kills save money.

One 48-hour simulated fleet (the demo's default) runs through the engine in ``act`` autonomy, with
killed tasks halted as their runtime would; each incident type is then its own scenario test. Then
``burnguard demo`` as a user runs it: ``--out`` and ``--alerts`` get everything the engine emitted,
``--config`` scores another configuration. (What the live view looks like: test_demo_pty.py.)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from burnguard.cli import app
from burnguard.demo import DemoRun, simulate_and_detect
from burnguard.scorecard import IncidentScore, Scorecard, _duration, incident_name
from detectors.config import Autonomy

KINDS = ("runaway_loop", "retry_storm", "routing_regression", "traffic_flood", "subagent_explosion", "zombie_task")
#: the detectors that should be the ones to notice each kind of incident
EXPECTED_DETECTORS = {
    "runaway_loop": {"runaway_task", "task_budget"},
    "retry_storm": {"retry_rate"},
    "routing_regression": {"cost_shift"},
    "traffic_flood": {"burn_rate"},
    "subagent_explosion": {"fan_out"},
    "zombie_task": {"stale_task", "runaway_task"},
}
KILLED = {"runaway_loop", "subagent_explosion", "zombie_task"}


@pytest.fixture(scope="module", name="demo")
def _demo() -> tuple[DemoRun, Scorecard]:
    return simulate_and_detect(hours=48.0, seed=7, autonomy=Autonomy.ACT)


@pytest.fixture(scope="module", name="card")
def _card(demo: tuple[DemoRun, Scorecard]) -> Scorecard:
    return demo[1]


def _score(card: Scorecard, kind: str) -> IncidentScore:
    (score,) = [s for s in card.incidents if s.incident.kind == kind]
    return score


def test_the_demo_injects_every_incident_type(card: Scorecard) -> None:
    assert sorted(s.incident.kind for s in card.incidents) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_incident_is_detected_by_the_detector_made_for_it(card: Scorecard, kind: str) -> None:
    score = _score(card, kind)
    assert score.detected, f"{kind} was missed"
    assert score.detectors & EXPECTED_DETECTORS[kind], f"{kind} seen only by {score.detectors}"
    assert score.delay_s is not None and score.delay_s < 3600


@pytest.mark.parametrize("kind", sorted(KILLED))
def test_task_incidents_are_halted_early_enough_to_save_most_of_the_money(card: Scorecard, kind: str) -> None:
    score = _score(card, kind)
    assert score.kill is not None, f"{kind} was not killed"
    without = score.incident.cost_without_kill_usd
    assert without is not None and score.spent_usd is not None
    assert score.spent_usd < 0.2 * without, f"{kind}: spent ${score.spent_usd:.2f} of ${without:.2f}"


def test_no_false_kill_and_few_false_alerts(card: Scorecard) -> None:
    assert card.false_kills == []
    assert len(card.false_alerts) <= 25, [a.summary for a in card.false_alerts]
    assert card.ok


def test_the_resolutions_of_killed_tasks_are_among_what_the_engine_emitted(demo: tuple[DemoRun, Scorecard]) -> None:
    run, _ = demo
    resolved = {a.anomaly_id for a in run.anomalies if a.status.value == "resolved"}
    kills = [a for a in run.anomalies if a.action.value == "kill"]
    assert len(kills) == 3 and all(a.anomaly_id in resolved for a in kills)


_PANEL = re.compile(
    r"\[(?P<state>[A-Z]+)\] (?P<what>[^\n]*?) ─.*?would send +(?P<send>[^│]*?) *│.*?dedup key +(?P<key>\S+)", re.S
)


def test_out_and_the_alert_preview_get_everything_the_engine_emitted(
    demo: tuple[DemoRun, Scorecard], tmp_path: Path
) -> None:
    run, _ = demo
    out = tmp_path / "anomalies.jsonl"
    result = CliRunner().invoke(
        app, ["demo", "--pace", "0", "--alerts", "--out", str(out)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    # every state the engine emitted, in order: the kills' resolutions and the last ones included
    assert [(w["anomaly_id"], w["status"], w["severity"]) for w in written] == [
        (a.anomaly_id, a.status.value, a.severity.value) for a in run.anomalies
    ]
    assert sum(w["status"] == "firing" for w in written) == run.engine.stats.anomalies
    open_at_end = {(w["scope"].get("workflow"), w["detector"]) for w in written if w["status"] == "firing"} - {
        (w["scope"].get("workflow"), w["detector"]) for w in written if w["status"] == "resolved"
    }

    panels = list(_PANEL.finditer(result.output))
    assert len(panels) == int(re.search(r"(\d+) notifications would have been sent", result.output).group(1))  # type: ignore[union-attr]
    pages: dict[str, list[str]] = {}
    for p in panels:
        if "PagerDuty" not in p["send"]:
            assert p["key"].startswith("burnguard/slack/"), p.group(0)
            continue
        # PagerDuty hears of critical findings only: their trigger, reminders while still firing, the resolve
        assert p["state"] in ("CRITICAL", "RESOLVED") and p["key"].startswith("burnguard/pagerduty/"), p.group(0)
        step = "resolve" if "PagerDuty resolve" in p["send"] else "reminder" if "reminder" in p["send"] else "trigger"
        pages.setdefault(p["key"], []).append(step)
    # the three kills, the retry storm, the flood, the regression: on-call is paged for the incidents
    # and nothing else, once each
    assert sorted(k.split("/")[2] for k in pages) == [
        "code-fix", "lead-enrichment", "pr-review", "research-assistant", "sql-analyst", "support-triage"
    ]
    still = re.search(r"Still firing when the fleet ended \(no resolve sent yet\): (.*)", result.output)
    still_keys = set(still.group(1).split(", ")) if still else set()
    for key, steps in pages.items():
        assert steps[0] == "trigger" and steps.count("trigger") == 1, (key, steps)  # no duplicate trigger
        assert "resolve" not in steps[:-1], (key, steps)  # nothing after the resolve
        if key in still_keys:
            assert any(f"/{wf}/{det}/" in key for wf, det in open_at_end), (key, open_at_end)
        else:
            assert steps[-1] == "resolve", (key, steps)  # every page is resolved
    for kill in (a for a in run.anomalies if a.action.value == "kill"):
        assert any(f"/{kill.scope['workflow']}/{kill.detector}/" in k for k in pages), kill.summary


def test_demo_config_scores_another_configuration(tmp_path: Path) -> None:
    config = tmp_path / "no-burn-rate.yaml"
    config.write_text("defaults:\n  autonomy: advise\n  detectors:\n    burn_rate: {enabled: false}\n")
    result = CliRunner().invoke(
        app, ["demo", "--pace", "0", "--hours", "30", "--config", str(config)], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 1, result.output  # the traffic flood, seen by burn_rate alone, is missed
    assert re.search(r"traffic flood[^\n]*│ MISSED", result.output), result.output
    assert "autonomy from the config" in result.output and "\n0 kills:" in result.output  # the file's autonomy
    assert "an incident was missed" in result.output


def test_demo_config_that_does_not_load_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("defaults:\n  autonomy: sometimes\n")
    result = CliRunner().invoke(app, ["demo", "--pace", "0", "--config", str(config)])
    assert result.exit_code == 2 and "autonomy" in result.output and "Traceback" not in result.output


_README = Path(__file__).resolve().parents[2] / "README.md"
_WORDS = {0: "no", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def test_the_readme_tells_what_the_demo_prints(card: Scorecard) -> None:
    text = " ".join(_README.read_text().split())
    for s in card.incidents:  # the scorecard table, row by row
        detectors = ", ".join(sorted(s.detectors))
        action = "killed" if s.kill else "alerted"
        assert s.delay_s is not None
        row = f"| {incident_name(s.incident)} | {detectors} | {_duration(s.delay_s)} | {action} |"
        assert row in text, row
    assert f"No false kill; {len(card.false_alerts)} false alerts over the 48 hours" in text
    counts = Counter(a.detector for a in card.false_alerts)
    account = text.split("false alerts over the 48 hours", 1)[1].split("## ", 1)[0]
    for detector, phrase in (("burn_rate", "burn-rate finding"), ("runaway_task", "runaway warning"),
                             ("cost_shift", "cost-shift"), ("retry_rate", "retry-rate")):
        assert f"{_WORDS[counts[detector]]} {phrase}" in account, (detector, counts[detector])
    assert sum(counts.values()) == counts["burn_rate"] + counts["runaway_task"] + counts["cost_shift"] + counts[
        "retry_rate"
    ], counts
