"""The fleet simulator: task arrivals of every workflow, merged into one time-ordered event stream.

Deterministic: everything is drawn from ``random.Random`` instances derived from ``seed``; no
global random state and no wall clock. Memory holds only the tasks running at the current event
time (plus the pre-built incident tasks), never the whole fleet.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator, Sequence
from typing import Any

from burnguard.simulator.agent_run import Event, task_id_for
from burnguard.simulator.effects import FleetEffects
from burnguard.simulator.incidents import (
    DEFAULT_INCIDENTS,
    Incident,
    fleet_effects,
    plan_incidents,
    realise_incident,
)
from burnguard.simulator.profiles import DEFAULT_WORKFLOWS, WorkflowProfile, activity
from burnguard.simulator.tasks import build_task

__all__ = ["DEFAULT_START_TS", "FleetSimulator"]

DEFAULT_START_TS = 1793577600.0  # 2026-11-02T00:00:00Z, a Monday
_FLOOD_IDS = 1 << 38  # id counters of flood-triggered tasks start here ...
_INCIDENT_IDS = 1 << 39  # ... and those of incident tasks here, so ids never collide
_SAMPLE_TASKS = 24  # tasks per workflow simulated to estimate events per task


def _arrivals(
    p: WorkflowProfile, peak_per_hour: float, start: float, end: float, rng: random.Random
) -> Iterator[tuple[float, int]]:
    """Task starts (epoch seconds, ms resolution) and task seeds of a Poisson process whose rate
    follows the daily rhythm, ``peak_per_hour`` at the peak; drawn by thinning."""
    rate = peak_per_hour / 3600.0
    if rate <= 0:
        return
    t = start
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return
        if rng.random() < activity(t, p.utc_offset_hours, p.night_share):
            yield round(t, 3), rng.getrandbits(64)


class FleetSimulator:
    """A simulated fleet of AI agents with injected, known incidents.

    ``start_ts`` is epoch seconds, ``hours`` the length of the arrival window, ``scale`` multiplies
    every workflow's arrival rate, ``incidents`` lists incident kinds (see
    :data:`~burnguard.simulator.incidents.INCIDENT_KINDS`; empty for a clean fleet) and
    ``workflows`` replaces the default fleet. Tasks that are running when the window closes still
    run to completion, except the incident tasks that never finish, which stop at the end.

    >>> sim = FleetSimulator(seed=1, hours=1.0, incidents=())
    >>> events = list(sim.events())
    >>> events[0]["kind"], all(a["ts"] <= b["ts"] for a, b in zip(events, events[1:]))
    ('task_started', True)
    """

    def __init__(
        self,
        seed: int = 0,
        start_ts: float = DEFAULT_START_TS,
        hours: float = 48.0,
        scale: float = 1.0,
        incidents: Sequence[str] = DEFAULT_INCIDENTS,
        workflows: Sequence[WorkflowProfile] | None = None,
    ) -> None:
        if hours <= 0:
            raise ValueError("hours must be > 0")
        if scale <= 0:
            raise ValueError("scale must be > 0")
        self.seed = seed
        self.start_ts = float(start_ts)
        self.hours = float(hours)
        self.scale = float(scale)
        self.end_ts = self.start_ts + self.hours * 3600.0
        self.workflows: tuple[WorkflowProfile, ...] = tuple(workflows or DEFAULT_WORKFLOWS)
        if len({wf.name for wf in self.workflows}) != len(self.workflows):
            raise ValueError("workflow names must be unique")
        # Each workflow draws from its own generator, keyed by seed and name, so a workflow's ordinary
        # tasks are the same whatever else runs in the fleet and whichever incidents are injected
        # (apart from the tasks an incident touches).
        self._stream_seeds: dict[str, tuple[int, int]] = {}
        for wf in self.workflows:
            keyed = random.Random(f"{seed}:workflow:{wf.name}")
            self._stream_seeds[wf.name] = (keyed.getrandbits(64), keyed.getrandbits(40))
        plans = plan_incidents(
            tuple(incidents), self.workflows, self.start_ts, self.end_ts, random.Random(f"{seed}:incidents")
        )
        self._effects: FleetEffects = fleet_effects(plans)
        self.incidents: list[Incident] = []
        self._incident_events: list[list[Event]] = []
        for k, plan in enumerate(plans):
            salt = self._stream_seeds[plan.profile.name][1]
            incident, events = realise_incident(
                plan, self._effects, self.end_ts, task_id_for(plan.profile.name, _INCIDENT_IDS + k, salt)
            )
            self.incidents.append(incident)
            if events:
                self._incident_events.append(events)
        self._floods = [
            (plan.profile, plan.start_ts, plan.end_ts, plan.params["multiplier"], plan.seed)
            for plan in plans
            if plan.kind == "traffic_flood"
        ]
        self._approx: int | None = None

    def _task_streams(self) -> list[Iterator[tuple[float, WorkflowProfile, str, int]]]:
        """One iterator per arrival process: (start ts, profile, task id, task seed)."""
        streams = []
        for wf in self.workflows:
            seed, salt = self._stream_seeds[wf.name]
            rate = wf.tasks_per_hour * self.scale
            arrivals = _arrivals(wf, rate, self.start_ts, self.end_ts, random.Random(seed))
            streams.append(self._named(wf, arrivals, 0, salt))
        for wf, start, end, multiplier, seed in self._floods:
            # Poisson superposition: the extra tasks come on top of the unchanged normal stream.
            extra = wf.tasks_per_hour * self.scale * (multiplier - 1.0)
            salt = self._stream_seeds[wf.name][1]
            arrivals = _arrivals(wf, extra, start, end, random.Random(seed))
            streams.append(self._named(wf, arrivals, _FLOOD_IDS, salt))
        return streams

    @staticmethod
    def _named(
        wf: WorkflowProfile, arrivals: Iterator[tuple[float, int]], first_id: int, salt: int
    ) -> Iterator[tuple[float, WorkflowProfile, str, int]]:
        for n, (ts, task_seed) in enumerate(arrivals, start=first_id):
            yield ts, wf, task_id_for(wf.name, n, salt), task_seed

    def events(self) -> Iterator[Event]:
        """All events of the fleet as contract dicts (``ts`` in epoch seconds), in non-decreasing
        ``ts`` order. Every call starts the same simulation afresh."""
        counter = itertools.count()
        # Heap entries: (ts, tie-breaker, payload). A payload is either a pending arrival
        # (stream, arrival) or a pending event (iterator over the rest of its task, event).
        heap: list[tuple[float, int, Any]] = []
        for stream in self._task_streams():
            arrival = next(stream, None)
            if arrival is not None:
                heap.append((arrival[0], next(counter), (stream, arrival)))
        for task_events in self._incident_events:
            # Copies: these lists outlive one run, and a consumer may change the dicts it gets.
            rest = (
                dict(e, attributes=dict(e["attributes"])) if "attributes" in e else dict(e)
                for e in task_events
            )
            first = next(rest)
            heap.append((first["ts"], next(counter), (rest, first)))
        heapq.heapify(heap)
        effects = self._effects
        while heap:
            _, _, payload = heap[0]
            rest, item = payload
            if isinstance(item, dict):
                yield item
                following = next(rest, None)
                if following is None:
                    heapq.heappop(heap)
                else:
                    heapq.heapreplace(heap, (following["ts"], next(counter), (rest, following)))
                continue
            ts, wf, task_id, task_seed = item
            built = build_task(wf, effects, random.Random(task_seed), task_id, ts).sorted_events()
            task_iter = iter(built)
            first = next(task_iter)
            heapq.heapreplace(heap, (first["ts"], next(counter), (task_iter, first)))
            arrival = next(rest, None)
            if arrival is not None:
                heapq.heappush(heap, (arrival[0], next(counter), (rest, arrival)))

    def approx_event_count(self) -> int:
        """Expected number of events (within a few percent), for a progress bar."""
        if self._approx is None:
            total = float(sum(len(events) for events in self._incident_events))
            for wf in self.workflows:
                tasks = wf.tasks_per_hour * self.scale * self._activity_hours(wf, self.start_ts, self.end_ts)
                for fwf, start, end, multiplier, _ in self._floods:
                    if fwf.name == wf.name:
                        tasks += (
                            wf.tasks_per_hour
                            * self.scale
                            * (multiplier - 1.0)
                            * self._activity_hours(wf, start, end)
                        )
                total += tasks * self._mean_events_per_task(wf)
            self._approx = round(total)
        return self._approx

    @staticmethod
    def _activity_hours(wf: WorkflowProfile, start: float, end: float, step: float = 300.0) -> float:
        """Integral of the daily rhythm over [start, end], in hours (midpoint rule)."""
        n = max(1, int((end - start) / step))
        width = (end - start) / n
        return (
            sum(activity(start + (i + 0.5) * width, wf.utc_offset_hours, wf.night_share) for i in range(n))
            * width
            / 3600.0
        )

    def _mean_events_per_task(self, wf: WorkflowProfile) -> float:
        rng = random.Random(f"{self.seed}:{wf.name}:sample")
        clean = FleetEffects()
        counts = [
            len(build_task(wf, clean, rng, f"sample-{i}", self.start_ts).events) for i in range(_SAMPLE_TASKS)
        ]
        return sum(counts) / len(counts)
