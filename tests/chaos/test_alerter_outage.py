"""Chaos: Slack and PagerDuty go down (500, then no answer at all) while anomalies keep coming, and the
alerter is SIGKILLed again and again in the middle of it; then the channels come back.

A stream of episodes — several workflows, warning and critical (runaway_task kills), each one firing
in a burst and later resolved, one workflow opening a second episode after its first closed — is
produced while the channels are down, some of it while no alerter runs at all. The alerter
(``burnguard alerter``, a real subprocess on the real broker, real slack-sdk and pagerduty clients)
is killed at least twice during the outage: once with notifications retrying in the outbox, once
inside a group_wait (anomalies taken in, nothing released yet), once with a resolve released and not
sent. After the recovery every episode must have reached Slack (one message, one thread reply for
the resolve, one edit) and PagerDuty (one trigger and one resolve under one ``dedup_key``, naming
every anomaly of the episode) exactly once, nothing on the alerts DLQ; the figures are printed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerting.testing.anomalies import T0, make_anomaly, resolved
from alerting.testing.http import Answer
from schemas.anomaly import Action, Anomaly
from tests.streams.alerter_fixtures import (
    AlerterProcess,
    Channels,
    alerter_env,
    channels,
    dead_letters,
    produce_anomalies,
    start_alerter,
    state_of,
)
from tests.streams.conftest import Names, wait_drained, wait_until

__all__ = ["channels", "start_alerter"]  # fixtures

GROUP_WAIT_S = 2
INGEST_WAIT_S = 12
INGEST_ROUTE = f"""
- match: {{workflow: ingest}}
  receiver: oncall
  group_wait: {INGEST_WAIT_S}s
