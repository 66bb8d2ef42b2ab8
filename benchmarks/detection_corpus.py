"""The labelled corpus of the detection-quality benchmark, built deterministically from seeds.

Three families, each item a time-ordered list of contract events (``ts`` in epoch seconds) with its
ground truth (incidents in the shape the scorecard reads, :class:`~burnguard.scorecard.IncidentLike`):

- **fleets**: simulator fleets whose shape (hours, scale, incident set, subset of workflows) is drawn
  from their seed;
- **real**: the real trace of ``../shared/data`` with runaways spliced in (``detection_splice``);
- **metered**: single-record spend streams (one record every 5 minutes) with labelled spikes,
  level shifts and floods.

Seeds come in two lists: :data:`TUNING_SEEDS`, which anyone tuning a detector may look at, and
:data:`HELD_OUT_SEEDS`, reported apart. **Nobody tunes on the held-out seeds**: a detector change is
judged on the tuning seeds, and the held-out figures say whether that judgement carries over. The
demo's seed (7, ``burnguard/demo.py``) is in neither list.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from burnguard.simulator import DEFAULT_INCIDENTS, DEFAULT_WORKFLOWS, FleetSimulator

__all__ = [
    "DEMO_SEED",
    "HELD_OUT_SEEDS",
    "METERED_KINDS",
    "TUNING_SEEDS",
    "CorpusItem",
    "LabelledIncident",
    "corpus",
    "fleet_item",
    "fleet_shape",
    "metered_events",
    "metered_item",
]

DEMO_SEED = 7
#: seeds anyone may tune on (fleets, splices, metered streams)
TUNING_SEEDS: tuple[int, ...] = tuple(range(101, 121))
#: seeds nobody tunes on: reported apart, to see whether tuning carries over
HELD_OUT_SEEDS: tuple[int, ...] = (9001, 9002, 9003, 9004, 9005, 9006)
assert DEMO_SEED not in TUNING_SEEDS + HELD_OUT_SEEDS

METERED_KINDS = ("metered_spike", "metered_level_shift", "metered_flood")
_RECORD_S = 300.0  # one metered record every 5 minutes


@dataclass(frozen=True)
class LabelledIncident:
    """One labelled incident (an :class:`~burnguard.scorecard.IncidentLike`); times epoch seconds."""

    kind: str
    start_ts: float
    end_ts: float
    scope: dict[str, str]
    root_task_id: str | None = None
    cost_without_kill_usd: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class CorpusItem:
    """One run of the benchmark: ``events()`` yields the item's events afresh, in time order.

    ``split`` is ``tuning`` or ``held-out`` (or ``real-alone`` for the untouched real trace);
    ``family`` is ``fleet``, ``real`` or ``metered``; ``incidents`` its ground truth.
    """

    name: str
    split: str
    family: str
    events: Callable[[], Iterator[dict[str, Any]]]
    incidents: Sequence[Any]
    shape: dict[str, Any] = field(default_factory=dict)


def fleet_shape(seed: int, *, quick: bool = False) -> dict[str, Any]:
    """The shape of seed ``seed``'s fleet: hours, scale, incident kinds and workflows, drawn from it.

    Every fleet carries every incident kind at least once (so each kind is measured in every
    fleet); some carry one kind twice; some leave out a part of the default workflows.
    """
    rng = random.Random(f"detection-quality:shape:{seed}")
    hours = 24.0 if quick else rng.choice((24.0, 30.0, 36.0, 48.0))
    scale = 0.3 if quick else rng.choice((0.3, 0.5, 0.8, 1.0, 1.5))
    kinds = list(DEFAULT_INCIDENTS)
    if not quick and rng.random() < 0.4:
        kinds.append(rng.choice(DEFAULT_INCIDENTS))
    rng.shuffle(kinds)
    names = [wf.name for wf in DEFAULT_WORKFLOWS]
    if not quick and rng.random() < 0.5:
        names = sorted(rng.sample(names, rng.randint(6, len(names) - 1)))
    return {"hours": hours, "scale": scale, "incidents": kinds, "workflows": names}


def _simulator(seed: int, shape: dict[str, Any]) -> FleetSimulator:
    workflows = [wf for wf in DEFAULT_WORKFLOWS if wf.name in shape["workflows"]]
    try:
        return FleetSimulator(
            seed=seed, hours=shape["hours"], scale=shape["scale"], incidents=shape["incidents"], workflows=workflows
        )
    except ValueError:  # no room for a repeated kind or no host for it in the subset: the full fleet
        shape["incidents"] = list(DEFAULT_INCIDENTS)
        shape["workflows"] = [wf.name for wf in DEFAULT_WORKFLOWS]
        return FleetSimulator(seed=seed, hours=shape["hours"], scale=shape["scale"], incidents=DEFAULT_INCIDENTS)


def fleet_item(seed: int, split: str, *, quick: bool = False) -> CorpusItem:
    shape = fleet_shape(seed, quick=quick)
    sim = _simulator(seed, shape)
    return CorpusItem(f"fleet {seed}", split, "fleet", sim.events, list(sim.incidents), shape)


def metered_events(seed: int, *, hours: float = 48.0) -> tuple[list[dict[str, Any]], list[LabelledIncident]]:
    """A metered spend stream: one record every 5 minutes (a batch job's or a cloud bill's spend), each
    a one-step task (``task_started``, one ``compute`` step carrying the record's ``cost_usd``,
    ``task_finished``), with three labelled incidents after a day of history:

    - ``metered_spike``: records cost 10x for 15-30 min;
    - ``metered_flood``: 10x as many records (one every 30 s), each of the usual size, for 30-60 min;
    - ``metered_level_shift``: records cost 3x from some time on, to the end.

    Labels are the workflow's scope and the time window. Returns (events sorted by time, incidents).
    """
    rng = random.Random(f"detection-quality:metered:{seed}")
    start = 1793577600.0 + 86400.0 * rng.randint(0, 6)
    end = start + hours * 3600.0
    workflow = f"{rng.choice(('cloud-bill', 'batch-job', 'nightly-etl'))}-{seed}"
    scope = {"tenant": f"metered-{seed % 3}", "team": "finops", "workflow": workflow}
    level = rng.uniform(0.5, 3.0)  # USD per record
    day = 86400.0
    spike = start + day + rng.uniform(2, 6) * 3600.0
    spike_end = spike + rng.uniform(15, 30) * 60.0
    flood = spike + rng.uniform(5, 8) * 3600.0
    flood_end = flood + rng.uniform(30, 60) * 60.0
    shift = flood + rng.uniform(5, 8) * 3600.0
    incidents = [
        LabelledIncident("metered_spike", spike, spike_end, dict(scope), details={"factor": 10}),
        LabelledIncident("metered_flood", flood, flood_end, dict(scope), details={"records_factor": 10}),
        LabelledIncident("metered_level_shift", shift, end, dict(scope), details={"factor": 3}),
    ]
    events: list[dict[str, Any]] = []
    t, n = start, 0
    while t < end:
        factor = 10.0 if spike <= t < spike_end else 3.0 if t >= shift else 1.0
        daily = 1.0 + 0.2 * math.sin(2 * math.pi * (t - start) / day)
        cost = round(level * factor * daily * rng.lognormvariate(0.0, 0.25), 6)
        events.extend(_record(scope, f"{workflow}-{n}", t, cost))
        n += 1
        t += _RECORD_S / 10 if flood <= t < flood_end else _RECORD_S
    return events, incidents


def _record(scope: dict[str, str], task_id: str, ts: float, cost: float) -> list[dict[str, Any]]:
    base = {**scope, "agent": "meter", "task_id": task_id, "root_task_id": task_id}
    return [
        {**base, "event_id": f"{task_id}#1", "ts": ts, "kind": "task_started"},
        {**base, "event_id": f"{task_id}#2", "ts": ts, "kind": "step", "category": "compute", "name": "bill-line",
         "cost_usd": cost},
        {**base, "event_id": f"{task_id}#3", "ts": ts, "kind": "task_finished", "outcome": "success"},
    ]


def metered_item(seed: int, split: str, *, hours: float = 48.0) -> CorpusItem:
    events, incidents = metered_events(seed, hours=hours)
    return CorpusItem(f"metered {seed}", split, "metered", lambda: iter(events), incidents, {"hours": hours})


def corpus(*, quick: bool = False, trace: str | None = None) -> list[CorpusItem]:
    """Every item of the benchmark, in the order it runs. ``quick``: a small subset (a test's run).
    ``trace``: the real trace's path (default: ``../shared/data``'s)."""
    from detection_splice import real_alone_item, spliced_item

    tuning = TUNING_SEEDS[:2] if quick else TUNING_SEEDS
    held = HELD_OUT_SEEDS[:1] if quick else HELD_OUT_SEEDS
    items = [fleet_item(s, "tuning", quick=quick) for s in tuning]
    items += [fleet_item(s, "held-out", quick=quick) for s in held]
    items.append(real_alone_item(trace))
    splices = (1, 1, 1) if quick else (4, 4, 2)
    items.append(spliced_item(tuning[0], "tuning", splices, trace))
    if not quick:
        items.append(spliced_item(tuning[1], "tuning", splices, trace))
    items.append(spliced_item(held[0], "held-out", splices, trace))
    metered_tuning = tuning[:1] if quick else tuning[:4]
    items += [metered_item(s, "tuning") for s in metered_tuning]
    items += [metered_item(s, "held-out") for s in (held[:1] if quick else held[:2])]
    return items
