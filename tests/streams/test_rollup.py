"""The roll-up stage's logic without a broker: minute completeness, redelivery, order, hand-over,
and the task fleet split over four detect partitions rolled up to replay's tenant and team anomalies
and its young-runaway findings (judged over every partition's finished tasks)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from detectors.config import BurnguardConfig
from detectors.engine import Engine
from detectors.scope_spend import MinuteSpend, RolledUpTick
from schemas.timefmt import parse_ts
from streams.feed import encode_event
from streams.ordering import Mark
from streams.pipeline import DetectionPipeline, Record, Watermark, route_with_time
from streams.rollup import RollupPipeline, RollupState, parse_report, spend_reports
from streams.topics import partition_for_key
from tests.streams.rollup_fleet import fleet_replayed

BUDGET = BurnguardConfig.model_validate(
    {
        "version": "rollup-unit",
        "budgets": [
            {"name": "ops-daily", "match": {"tenant": "acme", "team": "ops"}, "period": "day", "amount_usd": 10}
        ],
    }
)
T0 = 1793577600.0  # 2026-11-02T00:00:00Z


def _minute(m: int, team: str, workflow: str, usd: float) -> MinuteSpend:
    start = T0 + 60 * m
    return (start, "acme", team, workflow, usd, usd, start + 30, [0, 0.0, 0.0, 0.0], [])


def _tick(n: int, minutes: list[MinuteSpend], first: bool = False) -> RolledUpTick:
    """Tick ``n`` (minutes after T0) of a detect engine: the minutes in ``[n - 1, n)``, lateness 0."""
    return RolledUpTick(T0 + 60 * n, float("-inf") if first else T0 + 60 * (n - 1), T0 + 60 * n, minutes)


def _state(sources: int = 2) -> RollupState:
    return RollupState(sources, Engine(BUDGET))


def _spent(state: RollupState) -> float:
    """What the ops-daily budget has counted so far (USD)."""
    team = state.engine.snapshot()["detectors"]["scope:acme\x1fops"]["burn_rate"]["state"]
    return float(team["budgets"]["ops-daily"]["spent"])


def test_a_tick_runs_only_when_every_detect_partition_has_reported_its_minutes() -> None:
    state = _state()
    state.add(0, _tick(1, [_minute(0, "ops", "a", 2.0)], first=True))
    assert state.run_ticks() == [] and state.stats.ticks == 0  # partition 1 has not said a word
    state.add(1, _tick(1, [], first=True))  # nothing to add, but its minute is complete
    state.run_ticks()
    assert state.stats.ticks == 1 and _spent(state) == 2.0
    state.add(1, _tick(2, [_minute(1, "ops", "b", 3.0)]))
    state.run_ticks()
    assert state.stats.ticks == 1 and _spent(state) == 2.0  # minute 1 of partition 0 still missing
    state.add(0, _tick(2, [_minute(1, "ops", "a", 4.0)]))
    state.run_ticks()
    assert state.stats.ticks == 2 and _spent(state) == 9.0


def test_a_redelivered_report_counts_once() -> None:
    report = spend_reports(0, [_tick(1, [_minute(0, "ops", "a", 8.0)], first=True)], 1)
    empty = spend_reports(1, [_tick(1, [], first=True)], 1)

    def deliver(values: list[tuple[int, bytes]]) -> tuple[RollupState, list[str]]:
        state = _state()
        for _, value in values:
            source, ticks = parse_report(value)
            for tick in ticks:
                state.add(source, tick)
        return state, [f"{a.anomaly_id} {a.metric} {a.severity.value}" for a in state.run_ticks()]

    once, expected = deliver([*report, *empty])
    again, got = deliver([*report, *report, *empty, *report, *empty])
    assert _spent(again) == _spent(once) == 8.0  # of the daily $10
    assert again.stats.duplicates == 3
    assert got == expected and len(expected) == 1


def test_reports_in_any_order_give_what_in_order_gives() -> None:
    ticks = {
        p: [_tick(n, [_minute(n - 1, "ops", f"w{p}", 0.5 + n * p)], first=n == 1) for n in range(1, 9)]
        for p in range(3)
    }
    in_order = _state(sources=3)
    for n in range(8):
        for p in range(3):
            in_order.add(p, ticks[p][n])
    expected = [a.anomaly_id for a in in_order.run_ticks()]
    for seed in range(5):
        shuffled = [(p, t) for p in ticks for t in ticks[p]]
        random.Random(seed).shuffle(shuffled)
        state = _state(sources=3)
        ran: list[str] = []
        for p, tick in shuffled:
            state.add(p, tick)
            ran += [a.anomaly_id for a in state.run_ticks()]
        assert ran == expected
        assert state.stats.ticks == 8 and not state.waiting and not state.minutes
        assert _spent(state) == _spent(in_order)
    assert expected  # the daily $10 was crossed


def test_a_partition_restarted_from_an_older_state_adds_only_what_is_new() -> None:
    state = _state(sources=1)
    state.add(0, _tick(1, [_minute(0, "ops", "a", 1.0)], first=True))
    state.add(0, _tick(2, [_minute(1, "ops", "a", 2.0)]))
    # the same engine from scratch: its first tick covers minutes 0-2, two of them counted already
    state.add(0, RolledUpTick(T0 + 180, float("-inf"), T0 + 180, [_minute(m, "ops", "a", m + 1.0) for m in range(3)]))
    state.run_ticks()
    assert _spent(state) == 6.0


def test_the_state_survives_a_checkpoint_and_restore() -> None:
    config = BUDGET
    whole = RollupPipeline(config, partitions=1, sources=2)
    whole.load(0, {})
    reports = [
        (0, i, v)
        for i, (_, v) in enumerate(
            spend_reports(0, [_tick(1, [_minute(0, "ops", "a", 7.5)], first=True), _tick(2, [])], 1)
            + spend_reports(1, [_tick(1, [_minute(0, "ops", "b", 1.0)], first=True)], 1)
            + spend_reports(1, [_tick(2, [_minute(1, "ops", "b", 1.0)])], 1)
        )
    ]
    expected = whole.process(reports).anomalies
    first = RollupPipeline(config, partitions=1, sources=2)
    first.load(0, {})
    before_crash = first.process(reports[:2])
    second = RollupPipeline(config, partitions=1, sources=2)
    second.load(0, before_crash.state)
    got = before_crash.anomalies + second.process(reports[1:]).anomalies  # report 1 comes again
    assert [orjson.loads(v)["anomaly_id"] for _, v in got] == [orjson.loads(v)["anomaly_id"] for _, v in expected]
    assert second.states[0].snapshot()["minutes"] == whole.states[0].snapshot()["minutes"] == []
    assert _spent(second.states[0]) == _spent(whole.states[0]) == 9.5


def test_a_record_that_is_no_report_is_set_aside() -> None:
    pipeline = RollupPipeline(BurnguardConfig(), partitions=1, sources=1)
    pipeline.load(0, {})
    result = pipeline.process([(0, 5, b"{}"), (0, 6, b"not json"), (0, 7, None)])
    assert [(p, o) for p, o, _ in result.bad] == [(0, 5), (0, 6), (0, 7)]
    assert pipeline.stats.bad_reports == 3


def _scoped(anomalies: list[dict[str, Any]], cutoff: float) -> set[tuple[Any, ...]]:
    return {
        (a["anomaly_id"], a["detector"], a["metric"], a["status"], a["severity"], a["action"], a["observed"])
        for a in anomalies
        if ("workflow" not in a["scope"] or a["detector"] == "young_runaway") and parse_ts(a["ts"]) <= cutoff
    }


def test_four_detect_partitions_rolled_up_raise_replays_tenant_and_team_anomalies(tmp_path: Path) -> None:
    """The detect pipeline as the worker runs it (4 partitions by workflow, event-time ticks driven by
    watermarks), its reports delivered shuffled and a third of them twice, both stages restarted
    from their checkpoints after every batch that raised an anomaly, against ``burnguard replay``."""
    config, events, expected, cutoff = fleet_replayed(tmp_path)

    n = 4
    tables: tuple[dict[bytes, bytes], dict[bytes, bytes]] = ({}, {})  # the two stages' changelogs

    def start() -> tuple[DetectionPipeline, RollupPipeline]:
        detect = DetectionPipeline(config, partitions=n, sources=["ev:0"], roll_up=True)
        rollup = RollupPipeline(config, partitions=n, sources=n)
        for p in range(n):
            detect.load(p, tables[0])
            rollup.load(p, tables[1])
        return detect, rollup

    stages = [start()]
    restarts = [0]
    offsets = [0] * n
    rng = random.Random(7)
    got: list[dict[str, Any]] = []

    def batch(items: list[Record | Watermark]) -> None:
        detect, rollup = stages[-1]
        tables[0].update(detect.process(items).state)
        reports: list[tuple[int, int, bytes | None]] = []
        for p, state in detect.states.items():
            ticks, state.engine.rolled_up = state.engine.rolled_up, []
            reports += [(r, 0, v) for r, v in spend_reports(p, ticks, n)]
        reports += rng.sample(reports, len(reports) // 3)  # redelivered
        rng.shuffle(reports)
        result = rollup.process(reports)
        tables[1].update(result.state)
        got.extend(orjson.loads(v) for _, v in result.anomalies)
        if len(got) > restarts[-1]:  # after a batch that raised something, both restart from their tables
            restarts.append(len(got))
            stages.append(start())

    def mark(ts: float, upto: int, idle: bool = False) -> list[Record | Watermark]:
        # as the ingest's: vouching for every source record up to ``upto`` (streams.ordering)
        marks: list[Record | Watermark] = []
        for p in range(n):
            marks.append(Watermark(p, offsets[p], {"ev:0": Mark(ts, idle, upto)}))
            offsets[p] += 1
        return marks

    items: list[Record | Watermark] = []
    for offset, ev in enumerate(events):
        value = encode_event(ev)[1]
        key, _, ts = route_with_time(value)
        assert key is not None
        p = partition_for_key(key, n)
        items.append(Record(key, value, p, offsets[p], ("ev", 0, offset), ts))
        offsets[p] += 1
        if len(items) >= 200:
            batch(items + mark(ev["ts"], offset))
            items = []
    batch(items + mark(events[-1]["ts"], len(events) - 1, idle=True))

    want = _scoped(expected, cutoff)
    assert {(a[2], len(a[0]) > 0) for a in want} >= {("burn_usd_per_hour", True), ("budget_spent_fraction", True)}
    # a young workflow's task judged by its team's tasks on every partition: fired, then escalated
    young = [a for a in want if a[1] == "young_runaway"]
    assert {(a[3], a[4]) for a in young} >= {("firing", "warning"), ("firing", "critical")}
    assert {"tenant"} in [set(a["scope"]) for a in expected if "workflow" not in a["scope"]]
    assert _scoped(got, cutoff) == want
    assert len(stages) > 5
