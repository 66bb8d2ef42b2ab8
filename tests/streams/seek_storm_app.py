"""A Faust app for ``test_consumer``: one agent that writes down every record it is given, while a timer
seeks every partition back to its committed offset a few times a second (what each rebalance's
recovery does). Run as ``python -m tests.streams.seek_storm_app worker``; settings from the
environment: ``SEEK_BOOTSTRAP``, ``SEEK_APP_ID``, ``SEEK_TOPIC``, ``SEEK_OUT`` (the file it writes
``partition offset`` lines to), ``SEEK_PLAIN=1`` for Faust's own consumer instead of burnguard's."""

from __future__ import annotations

import os

import faust

from streams.consumer import install, is_fresh

app = faust.App(
    os.environ["SEEK_APP_ID"],
    broker=f"kafka://{os.environ['SEEK_BOOTSTRAP']}",
    key_serializer="raw",
    value_serializer="raw",
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=0.2,
    web_enabled=False,
    autodiscover=False,
)
if os.environ.get("SEEK_PLAIN") != "1":
    install(app)
topic = app.topic(os.environ["SEEK_TOPIC"], key_type=bytes, value_type=bytes)
out = open(os.environ["SEEK_OUT"], "a", buffering=1)  # noqa: SIM115 - open for the worker's lifetime


@app.agent(topic)
async def note(stream: faust.StreamT) -> None:
    async for event in stream.events():
        if is_fresh(app, event.message):
            out.write(f"{event.message.partition} {event.message.offset}\n")


@app.timer(0.15)
async def seek_back() -> None:
    if not app.rebalancing and app.consumer.assignment():
        await app.consumer.perform_seek()


if __name__ == "__main__":
    app.main()
