"""The event clock (detectors.event_clock): what is held ahead of the stream, and when it is let go."""

from __future__ import annotations

import random

from detectors.engine import Engine
from detectors.event_clock import AHEAD, NOW, EventClock
from tests.factory import T0, task_events


def test_a_held_event_the_stream_reaches_is_released_not_given_up() -> None:
    clock = EventClock(max_ahead_s=600, max_behind_s=86_400, confirm_events=3, settle_events=20)
    for ts in (T0, T0 + 1, T0 + 2):
        clock.hold(ts, ts)
    for ts in (T0, T0 + 1, T0 + 2):
        clock.taken(ts)
    assert clock.admit(T0 + 3000) == AHEAD and clock.hold(T0 + 3000, "ahead") == []
    released = []
    for i in range(25):  # the stream moves on, 5 min an event, and reaches the held one after 8 events
        ts = T0 + 300 * (i + 1)
        assert clock.admit(ts) == NOW
        released += clock.caught_up()
    # released when reached (before, it waited until settle_events and was given up as "-4500 s ahead")
    assert released == ["ahead"] and clock.take_rejected() == []


def test_tasks_interleaved_far_out_of_order_lose_no_step() -> None:
    """200 tasks 30 s apart, each one's events in order, interleaved at random: event time jumps back
    and forth by up to 100 minutes (within max_behind_s). Every step counts in its task; before, the
    held events the stream later reached were given up after settle_events."""
    rng = random.Random(94)
    engine = Engine()
    summaries: dict[str, float] = {}
    engine.on_task_finished = lambda task: summaries.__setitem__(task.root_task_id, task.cost_usd)
    streams = [task_events(f"t{i}", T0 + 30 * i, steps=6, cost_per_step=0.01) for i in range(200)]
    while any(streams):
        engine.process_obj(rng.choice([s for s in streams if s]).pop(0))
    engine.finish()
    assert engine.take_rejected() == []
    assert len(summaries) == 200 and all(abs(cost - 0.06) < 1e-9 for cost in summaries.values())
