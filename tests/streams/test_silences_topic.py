"""The silences topic's settings, and how the alerter's store merges the topic's silences with a file's."""

from __future__ import annotations

from pathlib import Path

from alerting.matchers import Matchers
from alerting.silences import Silence, SilenceStore
from alerting.testing.anomalies import T0
from streams.settings import StreamSettings
from streams.topics import topic_specs


def test_the_silences_topic_is_a_setting_compacted_on_one_partition() -> None:
    assert StreamSettings.from_env({}).silences_topic == "burnguard.silences"
    settings = StreamSettings.from_env({"BURNGUARD_SILENCES_TOPIC": "team-silences"})
    (spec,) = [s for s in topic_specs(settings) if s.name == "team-silences"]
    assert spec.config == {"cleanup.policy": "compact"} and spec.partitions == 1


def test_the_topics_silences_and_the_files_are_both_obeyed_and_a_newer_record_replaces_an_older(
    tmp_path: Path,
) -> None:
    def silence(sid: str, workflow: str, ends: float) -> Silence:
        return Silence(silence_id=sid, matchers=Matchers(match={"workflow": workflow}), starts_at=T0, ends_at=ends)

    store = SilenceStore(tmp_path / "silences.json")
    store.add(silence("file1", "billing", T0 + 3600))
    store.apply(silence("topic1", "support", T0 + 3600))
    assert store.silencing({"workflow": "support"}, T0 + 10) is not None
    assert store.silencing({"workflow": "billing"}, T0 + 10) is not None
    store.apply(silence("topic1", "support", T0 + 5))  # `silence expire`: the id rewritten, ended
    assert store.silencing({"workflow": "support"}, T0 + 10) is None
    assert [s.silence_id for s in store.list(T0 + 10, include_expired=True)] == ["file1", "topic1"]
