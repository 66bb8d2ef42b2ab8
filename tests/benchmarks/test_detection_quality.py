"""``benchmarks/detection_quality.py --quick`` end to end: the tables, a JSON of every number, and
figures that say something (a spliced runaway in a mature workflow is found and killed; the real
trace alone kills nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tests.benchmarks._paths  # noqa: F401  (puts benchmarks/ on the path)

import detection_quality  # isort: skip


def test_quick_prints_the_tables_and_writes_every_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "quality.json"
    detection_quality.main(["--quick", "--json", str(out)])
    text = capsys.readouterr().out
    for title in ("Incidents by kind — tuning", "Incidents by kind — held-out", "Per detector — tuning",
                  "Per detector — held-out", "Incidents explained per detector", "Real trace alone", "Targets"):
        assert title in text, title
    assert "runaway_loop (young)" in text and "runaway_loop (mature)" in text  # cohorts printed, not eaten as markup
    numbers = json.loads(out.read_text())
    assert {"corpus", "splits", "real_alone", "items", "targets", "quick"} <= set(numbers)
    assert numbers["quick"] is True
    families = {(i["split"], i["family"]) for i in numbers["corpus"]}
    assert {("tuning", "fleet"), ("held-out", "fleet"), ("tuning", "real"), ("held-out", "real"),
            ("tuning", "metered"), ("held-out", "metered"), ("real-alone", "real")} <= families
    for split in ("tuning", "held-out"):
        data = numbers["splits"][split]
        assert data["tasks"] > 0 and data["detectors"]["total"]["incidents"] > 0
        assert set(data["detectors"]["total"]) >= {
            "incidents_explained", "delay_p50_s", "delay_p95_s", "false_episodes", "false_episodes_per_10k_tasks",
            "false_kills", "collateral_kills",
        }
        mature = data["kinds"]["real: runaway_loop (mature)"]
        assert mature["detected"] == mature["incidents"] == 1 and mature["killed"] == 1
        assert 0 < mature["spent_share_max"] < 1
        assert sum(d["explained"] for d in mature["by_detector"].values()) >= 1
        assert {"fleet: retry_storm", "fleet: traffic_flood", "metered: metered_spike"} <= set(data["kinds"])
    real = numbers["real_alone"]
    assert real["tasks"] == 500 and real["kills"] == 0 and real["alerts"] == len(real["alert_lines"])
