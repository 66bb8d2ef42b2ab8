"""Money that would count as $0 in silence: a step's cost sent under a name the contract does not
read (``cost``, ``usd``, ``price``, ...), noticed once per name by replay, the engine and the
worker's report; and the hint about milliseconds, given only where it can be true."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from burnguard.cli import app
from detectors.config import BurnguardConfig
from schemas.events import MISNAMED_COST_FIELDS
from streams.pipeline import DetectionPipeline, Record, route
from streams.topics import partition_for_key
from streams.worker_report import log_worker_report
from tests.factory import T0, event

runner = CliRunner()


def misnamed_fleet() -> list[dict[str, Any]]:
    """One task whose tool steps send `cost` (3) and `price` (1), one step with both `cost` and
    `cost_usd` (read: not misnamed), and a model step priced from its tokens that also sends `usd`."""
    evs = [event("task_started", "t1", T0)]
    evs += [event("step", "t1", T0 + 1 + i, category="tool", name="search", cost=0.4) for i in range(3)]
    evs.append(event("step", "t1", T0 + 5, category="tool", name="search", price=0.25))
    evs.append(event("step", "t1", T0 + 6, category="tool", name="search", cost=0.4, cost_usd=0.4))
    evs.append(
        event("step", "t1", T0 + 7, category="model", name="gpt-4o-mini", input_tokens=1000, output_tokens=10, usd=1)
    )
    evs.append(event("task_finished", "t1", T0 + 8, outcome="success"))
    return evs


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def test_replay_notices_each_misnamed_cost_field_once_with_its_step_count(tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "events.jsonl", misnamed_fleet())
    out = tmp_path / "anomalies.jsonl"
    result = runner.invoke(app, ["replay", str(events), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    notice = "3 steps carry `cost` but no `cost_usd`: their cost counts as $0 unless priced from tokens"
    assert text.count(notice) == 1, text
    assert text.count("1 step carries `price` but no `cost_usd`") == 1, text
    assert text.count("1 step carries `usd` but no `cost_usd`") == 1, text
    assert "rename the field to cost_usd" in text
    anomalies = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    notices = [a for a in anomalies if a["detector"] == "misnamed_cost"]
    # one episode per workflow: the first name found opens it (the summary names every one)
    assert [(n["status"], n["severity"], n["evidence"]["field"]) for n in notices] == [("firing", "warning", "cost")]


def test_a_step_with_cost_usd_and_a_stray_cost_field_is_not_noticed(tmp_path: Path) -> None:
    evs = [event("task_started", "t1", T0), event("step", "t1", T0 + 1, category="tool", cost=1, cost_usd=1)]
    result = runner.invoke(app, ["replay", str(write_jsonl(tmp_path / "e.jsonl", evs)), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "but no `cost_usd`" not in result.output


def test_the_worker_report_warns_once_per_misnamed_field(caplog: pytest.LogCaptureFixture) -> None:
    pipe = DetectionPipeline(BurnguardConfig(), partitions=2, clock=lambda: T0)
    for p in (0, 1):
        pipe.load(p, {})
    records = []
    for offset, ev in enumerate(misnamed_fleet()):
        key, reason = route(orjson.dumps(ev))
        assert key is not None, reason
        records.append(Record(key, orjson.dumps(ev), partition_for_key(key, 2), offset, ("events", 0, offset)))
    result = pipe.process(records)
    assert [orjson.loads(v)["detector"] for _, v in result.anomalies].count("misnamed_cost") == 1
    with caplog.at_level(logging.INFO, logger="burnguard.streams"):
        log_worker_report(pipe, None)
        log_worker_report(pipe, None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "3 steps carry `cost` but no `cost_usd`: their cost counts as $0 unless priced from tokens "
        "(rename the field to cost_usd)",
        "1 step carries `price` but no `cost_usd`: its cost counts as $0 unless priced from tokens "
        "(rename the field to cost_usd)",
        "1 step carries `usd` but no `cost_usd`: its cost counts as $0 unless priced from tokens "
        "(rename the field to cost_usd)",
    ]


def test_the_misnamed_fields_are_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for name in MISNAMED_COST_FIELDS:
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize(
    ("ts", "hinted"),
    [
        (T0 * 1000, True),  # milliseconds sent as seconds
        ("1999-12-31T23:00:00Z", False),  # a date string: milliseconds cannot be its mistake
        (12, False),  # a number too small: neither
    ],
)
def test_the_milliseconds_hint_is_given_only_to_a_number_it_fits(tmp_path: Path, ts: Any, hinted: bool) -> None:
    evs = [event("task_started", "t1", T0), event("step", "t1", ts, category="tool", cost_usd=0.1)]
    result = runner.invoke(app, ["replay", str(write_jsonl(tmp_path / "e.jsonl", evs)), "--out", str(tmp_path / "a")])
    text = " ".join(result.output.split())
    assert "line 2 rejected: ts: Value error, time" in text and "is outside 2000-01-01..2100-01-01" in text, text
    assert ("milliseconds sent as seconds?" in text) is hinted, text
    if isinstance(ts, str):
        assert repr(ts) in text  # the time as sent, not its epoch seconds


def test_misnamed_fields_stay_out_of_the_contract_schema_and_of_dumps() -> None:
    from schemas.events import CostEvent

    schema = CostEvent.model_json_schema(by_alias=True, mode="validation")
    assert not set(MISNAMED_COST_FIELDS) & set(schema["properties"])
    ev = CostEvent.model_validate(event("step", "t1", T0, category="tool", usd=3))
    assert ev.misnamed_cost == ("usd",)
    assert "usd" not in ev.model_dump(by_alias=True) and "carries" not in repr(ev)
