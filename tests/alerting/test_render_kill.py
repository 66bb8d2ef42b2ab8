"""The alert of a proposed kill shows the exact approve command: the proposal's command id."""

from __future__ import annotations

from alerting.render import action_line, approve_command
from alerting.testing.anomalies import make_anomaly
from detectors.kill_policy import kill_command_id


def test_a_proposed_kill_shows_the_command_id_that_kill_approve_takes() -> None:
    target = {"scope": "task", "root_task_id": "t1"}
    plain = make_anomaly(severity="critical", kill_proposed=True)
    command_id = kill_command_id(plain.anomaly_id, target)
    a = make_anomaly(severity="critical", kill_proposed=True, kill_target=target, kill_command_id=command_id)
    assert approve_command(a) == f"burnguard kill approve {command_id}"
    assert action_line(a) == f"kill proposed — approve with: burnguard kill approve {command_id}"
    # an anomaly from before kill targets existed still names something to look for
    assert approve_command(plain) == f"burnguard kill approve {plain.anomaly_id}"
