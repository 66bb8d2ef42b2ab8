"""The notification log: the one store every channel keeps its own state through."""

from __future__ import annotations

from typing import Any

import orjson

from alerting.nflog import LogEntry, NotificationLog


def test_each_channel_sees_only_its_own_entries_and_the_snapshot_round_trips_through_json() -> None:
    log = NotificationLog()
    chat, pager = log.channel("chat"), log.channel("pager")
    chat.put("g|#c", LogEntry(sent="g#0", data={"channel": "C1", "ts": "1.2"}))
    pager.put("g", LogEntry(sent="g#0"))
    assert chat.get("g") is None and pager.get("g|#c") is None
    assert [k for k, _ in chat.items()] == ["g|#c"]

    restored = NotificationLog()
    restored.load(orjson.loads(orjson.dumps(log.snapshot())))
    assert restored.snapshot() == log.snapshot()
    assert restored.channel("chat").get("g|#c") == LogEntry(sent="g#0", data={"channel": "C1", "ts": "1.2"})


def test_a_channels_view_stays_valid_across_a_load_which_replaces_everything() -> None:
    log = NotificationLog()
    chat = log.channel("chat")
    chat.put("a", LogEntry(sent="a#0"))
    saved = log.snapshot()
    chat.put("b", LogEntry(sent="b#0"))
    log.load(saved)
    assert [k for k, _ in chat.items()] == ["a"]
    log.load({})
    assert chat.get("a") is None and log.snapshot() == {}


def test_an_emptied_channel_is_left_out_of_the_snapshot() -> None:
    log = NotificationLog()
    chat = log.channel("chat")
    chat.put("a", LogEntry(sent="a#0"))
    chat.delete("a")
    chat.delete("never there")
    assert log.snapshot() == {}


async def test_a_channels_flush_awaits_the_stores_durability_hook() -> None:
    flushed: list[dict[str, Any]] = []
    log = NotificationLog()

    async def write() -> None:
        flushed.append(log.snapshot())

    log.on_flush = write
    chat = log.channel("chat")
    chat.put("a", LogEntry(sent="a#1", data={"ts": "1.2"}))
    await chat.flush()
    assert flushed == [{"chat": {"a": {"sent": "a#1", "data": {"ts": "1.2"}}}}]
    await NotificationLog().channel("chat").flush()  # no hook: nothing to do