"""


@dataclass
class Episode:
    """One group episode: its anomalies (fired together, resolved together)."""

    name: str
    anomalies: list[Anomaly]
    resolved: bool = False
    keys: set[str] = field(default_factory=set)  # the dedup_key(s) the alerter gave it

    @property
    def ids(self) -> set[str]:
        return {a.anomaly_id for a in self.anomalies}

    def resolves(self) -> list[Anomaly]:
        self.resolved = True
        return [resolved(a).model_copy(update={"action": Action.NONE}) for a in self.anomalies]  # as the engine does


def kills(workflow: str, n: int, t0: float) -> Episode:
    """``n`` critical runaway_task kills in one workflow: one group (workflow + detector)."""
    return Episode(
        f"{workflow}/runaway_task",
        [
            make_anomaly(
                workflow=workflow, task=f"{workflow}-{t0:.0f}-{i}", severity="critical", action="kill", ts=t0 + i
            )
            for i in range(n)
        ],
    )


def warnings(workflow: str, n: int, t0: float) -> Episode:
    """``n`` warnings of another detector, on tasks no critical anomaly is about (nothing inhibits them)."""
    return Episode(
        f"{workflow}/retry_rate",
        [
            make_anomaly(workflow=workflow, task=f"{workflow}-w{t0:.0f}-{i}", detector="retry_rate", ts=t0 + i)
            for i in range(n)
        ],
    )


async def group_keys(names: Names) -> dict[str, dict[str, Any]]:
    """The open groups of the latest state record, by ``dedup_key``."""
    state = await state_of(names)
    if state is None or state.pipeline is None:
        return {}
    return {g["dedup_key"]: g for g in state.pipeline["groups"]}


async def released(names: Names, episodes: list[Episode], sequence: int) -> bool:
    """Whether each episode's notification ``#sequence`` (0: the page, 1: the resolve) is in the outbox
    of the latest state record (during the outage nothing leaves it)."""
    state = await state_of(names)
    if state is None:
        return False
    out = [e.notification for e in state.outbox.entries.values()]
    for episode in episodes:
        mine = [n for n in out if {a.anomaly_id for a in (*n.firing, *n.resolved)} & episode.ids]
        episode.keys.update(n.dedup_key for n in mine)
        if not any(n.sequence == sequence for n in mine):
            return False
    return True


async def test_an_outage_with_the_alerter_killed_twice_loses_nothing_and_pages_each_episode_once(
    names: Names, channels: Channels, start_alerter: Any, tmp_path: Path
) -> None:
    await names.create_topics()
    config = channels.config(
        tmp_path / "alerting.yaml",
        group_wait=f"{GROUP_WAIT_S}s",
        group_interval="3s",
        routes=INGEST_ROUTE,  # a longer group_wait for one workflow: a SIGKILL inside it
    )
    env = alerter_env(names, config)
    kills_done = 0
    alerters: list[AlerterProcess] = []

    def start() -> AlerterProcess:
        alerters.append(start_alerter(env))
        return alerters[-1]

    def kill(alerter: AlerterProcess) -> None:
        nonlocal kills_done
        alerter.kill()
        kills_done += 1

    produced: list[Anomaly] = []

    async def send(anomalies: list[Anomaly]) -> None:
        produced.extend(anomalies)
        await produce_anomalies(names, anomalies)

    for server in (channels.slack, channels.pd):
        server.outage(Answer(500), then=Answer(hang=True), after=4)  # 500s, then nothing answers

    support = kills("support", 5, T0)
    billing = warnings("billing", 3, T0 + 10)
    search = kills("search", 2, T0 + 20)
    triage = warnings("triage", 2, T0 + 30)
    ingest = kills("ingest", 3, T0 + 40)  # its route waits 12 s: the alerter is killed inside that wait
    flash = kills("flash", 2, T0 + 50)  # fires and resolves while no alerter runs
    support_again = kills("support", 2, T0 + 3600)  # the support workflow's second episode
    support_again.name += " (second episode)"
    episodes = [support, billing, search, triage, ingest, flash, support_again]

    def current() -> list[AlerterProcess]:
        return alerters[-1:]

    alerter = start()
    # 1. the first notifications go into the outbox and are retried against failing channels
    await send(support.anomalies + billing.anomalies + search.anomalies)
    await wait_until(lambda: released(names, [support, billing, search], 0), "three groups released", 60, current())

    async def retried() -> bool:
        return channels.slack.outage_answers > 4 and channels.pd.outage_answers > 4

    await wait_until(retried, "both channels past their 500s, hanging", 60, current())
    kill(alerter)  # SIGKILL #1: notifications retrying, channels hanging

    # 2. while no alerter runs: a new group, and a resolve
    await send(triage.anomalies + support.resolves())
    alerter = start()
    await wait_until(lambda: released(names, [triage], 0), "the triage group released", 90, current())
    await wait_until(lambda: released(names, [support], 1), "the support resolve released", 60, current())

    # 3. SIGKILL #2 inside a group_wait: the ingest group taken in (in the state), not released yet
    await send(ingest.anomalies)
    ingest_sent = asyncio.get_running_loop().time()

    async def ingest_waiting() -> bool:
        groups = await group_keys(names)
        return any({a["anomaly_id"] for a in g["alerts"]} == ingest.ids and g["sequence"] == 0 for g in groups.values())

    await wait_until(ingest_waiting, "the ingest group in the state, within its group_wait", 10, current())
    kill(alerter)
    # while no alerter runs: the flash kills fire and resolve (3 s apart: past their group_wait), and
    # the ingest kills resolve once their group_wait is over: live, each would have been paged first
    await send(flash.anomalies)
    await asyncio.sleep(GROUP_WAIT_S + 1)
    await send(flash.resolves())
    await asyncio.sleep(max(0.0, ingest_sent + INGEST_WAIT_S + 1 - asyncio.get_running_loop().time()))
    await send(ingest.resolves())

    # 4. the next alerter pages and resolves them in the episodes' order; SIGKILL #3 with resolves
    # released and never sent
    alerter = start()
    await wait_until(lambda: released(names, [ingest, flash], 1), "ingest and flash paged and resolved", 90, current())
    await send(billing.resolves() + search.resolves())
    await wait_until(lambda: released(names, [billing, search], 1), "two resolves released", 60, current())
    kill(alerter)

    # 5. the support workflow's second episode (its first one is closed), another alerter, recovery
    await send(support_again.anomalies)
    alerter = start()
    await wait_until(lambda: released(names, [support_again], 0), "support's second episode released", 90, current())
    assert channels.slack.messages == [] and channels.pd.events == []  # nothing got through the outage
    keys_in_the_outage = [set(e.keys) for e in episodes]
    for server in (channels.slack, channels.pd):
        server.outage(None)
    await send(triage.resolves() + support_again.resolves())

    async def all_delivered() -> bool:
        state = await state_of(names)
        resolves = sum(1 for e in channels.pd.events if e["event_action"] == "resolve")
        return state is not None and len(state.outbox) == 0 and resolves >= len(episodes)

    await wait_until(all_delivered, "every episode triggered and resolved", 180, current())
    await wait_drained(names.bootstrap, f"{names.app_id}-alerter", [names.anomalies], 60, current())
    await asyncio.sleep(3)  # anything still to come (a duplicate) has time to arrive

    # -- the figures ----------------------------------------------------------------------------
    triggers = Counter(e["dedup_key"] for e in channels.pd.events if e["event_action"] == "trigger")
    resolves = Counter(e["dedup_key"] for e in channels.pd.events if e["event_action"] == "resolve")
    paged: dict[str, set[str]] = {}
    for e in channels.pd.events:
        if e["event_action"] == "trigger":
            details = e["payload"]["custom_details"]
            ids = {details["anomaly_id"], *(o["anomaly_id"] for o in details.get("others", []))}
            paged.setdefault(e["dedup_key"], set()).update(ids)
    top = channels.slack.top_level
    expected_notifications = 2 * len(episodes)  # one firing, one resolved
    delivered_pd = sum(triggers.values()) + sum(resolves.values())
    delivered_slack = len(top) + len(channels.slack.replies)
    duplicates_pd = sum(n - 1 for n in triggers.values()) + sum(n - 1 for n in resolves.values())
    duplicates_slack = max(0, delivered_slack - expected_notifications)
    lost = [e.name for e in episodes if not any(e.ids <= ids for ids in paged.values())]
    dead = await dead_letters(names)
    critical = sum(a.severity.value == "critical" for a in produced)
    print(
        f"\nalerter outage chaos: {len(produced)} anomalies produced ({critical} critical), "
        f"{len(episodes)} episodes/groups, {kills_done} SIGKILLs during the outage, {len(alerters)} alerter runs\n"
        f"  notifications expected {expected_notifications} per channel; delivered: PagerDuty {delivered_pd} "
        f"({sum(triggers.values())} triggers, {sum(resolves.values())} resolves), Slack {delivered_slack} "
        f"({len(top)} messages, {len(channels.slack.replies)} replies, {len(channels.slack.updates)} edits)\n"
        f"  duplicates: PagerDuty {duplicates_pd}, Slack {duplicates_slack}; lost episodes {len(lost)} {lost}; "
        f"alerts DLQ {len(dead)}; failed requests during the outage: Slack {channels.slack.outage_answers}, "
        f"PagerDuty {channels.pd.outage_answers}"
    )

    # -- the invariants -------------------------------------------------------------------------
    assert kills_done >= 2
    assert lost == []
    assert dead == []
    for i, episode in enumerate(episodes):
        (key,) = [k for k, ids in paged.items() if ids & episode.ids]  # one dedup_key per episode
        assert paged[key] == episode.ids, episode.name  # every anomaly named, and no other episode's
        assert (triggers[key], resolves[key]) == (1, 1), (episode.name, key)
        assert keys_in_the_outage[i] == {key}, episode.name  # the key the outage saw, kept
    assert len(triggers) == len(resolves) == len(episodes)
    assert len(top) == len(episodes) and len(channels.slack.replies) == len(episodes)
    assert len(channels.slack.updates) == len(episodes)
    for message in top:  # each thread got its resolve, and its parent the edit
        assert sum(r["thread_ts"] == message["ts"] for r in channels.slack.replies) == 1
        assert sum(u["ts"] == message["ts"] for u in channels.slack.updates) == 1
    assert duplicates_pd == 0 and duplicates_slack == 0
    channels.assert_well_formed()
