"""How every agent of the worker takes its records, and its one policy when it cannot go on.

Faust acknowledges a batch of ``Stream.take_events`` in the generator's ``finally``, and a record of
``Stream.events()`` in its own: whatever the agent's body did. A body that raised (a record the
producer refused, a broker error on a delivery, a bug) therefore had its whole batch acknowledged,
and Faust restarted the agent and committed past records that were never processed — a silent
hole in the stream (an oversized record lost the rest of its batch this way).

:class:`StageRunner` turns that around: each record it hands out carries one more reference, which
it gives back only after the body has returned; Faust's own acknowledgement then merely drops the
extra one. If the body raises, nothing of the batch is acknowledged and the runner stops the worker
(:data:`EXIT_STAGE_FAILED`): offsets stay where they were, the state table holds only what was
delivered, and the next start reprocesses the batch. Input never gets here — every stage turns a
bad record into a dead letter; what does is a fault the worker cannot fix by going on (an output
the broker refuses, a lost connection past the producer's retries, a bug), and a supervisor
(systemd ``Restart=on-failure``, Kubernetes, ``docker compose`` ``restart: on-failure``) restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import faust
from faust.types import EventT

__all__ = ["EXIT_STAGE_FAILED", "StageRunner", "describe_batch"]

log = logging.getLogger("burnguard.streams")

#: exit status of a worker stopped because a stage could not go on (EX_SOFTWARE)
EXIT_STAGE_FAILED = 70


def describe_batch(events: Sequence[EventT], limit: int = 6) -> str:
    """Where a batch's records are: ``topic/partition@first-last`` per partition.

    >>> from types import SimpleNamespace as NS
    >>> batch = [NS(message=NS(topic="ev", partition=p, offset=o)) for p, o in ((0, 7), (0, 9), (2, 4))]
    >>> describe_batch(batch)
    'ev/0@7-9, ev/2@4'
    """
    spans: dict[tuple[str, int], list[int]] = {}
    for event in events:
        msg = event.message
        span = spans.setdefault((msg.topic, msg.partition), [msg.offset, msg.offset])
        span[0], span[1] = min(span[0], msg.offset), max(span[1], msg.offset)
    parts = [f"{t}/{p}@{lo}" + (f"-{hi}" if hi != lo else "") for (t, p), (lo, hi) in sorted(spans.items())]
    more = f", and {len(parts) - limit} more partitions" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + more


class StageRunner:
    """The records of one agent (``name``), acknowledged only once the agent's body is done with them.

    ``async for batch in runner.batches(stream, n, within)`` (or ``runner.events(stream)``, one at a
    time) inside ``async with runner:``. A body that returns has its records acknowledged; one that
    raises stops the worker with its records unacknowledged (see the module docstring). A record the
    body must hold longer (the detect stage's records waiting in event-time order) takes a reference
    of its own (``message.incref()``) and is acknowledged by the body later.
    """

    def __init__(self, app: faust.App, name: str) -> None:
        self.app = app
        self.name = name
        self._current: Sequence[EventT] = ()

    async def batches(self, stream: faust.StreamT, max_: int, within: float) -> AsyncIterator[Sequence[EventT]]:
        s = cast(faust.Stream, stream)
        async for batch in s.take_events(max_, within=within):
            for event in batch:
                event.message.incref()  # take_events acknowledges in its finally, even when the body raised
            self._current = batch
            yield batch
            self._current = ()
            for event in batch:
                await s.ack(event)

    async def events(self, stream: faust.StreamT) -> AsyncIterator[EventT]:
        s = cast(faust.Stream, stream)
        async for event in s.events():
            event.message.incref()
            self._current = (event,)
            yield event
            self._current = ()
            await s.ack(event)

    async def __aenter__(self) -> StageRunner:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # a clean end, or a cancellation (stop, rebalance): Faust's business
        where = describe_batch(self._current) if self._current else "no batch"
        log.critical(
            "stage %s cannot go on: %s: %s, on its batch of %d records (%s); stopping the worker (exit %d) "
            "with that batch unacknowledged, so no offset is committed past it: the next start processes it again",
            self.name,
            type(exc).__name__,
            exc,
            len(self._current),
            where,
            EXIT_STAGE_FAILED,
            exc_info=exc,
        )
        stop_worker(self.app, f"stage {self.name}: {type(exc).__name__}: {exc}")
        await asyncio.Event().wait()  # never returns: the agent is not restarted over its lost batch
        return True  # pragma: no cover


def stop_worker(app: faust.App, reason: str) -> None:
    """Stop this worker as SIGTERM does (records acknowledged so far are committed, nothing else) and
    make it exit with :data:`EXIT_STAGE_FAILED` (see :func:`streams.worker.run_worker`)."""
    if getattr(app, "burnguard_failure", None) is None:
        app.burnguard_failure = reason  # type: ignore[attr-defined]
        os.kill(os.getpid(), signal.SIGTERM)
