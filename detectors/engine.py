"""The detection engine: routes cost events to detectors, keeps per-entity state bounded, applies
the autonomy policy and emits anomalies. Transport-free: ``burnguard replay``, the demo and the
Faust worker all drive this same class, in event time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from detectors.base import Detector, Signal
from detectors.config import Autonomy, BurnguardConfig, ResolvedSettings
from detectors.cost_notices import misnamed_cost_notice
from detectors.engine_stats import EngineStats, describe_validation_error
from detectors.engine_time import EngineTime, EventTimeRejected
from detectors.engine_young import EngineYoung
from detectors.episodes import EpisodeBook, decide_action
from detectors.handover import EngineHandover, ScopeKey, _join, _restore
from detectors.kill_policy import LEARNED_KILLERS, KillCooldowns, aim_kill
from detectors.ledger import RecentIds, TaskState
from detectors.registry import build_scope_detector, build_workflow_detectors
from detectors.runaway import RunawayTaskDetector
from detectors.scope_spend import MinuteSpend, RolledUpTick, SpendMinutes, feed_minutes
from detectors.young_runaway import NAME as YOUNG_RUNAWAY
from detectors.young_runaway import YoungRunawayParams, YoungTaskGuard
from schemas.anomaly import Action, Anomaly, Severity
from schemas.events import Category, CostEvent, EventKind
from schemas.pricing import ModelPricer

__all__ = ["Engine", "EngineStats", "EventTimeRejected", "describe_validation_error"]

log = logging.getLogger("burnguard.engine")
_PRICED_CATEGORIES = (Category.MODEL, Category.EMBEDDING)


@dataclass(slots=True)
class _WorkflowScope:
    settings: ResolvedSettings
    detectors: list[Detector]
    #: the detectors that look at every event (the rest only learn from finished tasks or ticks)
    per_event: list[Detector] = field(default_factory=list)
    #: the burn-rate detector this workflow's spend feeds, per event: its own (its tenant's and its
    #: team's are fed by the minute, at ticks: detectors.scope_spend)
    spend: list[tuple[Detector, ResolvedSettings]] = field(default_factory=list)
    tasks: dict[str, TaskState] = field(default_factory=dict)
    #: its runaway detector: while that is too young to judge, detectors.young_runaway watches
    runaway: RunawayTaskDetector | None = None
    young: YoungRunawayParams = field(default_factory=YoungRunawayParams)


class Engine(EngineTime, EngineHandover, EngineYoung):
    """Turns a stream of :class:`CostEvent` into :class:`Anomaly` s, in event time.

    ``autonomy`` overrides every workflow's autonomy level (``burnguard replay --autonomy``).
    ``clock`` is used only for the anomaly's ``detected_at`` (wall clock), never for detection.
    ``roll_up``: the tenant and team burn rates are not judged here but elsewhere, over several
    engines' spend (the Kafka worker's roll-up stage): each tick appends a
    :class:`~detectors.scope_spend.RolledUpTick` to :attr:`rolled_up` instead of feeding this
    engine's own tenant and team detectors.
    Event time (``max_ts``, held events, ticks) is :class:`~detectors.engine_time.EngineTime`'s.
    """

    def __init__(
        self,
        config: BurnguardConfig | None = None,
        *,
        autonomy: Autonomy | str | None = None,
        clock: Callable[[], float] = time.time,
        tick_s: float = 60.0,
        dedup_capacity: int = 200_000,
        roll_up: bool = False,
    ) -> None:
        self.config = config or BurnguardConfig()
        self.autonomy = Autonomy(autonomy) if autonomy is not None else None
        self.tick_s = tick_s
        self.pricer = ModelPricer()
        self.clock = clock
        self.dedup_capacity = dedup_capacity
        self.roll_up = roll_up
        #: with ``roll_up``: each tick's released minutes of spend (the caller empties the list)
        self.rolled_up: list[RolledUpTick] = []
        #: called with a root task's final totals when it finishes (not when it expires), before the
        #: engine forgets it: the Kafka worker publishes a task summary from it
        self.on_task_finished: Callable[[TaskState], None] | None = None
        #: called with each step that arrives after its root task finished (its ``cost_usd`` priced,
        #: ``None`` when unpriced): the root's summary is out already, the worker publishes the rest
        self.on_late_spend: Callable[[CostEvent], None] | None = None
        self._reset()

    def _reset(self) -> None:
        """Forget everything learned and seen (the configuration stays)."""
        dedup_capacity = self.dedup_capacity
        self.stats = EngineStats()
        self.episodes = EpisodeBook(self.config.version, self.clock)
        self.kill_cooldowns = KillCooldowns()
        self.young = YoungTaskGuard(self._young_params)
        self.young_episodes = EpisodeBook(self.config.version, self.clock)
        self.young_cooldowns = KillCooldowns()
        self._tasks: dict[str, TaskState] = {}
        self._workflows: dict[ScopeKey, _WorkflowScope] = {}
        self._scope_detectors: dict[ScopeKey, Detector] = {}
        self._seen = RecentIds(dedup_capacity)
        self._finished = RecentIds(dedup_capacity)
        self._unpriced_models: set[str] = set()
        self._misnamed_cost: set[str] = set()
        self.minutes = SpendMinutes()
        self._pending_state: dict[str, Any] = {}
        self.event_clock = self._new_event_clock()
        self._next_tick = 0.0

    # -- input -----------------------------------------------------------------------------------
    def process_bytes(self, raw: bytes | str, tag: Any = None) -> tuple[list[Anomaly], str | None]:
        """Validate and process one JSON event. Returns ``(anomalies, None)`` or ``([], reason)``
        when the event is rejected — the caller sends it to the dead-letter topic with the reason.
        An event held ahead of the stream and rejected later comes back by :meth:`take_rejected`
        with ``tag``."""
        try:
            event = CostEvent.model_validate_json(raw)
        except ValidationError as exc:
            self.stats.rejected += 1
            return [], describe_validation_error(exc)
        return self.process_safely(event, raw=raw, tag=tag)

    def process_obj(self, obj: Any, tag: Any = None) -> tuple[list[Anomaly], str | None]:
        """Like :meth:`process_bytes` for an already decoded JSON object."""
        try:
            event = CostEvent.model_validate(obj)
        except ValidationError as exc:
            self.stats.rejected += 1
            return [], describe_validation_error(exc)
        return self.process_safely(event, tag=tag)

    def process_safely(
        self, event: CostEvent, *, raw: bytes | str | None = None, tag: Any = None
    ) -> tuple[list[Anomaly], str | None]:
        try:
            return self.process(event, raw=raw, tag=tag), None
        except EventTimeRejected as exc:
            self.stats.rejected += 1
            return [], str(exc)
        except Exception as exc:  # one bad event must never stop the pipeline: it goes to the DLQ
            self.stats.errors += 1
            log.exception("engine error on event %s", event.event_id)
            return [], f"internal error while processing: {type(exc).__name__}: {exc}"

    # -- the hot path ----------------------------------------------------------------------------
    def _fold(self, event: CostEvent) -> list[Anomaly]:
        """Fold one event, whose time the event clock took in, into the state (see ``process``)."""
        if not self._seen.add(event.event_id):
            self.stats.duplicates += 1
            return []
        self.stats.events += 1
        out: list[Anomaly] = []
        ts = event.ts
        if event.kind is EventKind.STEP:
            self._price(event, out)
            if event.cost_usd:
                self.stats.spend_usd += event.cost_usd
        root = event.root
        task = self._tasks.get(root)
        if task is None:
            if root in self._finished:
                self.stats.late_after_finish += 1
                if self.on_late_spend is not None and event.kind is EventKind.STEP:
                    self.on_late_spend(event)  # still the root's spend (counted in stats.spend_usd)
                self._feed_spend(self._workflow(event.tenant, event.team, event.workflow), event, None, out)
                return out + self._tick_if_due()
            task = self._tasks[root] = TaskState.open(event)
            self.stats.tasks_started += 1
            scope = self._workflow(task.tenant, task.team, task.workflow)
            scope.tasks[root] = task
        else:
            scope = self._workflows[(task.tenant, task.team, task.workflow)]
        task.apply(event, event.cost_usd if event.kind is EventKind.STEP else 0.0)
        for det in scope.per_event:
            sig = det.on_event(event, task)
            if sig is not None:
                self._signal(sig, scope.settings, task, out)
        if scope.runaway is not None:
            self._report_young(event, task, scope.runaway.young, scope.young)
        if event.cost_usd:
            self._feed_spend(scope, event, task, out)
        if task.finished:
            self._finish(task, scope, out)
        if ts - self.config.lateness_s >= self._next_tick:
            out.extend(self._tick_if_due())
        return out

    def _price(self, event: CostEvent, out: list[Anomaly]) -> None:
        if event.cost_usd is None:
            for name in event.misnamed_cost:
                self.stats.misnamed_cost[name] = self.stats.misnamed_cost.get(name, 0) + 1
                if name not in self._misnamed_cost:
                    self._misnamed_cost.add(name)
                    settings = self.config.resolve(event.tenant, event.team, event.workflow)
                    self._signal(misnamed_cost_notice(event, name), settings, None, out)
        if event.cost_usd is not None or event.category not in _PRICED_CATEGORIES:
            if event.cost_usd is None:
                event.cost_usd = 0.0
            return
        price = self.pricer.price(
            event.name, event.provider, event.input_tokens, event.output_tokens, event.cached_input_tokens
        )
        if price is not None:
            event.cost_usd = price
            return
        self.stats.unpriced_steps += 1
        name = event.name or "<unnamed>"
        if name not in self._unpriced_models:
            self._unpriced_models.add(name)
            sig = Signal(
                detector="unpriced_model",
                scope={"tenant": event.tenant, "team": event.team, "workflow": event.workflow},
                ts=event.ts,
                severity=Severity.WARNING,
                metric="unpriced_steps",
                unit="count",
                observed=1.0,
                summary=f"Model {name!r} (provider {event.provider or 'unknown'}) has no known price and sent no "
                "cost_usd: its calls count as steps but their money is unknown; send cost_usd or fix the name",
                evidence={"model": name, "provider": event.provider},
            )
            settings = self.config.resolve(event.tenant, event.team, event.workflow)
            self._signal(sig, settings, None, out)

    def _feed_spend(self, scope: _WorkflowScope, event: CostEvent, task: TaskState | None, out: list[Anomaly]) -> None:
        if event.cost_usd:
            self.minutes.add(event.ts, (event.tenant, event.team, event.workflow), event.cost_usd)
        for det, settings in scope.spend:
            sig = det.on_event(event, task)  # type: ignore[arg-type]
            if sig is not None:
                self._signal(sig, settings, task, out)

    def _finish(self, task: TaskState, scope: _WorkflowScope, out: list[Anomaly]) -> None:
        for det in scope.detectors:
            sig = det.on_task_finished(task)
            if sig is not None:
                self._signal(sig, scope.settings, task, out)
        out.extend(self.episodes.resolve_root(task.root_task_id, task.last_ts, f"task finished ({task.outcome})"))
        self._finish_young(task, task.last_ts)
        self._drop(task, scope)
        self.stats.tasks_finished += 1
        if self.on_task_finished is not None:
            self.on_task_finished(task)

    def _drop(self, task: TaskState, scope: _WorkflowScope) -> None:
        del self._tasks[task.root_task_id]
        scope.tasks.pop(task.root_task_id, None)
        self._finished.add(task.root_task_id)

    # -- signals → anomalies ---------------------------------------------------------------------
    def _signal(
        self,
        sig: Signal,
        settings: ResolvedSettings,
        task: TaskState | None,
        out: list[Anomaly],
        book: EpisodeBook | None = None,
        cooldowns: KillCooldowns | None = None,
    ) -> None:
        """A signal through the policy into its episode (``book``, with ``cooldowns``: the engine's own
        unless given) and, when that says something new, into ``out``."""
        book = book or self.episodes
        cooldowns = cooldowns or self.kill_cooldowns
        if not sig.firing:
            resolved = book.clear(sig)
            if resolved is not None:
                out.append(resolved)
            return
        autonomy = self.autonomy or settings.policy.autonomy
        proposed = task.proposed if task is not None else None
        action, note = decide_action(sig, settings.policy, autonomy, bool(task and task.killed), proposed)
        action, note = aim_kill(
            sig.scope,
            sig.ts,
            settings.policy,
            action,
            note,
            book.episode_id(sig),
            cooldowns,
            agent=task.agent if task is not None else None,
            detector=sig.detector,
        )
        anomaly = book.fire(sig, action, note)
        if anomaly is None:
            return
        target = note.get("kill_target")
        if target is not None:
            workflow = (sig.scope.get("tenant", "default"), sig.scope.get("team", ""), sig.scope.get("workflow", ""))
            cooldowns.start(workflow, target, sig.ts, settings.policy.kill_cooldown_s)
            if sig.detector in LEARNED_KILLERS:
                cooldowns.count_kill(workflow, note["kill_command_id"], sig.ts, settings.policy.kill_window_s)
        if task is not None and sig.scope.get("root_task_id") == task.root_task_id:
            if task.alerted is None:
                task.alerted = {}
            task.alerted[sig.detector] = sig.severity.rank
        if note.get("kill_proposed") and task is not None:
            task.proposed = note.get("kill_command_id")
        if action is Action.KILL and task is not None:
            task.killed = True
            self.stats.kills += 1
        self.stats.anomalies += 1
        self.stats.by_detector[sig.detector] = self.stats.by_detector.get(sig.detector, 0) + 1
        out.append(anomaly)

    # -- event time ------------------------------------------------------------------------------
    def _tick(self, now: float, out: list[Anomaly]) -> None:
        ttl = self.config.task_ttl_s
        self.kill_cooldowns.prune(now)
        self.young_cooldowns.prune(now)
        for scope in list(self._workflows.values()):
            for det in scope.detectors:
                for sig in det.on_tick(now, scope.tasks.values()):
                    self._signal(sig, scope.settings, self._tasks.get(sig.scope.get("root_task_id", "")), out)
            expired = [t for t in scope.tasks.values() if now - t.last_ts > ttl]
            for task in expired:
                out.extend(self.episodes.resolve_root(task.root_task_id, now, "task expired after a silence"))
                self._finish_young(task, now, expired=True)
                self._drop(task, scope)
                self.stats.tasks_expired += 1
        before = self.minutes.released_to
        released = self.minutes.release(now + self.config.lateness_s)
        if self.roll_up:
            self.rolled_up.append(RolledUpTick(now, before, self.minutes.released_to, released))
        else:
            feed_minutes(released, self._scope_detector_for)
            self._judge_young(released, out)
        for key, det in self._scope_detectors.items():
            for sig in det.on_tick(now, ()):
                self._signal(sig, self._settings_for_key(key), None, out)

    # -- scopes ----------------------------------------------------------------------------------
    def _workflow(self, tenant: str, team: str, workflow: str) -> _WorkflowScope:
        key = (tenant, team, workflow)
        scope = self._workflows.get(key)
        if scope is None:
            settings = self.config.resolve(tenant, team, workflow)
            detectors = build_workflow_detectors(settings.params)
            scope = self._workflows[key] = _WorkflowScope(
                settings,
                detectors,
                per_event=[d for d in detectors if type(d).on_event is not Detector.on_event],
                spend=[(self._scope_detector_for(key), settings)],
                runaway=next((d for d in detectors if isinstance(d, RunawayTaskDetector)), None),
                young=settings.params[YOUNG_RUNAWAY],  # type: ignore[arg-type]
            )
            pending = self._pending_state.pop(_join(key), None)
            if pending:
                for det in scope.detectors:
                    if det.name in pending:
                        _restore(det, pending[det.name], key)
        return scope

    def tick_rolled_up(self, now: float, minutes: list[MinuteSpend]) -> list[Anomaly]:
        """The roll-up stage's tick: feed every engine's minutes released by their tick ``now``
        (see ``roll_up``) to this engine's tenant and team detectors, then let them tick at ``now``."""
        out: list[Anomaly] = []
        feed_minutes(minutes, self._scope_detector_for)
        self._judge_young(minutes, out)
        self.max_ts = max(self.max_ts, now)
        self._next_tick = now + self.tick_s
        self._tick(now, out)
        return out

    def _scope_detector_for(self, key: ScopeKey) -> Detector:
        return self._scope_detectors.get(key) or self._scope_detector(key)

    def _settings_for_key(self, key: ScopeKey) -> ResolvedSettings:
        return self.config.resolve(key[0], key[1] if len(key) > 1 else None, key[2] if len(key) > 2 else None)

    def _scope_detector(self, key: ScopeKey) -> Detector:
        tenant, team, workflow = ([*list(key), None, None])[:3]
        settings = self._settings_for_key(key)
        det = build_scope_detector(settings.params, len(key), self.config.budgets_for(tenant, team, workflow))  # type: ignore[arg-type]
        pending = self._pending_state.pop("scope:" + _join(key), None)
        if pending and det.name in pending:
            _restore(det, pending[det.name], key)
        self._scope_detectors[key] = det
        return det

    # -- views -----------------------------------------------------------------------------------
    @property
    def live_tasks(self) -> int:
        return len(self._tasks)

    def task(self, root_task_id: str) -> TaskState | None:
        return self._tasks.get(root_task_id)

    def open_anomalies(self) -> list[Anomaly]:
        return [*self.episodes.open.values(), *self.young_episodes.open.values()]
