"""The kill switch end to end on the real broker: a ``burnguard worker`` subprocess signs kill
commands (act), publishes proposals that ``burnguard kill approve|deny`` decides (approve), sends
nothing (advise), closes the loop on acks with the time to halt, and escalates a kill nobody acks.
The tests play the agents' listeners: they read commands and produce ``KillAck`` s themselves.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.killswitch import KillAck, KillCommand, KillMode
from schemas.timefmt import parse_ts
from streams.killswitch_records import ESCALATION_DETECTOR, escalation_id
from tests.factory import task_events
from tests.streams.conftest import (
    BURNGUARD,
    REPO,
    Names,
    WorkerProcess,
    produce,
    produce_events,
    read_all,
    read_until,
    values,
    wait_drained,
)
from tests.streams.kill_names import TEST_KILL_KEY, KillTopics

pytestmark = pytest.mark.kafka
KEY = TEST_KILL_KEY.encode()


def config(tmp_path: Path, autonomy: str) -> Path:
    path = tmp_path / f"burnguard-{autonomy}.yaml"
    path.write_text(f'version: "kill-test-1"\ndefaults:\n  autonomy: {autonomy}\n')
    return path


def runaways(start: float, *tasks: str) -> list[dict[str, Any]]:
    """Two normal tasks, then each of ``tasks`` runs through its $0.50 budget and keeps going: no
    ``task_finished`` (the agent is still burning money when the kill goes out)."""
    evs: list[dict[str, Any]] = []
    for i in range(2):
        evs += task_events(f"ok-{i}", start + 20 * i, steps=4, cost_per_step=0.02, budget_usd=1.0, workflow="support")
    for i, task in enumerate(tasks):
        evs += task_events(
            task, start + 60 + i, steps=10, cost_per_step=0.08, budget_usd=0.5, finish=False, workflow="support"
        )
    return sorted(evs, key=lambda e: e["ts"])


def commands_of(records: list[Any]) -> list[KillCommand]:
    return [KillCommand.model_validate_json(r.value) for r in records]


def kill_anomalies(anomalies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        a
        for a in anomalies
        if a["status"] == "firing" and a["detector"] == "task_budget" and a["severity"] == "critical"
    ]


async def drained(names: Names, worker: WorkerProcess) -> None:
    """Every event and every kill record so far processed by the worker (its outputs are on their topics)."""
    topics = [names.events, names.internal, KillTopics.of(names).internal]
    await wait_drained(names.bootstrap, names.app_id, topics, timeout_s=120, workers=[worker])


def assert_key_never_logged(worker: WorkerProcess) -> None:
    worker.stop()
    text = worker.log.read_text(errors="replace")
    assert "kill switch:" in text or "kill " in text  # the log did record the kill switch's work
    assert TEST_KILL_KEY not in text


async def test_act_signs_one_command_per_runaway_acks_close_the_loop_and_silence_escalates(
    names: Names, start_worker: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    env = names.env(BURNGUARD_KILL_ACK_DEADLINE_S="15")
    worker = start_worker(env, ["--config", str(config(tmp_path, "act"))])
    start = time.time() - 120  # recent event times: the time to halt is measured from them
    await produce_events(names.bootstrap, names.events, runaways(start, "runaway-acked", "runaway-silent"))

    records = await read_until(
        names.bootstrap, KillTopics.of(names).killswitch, lambda rs: len(rs) >= 2, timeout_s=120, worker=worker
    )
    by_task = {str(c.target.root_task_id): (c, r.key) for c, r in zip(commands_of(records), records, strict=True)}
    assert sorted(by_task) == ["runaway-acked", "runaway-silent"]
    acked, _ = by_task["runaway-acked"]
    # the listener's half: it verifies with the shared key, and only with it, then halts and acks
    now = time.time()
    for command, key in by_task.values():
        assert command.mode is KillMode.AUTONOMOUS and command.target.scope.value == "task"
        assert key == command.target.root_task_id.encode()  # type: ignore[union-attr]
        assert command.verify([KEY], now) is None
        assert command.verify([b"another-key"], now) == "bad signature"
        assert command.verify([b"another-key", KEY], now) is None  # rotation: any listed key verifies
        assert command.expires_at - command.issued_at == pytest.approx(600.0)
    halted_at = time.time()
    ack = KillAck(command_id=acked.command_id, halted_at=halted_at, halted_by="test-listener/1")
    await produce(
        names.bootstrap,
        KillTopics.of(names).acks,
        [(acked.command_id.encode(), ack.model_dump_json(by_alias=True).encode())],
    )
    # a redelivered ack changes nothing
    await produce(
        names.bootstrap,
        KillTopics.of(names).acks,
        [(acked.command_id.encode(), ack.model_dump_json(by_alias=True).encode())],
    )

    silent, _ = by_task["runaway-silent"]

    def loop_closed(rs: list[Any]) -> bool:
        got = values(rs)
        return any(a["detector"] == ESCALATION_DETECTOR for a in got) and any(
            a["status"] == "resolved" and a["evidence"].get("kill_command_id") == acked.command_id for a in got
        )

    anomalies = values(await read_until(names.bootstrap, names.anomalies, loop_closed, timeout_s=120, worker=worker))
    kills = {a["scope"]["root_task_id"]: a for a in kill_anomalies(anomalies)}
    assert kills["runaway-acked"]["action"] == "kill"
    assert kills["runaway-acked"]["evidence"]["kill_command_id"] == acked.command_id
    assert acked.anomaly_id == kills["runaway-acked"]["anomaly_id"]
    resolution = next(a for a in anomalies if a["status"] == "resolved" and a["anomaly_id"] == acked.anomaly_id)
    ev = resolution["evidence"]
    assert ev["halted_by"] == "test-listener/1" and ev["kill_mode"] == "autonomous"
    assert parse_ts(ev["halted_at"]) == pytest.approx(halted_at, abs=0.001)
    assert parse_ts(ev["issued_at"]) == pytest.approx(acked.issued_at, abs=0.001)
    event_ts = parse_ts(kills["runaway-acked"]["ts"])
    assert ev["time_to_halt_s"] == pytest.approx(halted_at - event_ts, abs=0.002)
    assert ev["event_to_command_s"] + ev["command_to_halt_s"] == pytest.approx(ev["time_to_halt_s"], abs=0.002)
    escalations = [a for a in anomalies if a["detector"] == ESCALATION_DETECTOR]
    assert [(a["anomaly_id"], a["severity"], a["status"]) for a in escalations] == [
        (escalation_id(silent.command_id), "critical", "firing")
    ]
    assert escalations[0]["scope"]["root_task_id"] == "runaway-silent"
    assert escalations[0]["evidence"]["kill_command_id"] == silent.command_id

    await drained(names, worker)
    await wait_drained(names.bootstrap, names.app_id, [KillTopics.of(names).acks], timeout_s=60, workers=[worker])
    # exactly one command per runaway (not one per event past the budget), one resolution for the ack
    assert len(await read_all(names.bootstrap, KillTopics.of(names).killswitch)) == 2
    anomalies = values(await read_all(names.bootstrap, names.anomalies))
    halted = [a for a in anomalies if a["status"] == "resolved" and a["evidence"].get("halted_by")]
    assert len(halted) == 1
    assert len([a for a in anomalies if a["detector"] == ESCALATION_DETECTOR]) == 1
    assert_key_never_logged(worker)


async def test_advise_sends_no_command(names: Names, start_worker: Any, tmp_path: Path) -> None:
    await names.create_topics()
    env = {k: v for k, v in names.env().items() if k != "BURNGUARD_KILL_KEYS"}  # advise needs no key
    worker = start_worker(env, ["--config", str(config(tmp_path, "advise"))])
    await produce_events(names.bootstrap, names.events, runaways(time.time() - 120, "runaway"))
    anomalies = values(
        await read_until(names.bootstrap, names.anomalies, lambda rs: bool(kill_anomalies(values(rs))), 120, worker)
    )
    (critical,) = kill_anomalies(anomalies)
    assert critical["action"] == "alert" and "kill_command_id" not in critical["evidence"]
    await drained(names, worker)
    assert await read_all(names.bootstrap, KillTopics.of(names).killswitch) == []
    assert await read_all(names.bootstrap, KillTopics.of(names).proposals) == []


def test_a_worker_that_may_act_without_a_key_does_not_start(names: Names, tmp_path: Path) -> None:
    env = {k: v for k, v in names.env().items() if k != "BURNGUARD_KILL_KEYS"}
    done = subprocess.run(
        [str(BURNGUARD), "worker", "--no-web", "--config", str(config(tmp_path, "act"))],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "BURNGUARD_KILL_KEYS" in done.stderr and "act" in done.stderr


def cli(names: Names, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BURNGUARD), "kill", *args],
        env={**names.env(), "COLUMNS": "250"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_approve_mode_proposes_and_the_operator_approves_or_denies(
    names: Names, start_worker: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    worker = start_worker(
        names.env(BURNGUARD_KILL_ACK_DEADLINE_S="300"), ["--config", str(config(tmp_path, "approve"))]
    )
    await produce_events(names.bootstrap, names.events, runaways(time.time() - 120, "to-approve", "to-deny"))

    records = await read_until(names.bootstrap, KillTopics.of(names).proposals, lambda rs: len(rs) >= 2, 120, worker)
    proposals = {p["target"]["root_task_id"]: p for p in values(records)}
    assert {p["status"] for p in proposals.values()} == {"pending"}
    approve_id, deny_id = proposals["to-approve"]["command_id"], proposals["to-deny"]["command_id"]
    anomalies = values(await read_all(names.bootstrap, names.anomalies))
    proposed = {a["scope"]["root_task_id"]: a for a in kill_anomalies(anomalies)}
    # the alert names the exact id the operator approves
    assert proposed["to-approve"]["evidence"]["kill_command_id"] == approve_id
    assert proposed["to-approve"]["action"] == "alert" and proposed["to-approve"]["evidence"]["kill_proposed"]

    listed = cli(names, "list")
    assert listed.returncode == 0, listed.stderr
    listed_ids = [line.split()[0] for line in listed.stdout.splitlines()[1:]]  # unique prefixes of the ids
    assert sorted(listed_ids) == sorted(i[:13] for i in (approve_id, deny_id))

    approved = cli(names, "approve", approve_id, "--by", "alice")
    assert approved.returncode == 0, approved.stderr
    assert TEST_KILL_KEY not in approved.stdout + approved.stderr
    denied = cli(names, "deny", deny_id, "--by", "bob")
    assert denied.returncode == 0, denied.stderr
    again = cli(names, "approve", approve_id)
    assert again.returncode == 1 and "already approved by alice" in again.stderr
    unknown = cli(names, "approve", "kill-000000000000000000000000")
    assert unknown.returncode == 1 and "no kill proposal" in unknown.stderr
    after_deny = cli(names, "approve", deny_id)
    assert after_deny.returncode == 1 and "already denied by bob" in after_deny.stderr
    assert approve_id[:13] not in cli(names, "list").stdout

    (command,) = commands_of(
        await read_all(names.bootstrap, KillTopics.of(names).killswitch)
    )  # nothing for the denied one
    assert command.command_id == approve_id and command.mode is KillMode.APPROVED
    assert command.target.root_task_id == "to-approve"
    assert command.verify([KEY], time.time()) is None and command.verify([b"wrong"], time.time()) == "bad signature"

    # the worker tracks the approved command like its own: an ack resolves the anomaly
    ack = KillAck(command_id=approve_id, halted_at=time.time(), halted_by="test-listener/2")
    await produce(
        names.bootstrap, KillTopics.of(names).acks, [(approve_id.encode(), ack.model_dump_json(by_alias=True).encode())]
    )

    def resolved(rs: list[Any]) -> bool:
        return any(a["status"] == "resolved" and a["evidence"].get("kill_command_id") == approve_id for a in values(rs))

    anomalies = values(await read_until(names.bootstrap, names.anomalies, resolved, 120, worker))
    resolution = next(a for a in anomalies if a["status"] == "resolved" and a["evidence"].get("halted_by"))
    assert resolution["evidence"]["kill_mode"] == "approved"
    assert resolution["anomaly_id"] == proposed["to-approve"]["anomaly_id"]
    latest = {
        orjson.loads(r.value)["command_id"]: orjson.loads(r.value)
        for r in await read_all(names.bootstrap, KillTopics.of(names).proposals)
    }
    assert (latest[approve_id]["status"], latest[approve_id]["decided_by"]) == ("approved", "alice")
    assert (latest[deny_id]["status"], latest[deny_id]["decided_by"]) == ("denied", "bob")
    assert_key_never_logged(worker)


async def test_outstanding_commands_survive_a_worker_crash(names: Names, start_worker: Any, tmp_path: Path) -> None:
    """SIGKILL the worker once its command is out: the next worker recovers the outstanding command
    (table changelog, or redelivery of what was not committed), escalates it once when nobody acks,
    and still closes the loop when the ack comes late."""
    await names.create_topics()
    env = names.env(BURNGUARD_KILL_ACK_DEADLINE_S="10")
    args = ["--config", str(config(tmp_path, "act"))]
    first = start_worker(env, args)
    await produce_events(names.bootstrap, names.events, runaways(time.time() - 120, "runaway"))
    records = await read_until(names.bootstrap, KillTopics.of(names).killswitch, lambda rs: len(rs) >= 1, 120, first)
    (command,) = commands_of(records)
    first.kill()

    second = start_worker(env, args)
    esc_id = escalation_id(command.command_id)

    def escalated(rs: list[Any]) -> bool:
        return any(a["anomaly_id"] == esc_id for a in values(rs))

    await read_until(names.bootstrap, names.anomalies, escalated, 120, second)
    # a command sent again after the crash (its anomaly redelivered) is the same order: same id
    assert {c.command_id for c in commands_of(await read_all(names.bootstrap, KillTopics.of(names).killswitch))} == {
        command.command_id
    }
    ack = KillAck(command_id=command.command_id, halted_at=time.time(), halted_by="late-listener/3")
    await produce(
        names.bootstrap,
        KillTopics.of(names).acks,
        [(command.command_id.encode(), ack.model_dump_json(by_alias=True).encode())],
    )

    def both_resolved(rs: list[Any]) -> bool:
        resolved = {a["anomaly_id"] for a in values(rs) if a["status"] == "resolved"}
        return {command.anomaly_id, esc_id} <= resolved

    anomalies = values(await read_until(names.bootstrap, names.anomalies, both_resolved, 120, second))
    firing = [a for a in anomalies if a["anomaly_id"] == esc_id and a["status"] == "firing"]
    assert len(firing) == 1 and firing[0]["severity"] == "critical"
    halted = next(a for a in anomalies if a["anomaly_id"] == command.anomaly_id and a["status"] == "resolved")
    assert halted["evidence"]["halted_by"] == "late-listener/3"
    assert halted["evidence"]["time_to_halt_s"] > halted["evidence"]["event_to_command_s"] > 0
    assert_key_never_logged(second)
