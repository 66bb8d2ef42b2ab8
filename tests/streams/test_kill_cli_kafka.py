"""``burnguard kill list|show|approve|deny`` as an operator runs them, in an 80- and a 120-column
terminal, over proposals on the real broker's proposals topic: one line per proposal, and the id
printed on it is what ``approve`` takes."""

from __future__ import annotations

import subprocess
import time

import orjson
import pytest

from alerting.testing.anomalies import make_anomaly
from schemas.killswitch import KillCommand, KillScope, KillTarget
from streams.killswitch_records import KillProposal
from tests.streams.conftest import BURNGUARD, REPO, Names, produce, read_all
from tests.streams.kill_names import KillTopics

pytestmark = pytest.mark.kafka

REASON = (
    "code-fix task code-fix-bea5497ccb spent $12.15 of its $12.00 budget (101%); top lines: model $11.81, "
    "failures_retries $0.34"
)


def proposal(command_id: str, task: str, now: float, detector: str = "task_budget") -> KillProposal:
    anomaly = make_anomaly(detector=detector, workflow="code-fix", task=task, severity="critical", ts=now - 30)
    return KillProposal(
        command_id=command_id,
        anomaly_id=anomaly.anomaly_id,
        target=KillTarget(scope=KillScope.TASK, tenant="acme", team="eng", workflow="code-fix", root_task_id=task),
        reason=REASON.replace("code-fix-bea5497ccb", task),
        proposed_at=now - 20,
        expires_at=now + 3600,
        event_ts=now - 30,
        anomaly=orjson.loads(anomaly.to_json()),
    )


def kill(names: Names, columns: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BURNGUARD), "kill", *args],
        env={**names.env(), "COLUMNS": str(columns)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_kill_list_is_one_line_per_proposal_at_80_and_120_columns_and_its_ids_are_accepted(
    names: Names,
) -> None:
    await names.create_topics()
    now = time.time()
    proposals = [
        proposal("kill-9a28c399aaaa5e53b781c9e3", "code-fix-bea5497ccb", now),
        proposal("kill-9a28c399bbbb5e53b781c9e3", "code-fix-0bb27ee29d", now, detector="runaway_task"),
        proposal("kill-1bc5df3e4cb29800ed1f7a93", "code-fix-12ccaed993", now, detector="stale_task"),
    ]
    topic = KillTopics.of(names).proposals
    await produce(names.bootstrap, topic, [(p.command_id.encode(), p.to_json()) for p in proposals])

    shown: dict[int, dict[str, str]] = {}
    for columns in (80, 120):
        listed = kill(names, columns, "list")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert all(len(line) <= columns for line in lines), lines
        assert len(lines) == 1 + len(proposals), lines  # a header, then one line each: nothing wraps
        ids = {}
        for p in proposals:
            (line,) = [line for line in lines if p.target.key in line]
            ids[p.target.key] = line.split()[0]
            assert p.command_id.startswith(ids[p.target.key]) and len(ids[p.target.key]) >= len("kill-") + 8
        assert all("  spent $12.15 of" in line for line in lines[1:])  # the reason, cut to what is left
        shown[columns] = ids
    assert (
        shown[80]
        == shown[120]
        == {
            "code-fix-bea5497ccb": "kill-9a28c399a",
            "code-fix-0bb27ee29d": "kill-9a28c399b",
            "code-fix-12ccaed993": "kill-1bc5df3e",
        }
    )

    ambiguous = kill(names, 80, "approve", "kill-9a28c399")
    assert ambiguous.returncode == 1
    said = " ".join(ambiguous.stderr.split())
    assert "kill-9a28c399 names 2 kill proposals (kill-9a28c399a, kill-9a28c399b): give more of the id" in said

    detail = kill(names, 80, "show", shown[80]["code-fix-bea5497ccb"])
    assert detail.returncode == 0, detail.stderr
    for text in (
        "kill proposal kill-9a28c399aaaa5e53b781c9e3",
        "status      pending",
        "target      task code-fix-bea5497ccb",
        "detector    task_budget (critical)",
        REASON,
        "top_lines:",
        "burnguard kill approve kill-9a28c399aaaa5e53b781c9e3 --by YOUR-NAME",
        "burnguard kill deny kill-9a28c399aaaa5e53b781c9e3 --by YOUR-NAME",
    ):
        assert text in detail.stdout, text

    approved = kill(names, 80, "approve", shown[80]["code-fix-bea5497ccb"], "--by", "alice")
    assert approved.returncode == 0, approved.stderr
    assert "kill-9a28c399aaaa5e53b781c9e3" in " ".join(approved.stderr.split())
    denied = kill(names, 120, "deny", "1bc5df3e", "--by", "bob")  # `kill-` may be left out
    assert denied.returncode == 0, denied.stderr
    commands = [
        KillCommand.model_validate_json(r.value)
        for r in await read_all(names.bootstrap, KillTopics.of(names).killswitch)
    ]
    assert [c.command_id for c in commands] == ["kill-9a28c399aaaa5e53b781c9e3"]
    still = kill(names, 80, "list")
    assert [line.split()[0] for line in still.stdout.splitlines()[1:]] == ["kill-9a28c399b"]
    everything = kill(names, 80, "list", "--all").stdout.splitlines()
    assert len(everything) == 4 and all(len(line) <= 80 for line in everything)
