"""Runaways spliced into the real trace (``../shared/data/mini-swe-agent-swebench.events.jsonl.gz``).

A splice takes one real run and makes it a runaway: its ``task_finished`` is dropped and its own steps
are repeated after it (shifted in time by the run's length, new event ids, the same root task) until
it would cost $45-$85 if nobody stops it; it never finishes. Cohorts (``details["cohort"]``):

- ``young``: the run's workflow (= repository) has completed fewer than :data:`YOUNG_RUNS` runs at
  the splice's onset (the run's start);
- ``mature``: it has completed at least :data:`MATURE_RUNS`;
- ``unseen``: the run is moved into a workflow name the fleet has never seen.

``young`` and ``mature`` come in equal numbers. Times are epoch seconds, costs USD.
"""

from __future__ import annotations

import gzip
import itertools
import os
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from detection_corpus import CorpusItem, LabelledIncident

__all__ = [
    "MATURE_RUNS",
    "REAL_TRACE",
    "UNCAPPED_USD",
    "YOUNG_RUNS",
    "completed_before",
    "load_trace",
    "real_alone_item",
    "splice_runaways",
    "spliced_item",
]

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BURNGUARD_SHARED", REPO.parent / "shared"))
REAL_TRACE = SHARED / "data" / "mini-swe-agent-swebench.events.jsonl.gz"
YOUNG_RUNS = 20  # the learned detectors' min_samples
MATURE_RUNS = 50
UNCAPPED_USD = (45.0, 85.0)
_MIN_RUN_USD = 0.5  # runs repeated are at least this costly (fewer repetitions)


def _epoch(ts: Any) -> float:
    if isinstance(ts, (int, float)):
        return float(ts)
    return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()


@lru_cache(maxsize=2)
def _trace(path: str) -> tuple[dict[str, Any], ...]:
    import orjson

    with gzip.open(path, "rb") as fh:
        events = [orjson.loads(line) for line in fh if line.strip()]
    for e in events:
        e["ts"] = _epoch(e["ts"])
    return tuple(events)


def load_trace(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The real trace's events (copies), ``ts`` as epoch seconds, in the file's (time) order."""
    return [dict(e) for e in _trace(str(path or REAL_TRACE))]


def completed_before(events: Sequence[dict[str, Any]], workflow: str, ts: float) -> int:
    """How many root tasks of ``workflow`` finished before ``ts`` in ``events``."""
    return sum(
        1
        for e in events
        if e["kind"] == "task_finished" and e["workflow"] == workflow and e["ts"] < ts
        and e.get("root_task_id", e["task_id"]) == e["task_id"]
    )


def _runs(events: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        runs[e.get("root_task_id") or e["task_id"]].append(e)
    return runs


def _runaway(run: list[dict[str, Any]], target_usd: float, workflow: str) -> tuple[list[dict[str, Any]], float]:
    """The run's events without its end, then its steps again and again (shifted by its length plus
    the median gap between its steps) until its cost reaches about ``target_usd``."""
    own = [dict(e, workflow=workflow) for e in run if e["kind"] != "task_finished"]
    steps = [e for e in own if e["kind"] == "step"]
    cost = sum(float(e.get("cost_usd") or 0.0) for e in steps)
    times = sorted(e["ts"] for e in steps)
    gaps = sorted(b - a for a, b in itertools.pairwise(times)) or [5.0]
    period = times[-1] - times[0] + max(1.0, gaps[len(gaps) // 2])
    repeats = max(1, round(target_usd / cost))
    out = list(own)
    for r in range(1, repeats):
        for e in steps:
            copy = dict(e, ts=round(e["ts"] + r * period, 3), event_id=f"{e['event_id']}~{r}")
            if "attributes" in e:
                copy["attributes"] = dict(e["attributes"])
            out.append(copy)
    return out, round(cost * repeats, 6)


def splice_runaways(
    events: Sequence[dict[str, Any]], seed: int, counts: tuple[int, int, int]
) -> tuple[list[dict[str, Any]], list[LabelledIncident]]:
    """``events`` with (young, mature, unseen) = ``counts`` runaways spliced in, drawn by ``seed``
    (``young`` and ``mature`` must be equal). Returns (events sorted by time, one incident each)."""
    young, mature, unseen = counts
    if young != mature:
        raise ValueError("half of the splices go into young workflows: young and mature counts must match")
    rng = random.Random(f"detection-quality:splice:{seed}")
    runs = _runs(events)
    finished = {e["task_id"] for e in events if e["kind"] == "task_finished"}

    def cost(root: str) -> float:
        return sum(float(e.get("cost_usd") or 0.0) for e in runs[root])

    candidates = sorted(r for r in runs if r in finished and cost(r) >= _MIN_RUN_USD)
    rng.shuffle(candidates)
    picked: dict[str, str] = {}
    chosen_workflows: set[str] = set()
    for root in candidates:
        first = runs[root][0]
        wf = first["workflow"]
        done = completed_before(events, wf, first["ts"])
        cohort = "young" if done < YOUNG_RUNS else "mature" if done >= MATURE_RUNS else None
        want = {"young": young, "mature": mature}
        if cohort is None or sum(1 for c in picked.values() if c == cohort) >= want[cohort]:
            if sum(1 for c in picked.values() if c == "unseen") < unseen:
                picked[root] = "unseen"
            continue
        if cohort == "young" and wf in chosen_workflows:
            continue  # one young splice per workflow: a second would find the first's workflow no younger
        picked[root] = cohort
        chosen_workflows.add(wf)
        if len(picked) == young + mature + unseen:
            break
    if len(picked) < young + mature + unseen:
        raise ValueError(f"the trace has too few runs for {counts} splices")
    out = [e for e in events if (e.get("root_task_id") or e["task_id"]) not in picked]
    incidents = []
    for k, (root, cohort) in enumerate(sorted(picked.items())):
        run = runs[root]
        first = run[0]
        workflow = f"unseen-repo-{seed}-{k}" if cohort == "unseen" else first["workflow"]
        target = rng.uniform(UNCAPPED_USD[0] + 2.0, UNCAPPED_USD[1] - 3.0)
        runaway, uncapped = _runaway(run, target, workflow)
        out += runaway
        done = completed_before(events, workflow, first["ts"])
        incidents.append(
            LabelledIncident(
                "runaway_loop",
                first["ts"],
                max(e["ts"] for e in runaway),
                {"tenant": first.get("tenant", "default"), "team": first["team"], "workflow": workflow,
                 "root_task_id": root},
                root_task_id=root,
                cost_without_kill_usd=uncapped,
                details={"cohort": cohort, "completed_at_onset": done, "source_run": root,
                         "events": len(runaway)},
            )
        )
    out.sort(key=lambda e: e["ts"])  # stable: the trace's own order among equal times
    return out, incidents


def real_alone_item(trace: str | Path | None = None) -> CorpusItem:
    """The real trace as it is (no splices): what it kills and raises."""
    return CorpusItem("real trace alone", "real-alone", "real", lambda: iter(load_trace(trace)), [])


def spliced_item(seed: int, split: str, counts: tuple[int, int, int], trace: str | Path | None = None) -> CorpusItem:
    events, incidents = splice_runaways(load_trace(trace), seed, counts)
    shape = {"young": counts[0], "mature": counts[1], "unseen": counts[2]}
    return CorpusItem(f"real trace + runaways {seed}", split, "real", lambda: iter(events), incidents, shape)
