"""The ingest's positions per source partition (streams.routing.IngestClock), without a broker."""

from __future__ import annotations

from streams.ordering import Mark
from streams.routing import IngestClock


def test_a_watermark_tells_only_what_is_on_the_broker() -> None:
    clock = IngestClock()
    assert clock.mark(0) == Mark(None, False, None) and clock.read_to(0) == 0
    clock.place(0, 100.0)
    clock.forward(0, 7)
    clock.delivered({0: 8})  # offset 8 was read too (dead-lettered: not forwarded)
    assert clock.mark(0) == Mark(100.0, False, 7) and clock.read_to(0) == 9
    clock.place(0, 250.0)  # the next batch, still in flight: an idle check now vouches for none of it
    clock.forward(0, 9)
    assert clock.mark(0, idle=True, ends={"ev:0": 10}) == Mark(100.0, True, 7, {"ev:0": 10})
    assert clock.read_to(0) == 9
    clock.delivered({0: 9})
    assert clock.mark(0) == Mark(250.0, False, 9, None)  # ends only with an idle mark


def test_a_revoked_partition_is_forgotten() -> None:
    clock = IngestClock()
    clock.place(3, 100.0)
    clock.forward(3, 41)
    clock.delivered({3: 41})
    clock.forget(3)
    # back on this worker later: it reads on from the committed offset, the idle check with it
    assert clock.mark(3) == Mark(None, False, None) and clock.read_to(3) == 0 and 3 not in clock.frontier
