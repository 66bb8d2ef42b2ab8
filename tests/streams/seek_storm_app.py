"""A Faust app for ``test_consumer``: one agent that writes down every record it is given, while a timer
seeks every partition back to its committed offset a few times a second (what each rebalance's
recovery does). Run as ``python -m tests.streams.seek_storm_app worker``; settings from the
environment: ``SEEK_BOOTSTRAP``, ``SEEK_APP_ID``, ``SEEK_TOPIC``, ``SEEK_OUT`` (the file it writes
``partition offset`` lines to), ``SEEK_DATADIR`` (Faust's data directory: by default Faust makes
``<app id>-data`` in the working directory, which is the repository), ``SEEK_PLAIN=1`` for Faust's own
consumer instead of burnguard's."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

import faust

from streams.consumer import install, is_fresh


def build(env: Mapping[str, str], out: TextIO) -> faust.App:
    """The app; records go to ``out`` as ``partition offset`` lines."""
    app = faust.App(
        env["SEEK_APP_ID"],
        broker=f"kafka://{env['SEEK_BOOTSTRAP']}",
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.2,
        web_enabled=False,
        autodiscover=False,
        datadir=env["SEEK_DATADIR"],
    )
    if env.get("SEEK_PLAIN") != "1":
        install(app)
    topic = app.topic(env["SEEK_TOPIC"], key_type=bytes, value_type=bytes)

    @app.agent(topic)
    async def note(stream: faust.StreamT) -> None:
        async for event in stream.events():
            if is_fresh(app, event.message):
                out.write(f"{event.message.partition} {event.message.offset}\n")

    @app.timer(0.15)
    async def seek_back() -> None:
        if not app.rebalancing and app.consumer.assignment():
            await app.consumer.perform_seek()

    return app


if __name__ == "__main__":
    with open(os.environ["SEEK_OUT"], "a", buffering=1) as lines:
        build(os.environ, lines).main()
