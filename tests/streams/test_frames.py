"""Detect reads frames (schemas.frames) as it read single forwarded events, without a broker:
the same anomalies, redelivered frames recognised by their events' source offsets, a frame
acknowledged only once all its events are folded, a malformed frame dead-lettered whole."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from schemas.frames import FrameEntry, encode_frame
from streams.ordering import Mark
from streams.pipeline import DetectionPipeline, Record, Watermark, route
from streams.topics import partition_for_key
from tests.streams.test_pipeline_state import CONFIG, T0, fleet, records

PARTITIONS = 2


def framed(events: list[dict[str, Any]], per_frame: int) -> list[Record]:
    """The events as the ingest frames them: batches of ``per_frame`` source records, one frame per
    destination partition per batch, each frame at the next offset of its partition."""
    out: list[Record] = []
    offsets: defaultdict[int, int] = defaultdict(int)
    pipe = DetectionPipeline(CONFIG, partitions=PARTITIONS)
    for start in range(0, len(events), per_frame):
        frames: defaultdict[int, list[FrameEntry]] = defaultdict(list)
        for offset in range(start, min(start + per_frame, len(events))):
            raw = orjson.dumps(events[offset])
            key, _ = route(raw)
            assert key is not None
            frames[partition_for_key(key, PARTITIONS)].append(FrameEntry(key, raw, 0, offset, None))
        for p, entries in sorted(frames.items()):
            out += pipe.unframe(encode_frame("events", entries), p, offsets[p])
            offsets[p] += 1
    return out


def run(recs: list[Record], pipe: DetectionPipeline | None = None) -> tuple[DetectionPipeline, list[Any]]:
    if pipe is None:
        pipe = DetectionPipeline(CONFIG, partitions=PARTITIONS, clock=lambda: T0)
        for p in range(PARTITIONS):
            pipe.load(p, {})
    result = pipe.process(recs)
    return pipe, result.anomalies + result.summaries


def test_frames_give_the_same_anomalies_and_summaries_as_one_record_per_event() -> None:
    events = fleet()
    _, single = run(records(events, PARTITIONS))
    _, frames = run(framed(events, per_frame=7))
    assert single and sorted(frames) == sorted(single)


def test_a_redelivered_frame_is_recognised_by_its_events_source_offsets() -> None:
    recs = framed(fleet(), per_frame=7)
    pipe, first = run(recs)
    _, again = run(recs[: len(recs) // 2], pipe)  # the same frames again (an ingest restarted mid-way)
    assert first and again == [] and pipe.stats.redelivered == len(recs) // 2


def test_a_frame_is_done_only_when_every_event_in_it_is_folded() -> None:
    pipe = DetectionPipeline(CONFIG, partitions=1, sources=["events:0", "events:1"], clock=lambda: T0)
    pipe.load(0, {})
    raw = [orjson.dumps(e) for e in fleet()[:6]]
    keyed = [(route(r)[0], r) for r in raw]
    # source 0's events are released once source 1's watermark passes them; source 1 has said nothing
    entries = [FrameEntry(k, r, 0, i, orjson.loads(r)["ts"]) for i, (k, r) in enumerate(keyed)]
    recs = pipe.unframe(encode_frame("events", entries), 0, 10)
    result = pipe.process([Watermark(0, 9, {}), *recs])
    assert result.done[0] < 10  # held in event-time order: the frame is not acknowledged
    marks = {"events:0": Mark(T0 + 10_000, True, 5), "events:1": Mark(T0 + 10_000, True)}
    result = pipe.process([Watermark(0, 11, marks)])
    assert result.done[0] >= 10 and pipe.stats.events == 6


def test_a_malformed_frame_is_dead_lettered_whole_with_the_reason_and_the_worker_goes_on() -> None:
    pipe = DetectionPipeline(CONFIG, partitions=1, clock=lambda: T0)
    pipe.load(0, {})
    assert pipe.unframe(b"BGF1\x00\x05ev", 0, 3, "app.events-by-workflow") == []
    result = pipe.process(records(fleet()[:3], 1))
    [(_, value)] = result.dead_letters
    letter = orjson.loads(value)
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("app.events-by-workflow", 0, 3)
    assert letter["reason"].startswith("frame: truncated or malformed") and pipe.stats.events == 3
