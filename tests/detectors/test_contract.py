"""One contract over every detector, run through the engine (River's ``test_estimators`` idea).

Each detector contributes a scenario — normal warm-up data of one workflow, then one 10x anomaly —
in ``scenarios_a.py`` / ``scenarios_b.py``. For every detector the engine must be deterministic,
survive a snapshot/restore mid-stream, stay silent (no critical) while the baseline warms up, flag
the spike, and not learn from its own anomalies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from detectors.engine import Engine
from detectors.registry import PARAMS
from schemas.anomaly import Anomaly, AnomalyStatus, Severity
from tests.detectors import scenarios_a, scenarios_b

Scenario = Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]]
SCENARIOS: dict[str, Scenario] = dict(scenarios_a.SCENARIOS + scenarios_b.SCENARIOS)
LEARNED = {"runaway_task", "cost_shift", "retry_rate", "burn_rate", "fan_out", "stale_task", "young_runaway"}


def _run(events: list[dict[str, Any]], engine: Engine | None = None) -> tuple[Engine, list[Anomaly]]:
    engine = engine or Engine(clock=lambda: 1.8e9)
    out: list[Anomaly] = []
    for ev in events:
        anomalies, reason = engine.process_obj(ev)
        assert reason is None, reason
        out.extend(anomalies)
    return engine, out


def _finish(engine: Engine, events: list[dict[str, Any]]) -> list[Anomaly]:
    last = max(float(e["ts"]) for e in events)
    return engine.advance_to(last + engine.config.lateness_s + 3600)


def _view(anomalies: list[Anomaly]) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json", exclude={"detected_at"}) for a in anomalies]


def _shift(events: list[dict[str, Any]], dt: float, tag: str) -> list[dict[str, Any]]:
    """The same events ``dt`` seconds later with fresh ids (another occurrence of the anomaly)."""
    out = []
    for ev in events:
        ev = dict(ev)
        ev["ts"] = float(ev["ts"]) + dt
        for key in ("event_id", "task_id", "root_task_id", "parent_task_id"):
            if ev.get(key):
                ev[key] = f"{ev[key]}~{tag}"
        out.append(ev)
    return out


def test_every_registered_detector_has_a_contract_scenario() -> None:
    assert set(SCENARIOS) == set(PARAMS)
    assert set(PARAMS) - LEARNED == {"task_budget"}  # the one hard rule: no baseline, no warm-up


@pytest.fixture(params=sorted(SCENARIOS), name="scenario")
def _scenario(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    warmup, spike = SCENARIOS[request.param]()
    return request.param, warmup, spike


def test_flags_a_10x_spike(scenario: tuple[str, list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    name, warmup, spike = scenario
    engine, _ = _run(warmup)
    _, found = _run(spike, engine)
    found += _finish(engine, warmup + spike)
    fired = [a for a in found if a.detector == name and a.status is AnomalyStatus.FIRING]
    assert fired, f"{name} did not flag its 10x spike"


def test_deterministic(scenario: tuple[str, list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    _, warmup, spike = scenario
    runs = []
    for _ in range(2):
        engine, out = _run(warmup + spike)
        runs.append(_view(out + _finish(engine, warmup + spike)))
    assert runs[0] == runs[1]


def test_snapshot_restore_round_trip(
    scenario: tuple[str, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    _, warmup, spike = scenario
    events = warmup + spike
    whole_engine, whole = _run(events)
    whole += _finish(whole_engine, events)

    cut = len(warmup) - len(warmup) // 4
    first_engine, first = _run(events[:cut])
    state = orjson.loads(orjson.dumps(first_engine.snapshot()))  # through bytes, as a table would hold it
    second_engine = Engine(clock=lambda: 1.8e9)
    second_engine.restore(state)
    _, second = _run(events[cut:], second_engine)
    second += _finish(second_engine, events)
    assert _view(first + second) == _view(whole)


@pytest.mark.parametrize("name", sorted(LEARNED))
def test_learned_detector_is_silent_during_warm_up(name: str) -> None:
    warmup, spike = SCENARIOS[name]()
    first_ts = min(float(e["ts"]) for e in warmup)
    engine, found = _run(_shift(spike, first_ts - min(float(e["ts"]) for e in spike), "early"))
    found += _finish(engine, spike)
    assert not [a for a in found if a.detector == name], f"{name} fired before its baseline had min_samples"


def test_does_not_learn_from_its_own_anomalies(
    scenario: tuple[str, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    name, warmup, spike = scenario
    engine, _ = _run(warmup)
    span = max(float(e["ts"]) for e in spike) - min(float(e["ts"]) for e in spike) + 3600
    last_fired: list[Anomaly] = []
    for i in range(6):
        repeated = _shift(spike, i * span, f"r{i}")
        _, found = _run(repeated, engine)
        found += _finish(engine, repeated)
        last_fired = [a for a in found if a.detector == name and a.status is AnomalyStatus.FIRING]
    assert last_fired, f"{name} stopped flagging the spike after seeing it 5 times: it learned its anomalies"
    assert any(a.severity in (Severity.WARNING, Severity.CRITICAL) for a in last_fired)


def test_only_the_detectors_said_to_kill_ever_kill(
    scenario: tuple[str, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    """``config validate`` warns that naming another detector in ``kill_detectors`` has no effect:
    with every detector allowed to kill, in ``act``, a kill comes only from ``KILL_CAPABLE``."""
    from detectors.config import BurnguardConfig
    from detectors.registry import KILL_CAPABLE

    name, warmup, spike = scenario
    config = BurnguardConfig.model_validate({"defaults": {"autonomy": "act", "kill_detectors": list(PARAMS)}})
    engine, found = _run(warmup, Engine(config=config, clock=lambda: 1.8e9))
    _, more = _run(spike, engine)
    found += more + _finish(engine, warmup + spike)
    killers = {a.detector for a in found if a.action.value == "kill"}
    assert killers <= KILL_CAPABLE, killers - KILL_CAPABLE
    if name in ("task_budget", "runaway_task"):
        assert name in killers  # the scenario's spike is critical: the test can see a kill


MONEY = {"cost_shift", "runaway_task", "burn_rate", "task_budget", "retry_rate"}


@pytest.mark.parametrize("name", sorted(MONEY))
def test_a_finding_about_money_states_the_money_at_stake(name: str) -> None:
    warmup, spike = SCENARIOS[name]()
    engine, found = _run(warmup + spike)
    found += _finish(engine, warmup + spike)
    fired = [a for a in found if a.detector == name and a.status is AnomalyStatus.FIRING]
    assert fired
    for a in fired:
        usd = a.evidence.get("usd_at_stake")
        assert isinstance(usd, int | float) and usd >= 0 and round(usd, 2) == usd, (name, usd)
    assert any(a.evidence["usd_at_stake"] > 0 for a in fired), name  # a 10x spike puts money at stake


def test_every_finding_states_the_money_at_stake(
    scenario: tuple[str, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    """Issue 11: an alert states money at stake first — ``evidence.usd_at_stake``, USD, never negative."""
    name, warmup, spike = scenario
    engine, _ = _run(warmup)
    _, found = _run(spike, engine)
    found += _finish(engine, warmup + spike)
    fired = [a for a in found if a.detector == name and a.status is AnomalyStatus.FIRING]
    assert fired
    for a in fired:
        stake = a.evidence.get("usd_at_stake")
        assert isinstance(stake, float) and stake >= 0, (name, a.metric, stake)
