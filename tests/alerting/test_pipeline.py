"""The transport-free pipeline: grouping and timers, dedup across restarts, resolve, silences, inhibition."""

from __future__ import annotations

import json
from pathlib import Path

from alerting.config import AlertingConfig
from alerting.matchers import Matchers
from alerting.pipeline import AlertPipeline
from alerting.silences import Silence, SilenceStore
from alerting.testing.anomalies import T0, make_anomaly, resolved
from schemas.anomaly import AnomalyStatus, Severity


def _pipeline(silences: SilenceStore | None = None, **route: object) -> AlertPipeline:
    return AlertPipeline(AlertingConfig.model_validate({"route": {"receiver": "console", **route}}), silences)


def test_a_storm_of_500_in_one_workflow_is_one_notification() -> None:
    p = _pipeline()
    out = []
    for i in range(500):
        out += p.process(make_anomaly(task=f"t{i}", ts=T0 + i * 0.05), now=T0 + i * 0.05)
    assert out == []  # group_wait (30 s) holds the first notification back
    assert p.next_flush_at() == T0 + 30
    (n,) = p.flush(T0 + 30)
    assert len(n.firing) == 500 and n.sequence == 0 and n.reason == "new"
    assert p.flush(T0 + 30 + 300) == []  # nothing changed at the next group_interval tick
    assert len(n.dedup_key) <= 255 and n.dedup_key.startswith("burnguard/console/support-triage/runaway_task/")


def test_groups_split_by_workflow_and_detector() -> None:
    p = _pipeline()
    for wf in ("a", "b"):
        for det in ("runaway_task", "fan_out"):
            p.process(make_anomaly(workflow=wf, detector=det), now=T0)
    assert len(p.flush(T0 + 30)) == 4


def test_group_interval_batches_updates_and_repeat_interval_reminds() -> None:
    p = _pipeline(group_wait=0, group_interval=60, repeat_interval=3600)
    (first,) = p.process(make_anomaly(task="a"), now=T0)
    assert p.process(make_anomaly(task="b", ts=T0 + 5), now=T0 + 5) == []  # waits for the next tick
    (update,) = p.flush(T0 + 60)
    assert update.reason == "new" and update.sequence == 1 and update.dedup_key == first.dedup_key
    assert {a.scope["root_task_id"] for a in update.firing} == {"a", "b"}
    assert p.flush(T0 + 120) == []
    (repeat,) = p.flush(T0 + 60 + 3600)
    assert repeat.reason == "repeat"


def test_escalation_notifies_again_under_the_same_key() -> None:
    p = _pipeline(group_wait=0, group_interval=60)
    warn = make_anomaly(severity="warning")
    (first,) = p.process(warn, now=T0)
    (again,) = p.process(warn.model_copy(update={"severity": Severity.CRITICAL}), now=T0 + 60)
    assert again.reason == "escalated" and again.dedup_key == first.dedup_key
    assert again.lead.severity.value == "critical"


def test_redelivered_anomalies_never_notify_twice_even_across_a_restart() -> None:
    p = _pipeline(group_wait=0)
    a = make_anomaly()
    (first,) = p.process(a, now=T0)
    assert p.process(a, now=T0 + 1) == [] and p.stats["duplicate"] == 1
    state = json.loads(json.dumps(p.snapshot()))  # through JSON, as a table would hold it
    restarted = _pipeline(group_wait=0)
    restarted.restore(state)
    assert restarted.process(a, now=T0 + 400) == []  # Kafka redelivers after the restart
    (res,) = restarted.process(resolved(a), now=T0 + 700)
    assert res.status is AnomalyStatus.RESOLVED and res.dedup_key == first.dedup_key and res.sequence == 1


def test_the_dedup_key_is_deterministic_without_shared_state() -> None:
    keys = {_pipeline(group_wait=0).process(make_anomaly(), now=T0 + i)[0].dedup_key for i in range(3)}
    assert len(keys) == 1


