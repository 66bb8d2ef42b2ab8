"""The pipeline's state hand-over without a broker: engine parts, checkpoints, redelivery, chunks."""

from __future__ import annotations

import doctest
import importlib
from typing import Any

import orjson
import pytest

from detectors.config import BurnguardConfig
from detectors.engine import Engine
from detectors.ledger import TaskState
from streams.pipeline import DetectionPipeline, Record, route, source_header
from streams.settings import SettingsError, StreamSettings
from streams.state import decode_entries, encode_entry, merge_snapshots, workflow_key
from streams.topics import partition_for_key
from tests.factory import T0, task_events

CONFIG = BurnguardConfig.model_validate(
    {"version": "state-test", "defaults": {"autonomy": "act", "detectors": {"runaway_task": {"min_samples": 5}}}}
)


def fleet() -> list[dict[str, Any]]:
    """Two workflows: normal tasks, then in each a task that runs away and one left running."""
    evs: list[dict[str, Any]] = []
    for wf in ("alpha", "beta"):
        for i in range(8):
            evs += task_events(f"{wf}-{i}", T0 + 100 * i, steps=4, cost_per_step=0.02, workflow=wf, budget_usd=1.0)
        evs += task_events(f"{wf}-big", T0 + 900, steps=30, cost_per_step=0.05, workflow=wf, budget_usd=1.0)
        evs += task_events(f"{wf}-open", T0 + 950, steps=3, workflow=wf, finish=False)
    return sorted(evs, key=lambda e: e["ts"])


def view(anomalies: list[Any]) -> list[tuple[Any, ...]]:
    return [(a.anomaly_id, a.status.value, a.severity.value, a.observed) for a in anomalies]


@pytest.mark.parametrize("module", ["dlq", "pipeline", "settings", "state", "topics", "feed"])
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"streams.{module}"))
    assert result.failed == 0


def test_engine_restored_from_shared_and_workflow_parts_continues_like_the_original() -> None:
    events = fleet()
    cut = len(events) * 2 // 3
    original = Engine(CONFIG, clock=lambda: T0)
    for ev in events[:cut]:
        original.process_obj(ev)
    keys = [("acme", "team-a", "alpha"), ("acme", "team-a", "beta")]
    shared = orjson.loads(orjson.dumps(original.snapshot_shared(keep_ids=10_000)))
    parts = [orjson.loads(orjson.dumps(original.snapshot_workflow(k))) for k in keys]
    assert all(p["tasks"] for p in parts) and not shared["tasks"]
    restored = Engine(CONFIG, clock=lambda: T0)
    restored.restore(merge_snapshots(shared, parts))
    assert restored.live_tasks == original.live_tasks

    rest_a, rest_b = [], []
    for ev in events[cut:]:
        rest_a += original.process_obj(ev)[0]
        rest_b += restored.process_obj(ev)[0]
    assert view(rest_a) == view(rest_b)
    assert {a.detector for a in rest_a} >= {"runaway_task", "task_budget"}  # learned baselines carried over


def test_on_task_finished_sees_the_final_totals() -> None:
    engine = Engine(CONFIG)
    finished: list[TaskState] = []
    engine.on_task_finished = finished.append
    for ev in task_events("t", T0, steps=3, cost_per_step=0.25):
        engine.process_obj(ev)
    assert [(t.root_task_id, t.cost_usd, t.steps, t.outcome) for t in finished] == [("t", 0.75, 3, "success")]


def records(events: list[dict[str, Any]], partitions: int) -> list[Record]:
    out = []
    for offset, ev in enumerate(events):
        key, reason = route(orjson.dumps(ev))
        assert key is not None, reason
        out.append(Record(key, orjson.dumps(ev), partition_for_key(key, partitions), offset, ("events", 0, offset)))
    return out


