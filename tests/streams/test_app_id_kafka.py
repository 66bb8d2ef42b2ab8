"""A new ``BURNGUARD_APP_ID`` is a new app: its internal topics are its own (issue 10, item 18).

Real broker, two real workers. Each has its own app id and its own public topics (events,
anomalies, summaries, dead letters, kill topics), and sets nothing else: the topics only an app's
workers use (the re-keyed events, the issued kill commands, the alerter's state) come from the app
id. Before, both apps shared ``burnguard.events-by-workflow``: each app's detect stage read the
other's re-keyed events and summarised the other's tasks as its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.settings import APP_TOPICS, StreamSettings
from streams.topics import ensure_topics
from tests.factory import T0, task_events
from tests.streams.conftest import Names, WorkerProcess, produce_events, read_all, wait_drained, wait_until

pytestmark = pytest.mark.kafka

#: the settings a user sets for a second app: its id and the topics others read; nothing internal
INTERNAL_SETTINGS = ("BURNGUARD_INTERNAL_TOPIC", "BURNGUARD_KILL_INTERNAL_TOPIC", "BURNGUARD_ALERTS_STATE_TOPIC")


def app_env(names: Names, app_id: str) -> dict[str, str]:
    """The environment of one app: ``names``' broker and settings with the app's own id and public
    topics, and no internal topic named."""
    mine = Names(
        bootstrap=names.bootstrap,
        app_id=app_id,
        events=f"{app_id}-events",
        internal="(unused)",
        anomalies=f"{app_id}-anomalies",
        summaries=f"{app_id}-summaries",
        dlq=f"{app_id}-dlq",
        data_dir=names.data_dir.with_name(f"data-{app_id}"),
    )
    return {k: v for k, v in mine.env().items() if k not in INTERNAL_SETTINGS}


async def test_two_app_ids_each_count_only_their_own_events(
    names: Names, start_worker: Callable[..., WorkerProcess]
) -> None:
    tag = uuid.uuid4().hex[:8]
    apps = {f"bgtest-{tag}-a": 5, f"bgtest-{tag}-b": 3}  # app id -> its root tasks
    envs = {app: app_env(names, app) for app in apps}
    settings = {app: StreamSettings.from_env(env) for app, env in envs.items()}
    for app, s in settings.items():
        assert s.internal_topic == f"{app}.events-by-workflow"
        assert {getattr(s, name) for name in APP_TOPICS} == {f"{app}.{suffix}" for suffix in APP_TOPICS.values()}
        await ensure_topics(s)
    tasks = {app: {f"{app}-task-{i}" for i in range(n)} for app, n in apps.items()}
    for app, roots in tasks.items():
        events: list[dict[str, Any]] = []
        for i, root in enumerate(sorted(roots)):
            events += task_events(root, T0 + 60 * i, steps=3, workflow=f"wf-{app[-1]}")
        await produce_events(names.bootstrap, settings[app].events_topic, sorted(events, key=lambda e: e["ts"]))

    workers = [start_worker(env) for env in envs.values()]

    async def summarised() -> bool:
        for app, roots in tasks.items():
            records = await read_all(names.bootstrap, settings[app].summaries_topic)
            if len({r.key for r in records}) < len(roots):
                return False
        return True

    await wait_until(summarised, "each app summarising its tasks", 120, workers)
    for app, s in settings.items():
        await wait_drained(names.bootstrap, app, [s.events_topic, s.internal_topic], 60, workers)
    for app, roots in tasks.items():
        records = await read_all(names.bootstrap, settings[app].summaries_topic)
        seen = {orjson.loads(r.value)["root_task_id"] for r in records}
        assert seen == roots, f"{app} summarised {sorted(seen - roots)} of the other app"

    admin = AIOKafkaAdminClient(bootstrap_servers=names.bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        groups = {g[0] for g in await admin.list_consumer_groups()}
    finally:
        await admin.close()
    for app in apps:
        assert {f"{app}.{suffix}" for suffix in APP_TOPICS.values()} <= topics
        assert f"{app}-engine-state-changelog" in topics and f"{app}-spend-rollup" in topics
        assert app in groups