def test_resolve_after_all_resolve_then_the_episode_closes() -> None:
    p = _pipeline(group_wait=0, group_interval=60)
    a, b = make_anomaly(task="a"), make_anomaly(task="b")
    p.process(a, now=T0)
    p.process(b, now=T0)
    (both,) = p.flush(T0 + 60)
    (partial,) = p.process(resolved(a), now=T0 + 120)
    assert partial.status is AnomalyStatus.FIRING and [x.anomaly_id for x in partial.resolved] == [a.anomaly_id]
    (done,) = p.process(resolved(b), now=T0 + 180)
    assert done.status is AnomalyStatus.RESOLVED and done.dedup_key == both.dedup_key
    assert p.groups == {}
    late = p.process(make_anomaly(task="a"), now=T0 + 240)  # a stale firing state of a closed episode
    assert late == []


def test_an_anomaly_resolved_before_anyone_heard_of_it_is_never_sent() -> None:
    p = _pipeline()
    a = make_anomaly()
    p.process(a, now=T0)
    p.process(resolved(a), now=T0 + 10)
    assert p.flush(T0 + 30) == [] and p.groups == {}


def test_silence_mutes_matching_anomalies_until_it_expires(tmp_path: Path) -> None:
    store = SilenceStore(tmp_path / "silences.json")
    store.add(
        Silence(
            silence_id="s1",
            matchers=Matchers(match={"workflow": "support-triage"}),
            starts_at=T0,
            ends_at=T0 + 3600,
            created_by="test",
        )
    )
    p = _pipeline(SilenceStore(tmp_path / "silences.json"), group_wait=0, group_interval=60)
    assert p.process(make_anomaly(), now=T0) == []
    (other,) = p.process(make_anomaly(workflow="research"), now=T0)
    assert other.group_labels["workflow"] == "research"
    assert p.chain.counts["silenced"] >= 1
    SilenceStore(tmp_path / "silences.json").expire("s1", now=T0 + 100)  # as `burnguard silence expire` does
    (after,) = p.flush(T0 + 120)
    assert after.group_labels["workflow"] == "support-triage"


def test_a_critical_or_kill_inhibits_the_warnings_it_explains() -> None:
    p = _pipeline(group_wait=0, group_by=["workflow", "detector"])
    warn = make_anomaly(detector="retry_rate", severity="warning", task="t1")
    other_task = make_anomaly(detector="retry_rate", severity="warning", task="t2")
    kill = make_anomaly(detector="task_budget", severity="critical", action="kill", task="t1")
    for a in (kill, warn, other_task):
        p.ingest(a, now=T0)
    sent = p.flush(T0)
    firing = [a.scope["root_task_id"] + ":" + a.detector for n in sent for a in n.firing]
    assert sorted(firing) == ["t1:task_budget", "t2:retry_rate"]
    assert p.chain.counts["inhibited"] >= 1
    later = p.process(resolved(kill), now=T0 + 300)  # the source resolves: the warning is no longer explained
    later += p.flush(T0 + 600)
    assert any(a.anomaly_id == warn.anomaly_id for n in later for a in n.firing)


def test_a_closed_episode_never_reopens_under_its_own_key() -> None:
    """A late firing state of an anomaly whose episode resolved and closed (a re-emission from a
    detect stage's replay, say) opens no new group: its key would be the closed episode's, and its
    notification ids those still in an outbox."""
    p = _pipeline(group_wait=0, group_interval=1)
    a = make_anomaly(severity="warning")
    (page,) = p.process(a, now=T0)
    (closed,) = p.process(resolved(a), now=T0 + 2)
    assert closed.dedup_key == page.dedup_key and p.groups == {}
    late = a.model_copy(update={"severity": Severity.CRITICAL})  # a state the dedup has not seen
    assert p.process(late, now=T0 + 4) == [] and p.groups == {}
    other = make_anomaly(task="t2", severity="critical")  # a new episode of the group opens as ever
    (new,) = p.process(other, now=T0 + 5)
    assert new.dedup_key != page.dedup_key and new.sequence == 0