def test_a_restarted_pipeline_skips_what_its_checkpoint_holds_even_without_dedup_ids() -> None:
    recs = records(fleet(), partitions=2)
    first = DetectionPipeline(CONFIG, partitions=2, dedup_keep=0, max_value_bytes=4096, clock=lambda: T0)
    for p in (0, 1):
        first.load(p, {})
    half = len(recs) // 2
    table: dict[bytes, bytes] = {}
    result = first.process(recs[:half])
    table.update(result.state)
    assert all(len(v) <= 4096 for v in table.values())  # chunked below the limit

    # a crash: everything after the checkpoint is redelivered, including the first half again
    second = DetectionPipeline(CONFIG, partitions=2, dedup_keep=0, max_value_bytes=4096, clock=lambda: T0)
    for p in (0, 1):
        second.load(p, table)
    again = second.process(recs)
    assert second.stats.redelivered == half
    assert second.stats.events == len(recs) - half

    # the same as one pipeline that never crashed
    reference = DetectionPipeline(CONFIG, partitions=2, clock=lambda: T0)
    for p in (0, 1):
        reference.load(p, {})
    whole = reference.process(recs)
    assert sorted(result.anomalies + again.anomalies) == sorted(whole.anomalies)
    assert sorted(result.summaries + again.summaries) == sorted(whole.summaries)
    summaries = {orjson.loads(v)["root_task_id"]: orjson.loads(v) for _, v in whole.summaries}
    assert summaries["alpha-big"]["cost_usd"] == pytest.approx(1.5)


def test_rejected_and_failing_records_become_dead_letters_with_their_source() -> None:
    pipe = DetectionPipeline(CONFIG, partitions=1, clock=lambda: T0)
    pipe.load(0, {})
    bad = orjson.dumps({"event_id": "x", "ts": T0, "kind": "step", "team": "t", "workflow": "w", "task_id": "a"})
    result = pipe.process([Record(b"k", bad, 0, 5, ("agent-cost-events", 2, 41))])
    [(_, value)] = result.dead_letters
    letter = orjson.loads(value)
    where = (letter["topic"], letter["partition"], letter["offset"], letter["stage"])
    assert where == ("agent-cost-events", 2, 41, "detect")
    assert "category" in letter["reason"] and letter["value_text"] == bad.decode()
    assert pipe.stats.dead_letters == 1 and result.state  # the partition is still checkpointed


def test_big_values_are_chunked_and_joined() -> None:
    key = workflow_key("acme", "team-a", "wf")
    value = orjson.dumps({"kind": "workflow", "blob": "x" * 10_000})
    writes = encode_entry(key, value, partition_for_key(key, 4), 4, limit=1024)
    assert len(writes) == 11 and all(len(v) <= 1024 for v in writes.values())
    assert {partition_for_key(k, 4) for k in writes} == {partition_for_key(key, 4)}
    assert decode_entries(writes) == {key: orjson.loads(value)}


def test_route_and_source_header() -> None:
    assert route(b'{"tenant": "a", "team": "b", "workflow": "c"}') == (b'["a","b","c"]', None)
    key, reason = route(b'{"team": 3, "workflow": "c"}')
    assert key is None and reason is not None and "team" in reason
    assert source_header("t", 1, 2) == b"t:1:2"


def test_settings_from_the_environment_keep_secrets_out_of_repr(tmp_path: Any) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = StreamSettings.from_env(
        {
            "BURNGUARD_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
            "BURNGUARD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
            "BURNGUARD_KAFKA_SASL_USERNAME": "bg",
            "BURNGUARD_KAFKA_SASL_PASSWORD_FILE": str(secret),
        },
        web_port=7000,
    )
    assert s.sasl_password == "s3cret" and "s3cret" not in repr(s) and "s3cret" not in s.describe()
    assert s.aiokafka_kwargs()["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (s.web_host, s.web_port) == ("127.0.0.1", 7000)
    with pytest.raises(SettingsError, match="BURNGUARD_KAFKA_SASL_USERNAME"):
        StreamSettings.from_env({"BURNGUARD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    with pytest.raises(SettingsError, match="BURNGUARD_PARTITIONS"):
        StreamSettings.from_env({"BURNGUARD_PARTITIONS": "zero"})


def test_an_exception_in_the_engine_is_a_dead_letter_not_a_dead_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = DetectionPipeline(CONFIG, partitions=1, clock=lambda: T0)
    state = pipe.load(0, {})

    def explode(event: Any, **_: Any) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(state.engine, "process", explode)
    good = [Record(b"k", orjson.dumps(ev), 0, i, ("events", 1, 100 + i)) for i, ev in enumerate(task_events("t", T0))]
    result = pipe.process(good[:2])
    assert [orjson.loads(v)["reason"] for _, v in result.dead_letters] == [
        "internal error while processing: RuntimeError: boom"
    ] * 2
    assert [orjson.loads(v)["offset"] for _, v in result.dead_letters] == [100, 101]
    monkeypatch.undo()
    pipe.process(good[2:])  # the pipeline goes on with the next records
    assert pipe.stats.errors == 2 and pipe.stats.events == len(good) - 2
