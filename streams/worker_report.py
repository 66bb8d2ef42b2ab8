"""The worker's 30-second report line: what the detect pipeline and the seek-safe consumer counted."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from detectors.cost_notices import misnamed_cost_sentence
from streams.pipeline import DetectionPipeline

__all__ = ["log_cost_notices", "log_worker_report"]

log = logging.getLogger("burnguard.streams")


def log_worker_report(pipeline: DetectionPipeline, consumer: Any) -> None:
    """Log the counters since the worker started (events, not bytes; see PipelineStats), and warn
    once about each cost field name its steps sent instead of ``cost_usd``."""
    log_cost_notices(pipeline)
    s = pipeline.stats
    log.info(
        "routed %d, events %d, redelivered %d skipped, dead letters %d, errors %d, anomalies %d, "
        "task summaries %d, %d batches, %.1f MB checkpointed, %d records waiting for their turn "
        "(%d released out of event-time order, %d late), partitions held %s; stale records fetched before a seek: "
        "%d not delivered, %d skipped, %d acknowledgements ignored; %d partitions sought back to records "
        "fetched but not delivered",
        s.routed,
        s.events,
        s.redelivered,
        s.dead_letters,
        s.errors,
        s.anomalies,
        s.summaries,
        s.batches,
        s.checkpoint_bytes / 1e6,
        s.held,
        s.out_of_order,
        s.late,
        sorted(pipeline.states),
        getattr(consumer, "stale_dropped", 0),
        getattr(consumer, "stale_skipped", 0),
        getattr(consumer, "stale_acks", 0),
        getattr(consumer, "partitions_sought_back", 0),
    )


def log_cost_notices(pipeline: DetectionPipeline) -> None:
    """Warn, once per name, about steps that sent their cost under a name the contract does not read
    (counted by the engines of the partitions held now)."""
    counts: Counter[str] = Counter()
    for state in pipeline.states.values():
        counts.update(state.engine.stats.misnamed_cost)
    for name, steps in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if name not in pipeline.notices_logged:
            pipeline.notices_logged.add(name)
            log.warning("%s", misnamed_cost_sentence(steps, name))
