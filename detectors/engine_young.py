"""The engine's side of :mod:`detectors.young_runaway`: what a workflow's tasks tell the tenant's pools.

Each engine puts into its released minutes (:class:`~detectors.scope_spend.SpendMinutes`) its
workflows' normally finished tasks and its young tasks' reports; whoever judges the tenant's spend
(this engine in ``burnguard replay``, the roll-up stage in the Kafka worker) feeds them to a
:class:`~detectors.young_runaway.YoungTaskGuard` at its ticks. The guard's episodes and kill
cool-downs are its own, apart from the engine's: a task's young-runaway episode ends with the task's
end *report*, in the same place in both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from detectors.ledger import BUDGET_LINES, TaskState, budget_line
from detectors.young_runaway import NAME, YoungRunawayParams, YoungTaskGuard, rung
from schemas.events import CostEvent, EventKind

if TYPE_CHECKING:
    from detectors.base import Signal
    from detectors.config import BurnguardConfig, ResolvedSettings
    from detectors.episodes import EpisodeBook
    from detectors.kill_policy import KillCooldowns
    from detectors.scope_spend import SpendMinutes
    from schemas.anomaly import Anomaly

__all__ = ["EngineYoung", "normally_finished"]

_REVIEW = BUDGET_LINES.index("human_review")


def normally_finished(task: TaskState) -> bool:
    """A task whose cost teaches what the workflow's tasks cost: not killed, not a runaway."""
    return not task.killed and task.outcome != "killed" and not task.alerted_at_least("runaway_task", 1)


def _machine_usd(task: TaskState) -> float:
    return task.cost_usd - task.lines[_REVIEW]


class EngineYoung:
    """Mixed into :class:`~detectors.engine.Engine`."""

    config: BurnguardConfig
    minutes: SpendMinutes
    young: YoungTaskGuard
    young_episodes: EpisodeBook
    young_cooldowns: KillCooldowns

    def _signal(
        self,
        sig: Signal,
        settings: ResolvedSettings,
        task: TaskState | None,
        out: list[Anomaly],
        book: EpisodeBook | None = None,
        cooldowns: KillCooldowns | None = None,
    ) -> None:
        raise NotImplementedError

    def _young_params(self, tenant: str, team: str, workflow: str) -> YoungRunawayParams:
        return self.config.resolve(tenant, team, workflow).params[NAME]  # type: ignore[return-value]

    def _report_young(self, event: CostEvent, task: TaskState, young: bool, params: YoungRunawayParams) -> None:
        """After ``event`` was applied: a task of a young workflow reports when its machine spend passes a rung."""
        if not young or not params.enabled or event.kind is not EventKind.STEP or not event.cost_usd:
            return
        after = _machine_usd(task)
        before = after if budget_line(event) == _REVIEW else after - event.cost_usd
        floor, step = params.min_warn_usd, params.report_step
        if rung(after, floor, step) > rung(before, floor, step):
            task.guarded = True
            self.minutes.add_report(
                event.ts, (task.tenant, task.team, task.workflow), [task.root_task_id, after, task.steps, 0, 0]
            )

    def _finish_young(self, task: TaskState, ts: float, *, expired: bool = False) -> None:
        """The task ended (or expired at ``ts``): its end report, or its cost for the pools."""
        key = (task.tenant, task.team, task.workflow)
        normal = not expired and normally_finished(task)
        if task.guarded:
            self.minutes.add_report(ts, key, [task.root_task_id, _machine_usd(task), task.steps, 1, int(normal)])
        elif normal:
            self.minutes.add_finished(ts, key, _machine_usd(task))

    def _judge_young(self, minutes: Iterable[Any], out: list[Anomaly]) -> None:
        """Feed released minutes to the guard; its signals become anomalies of its own episodes."""
        for sig, key in self.young.feed(minutes):
            self._signal(sig, self.config.resolve(*key), None, out, self.young_episodes, self.young_cooldowns)

    def _young_snapshot(self) -> dict[str, Any]:
        return {
            "guard": self.young.snapshot(),
            "episodes": self.young_episodes.snapshot(),
            "kills": self.young_cooldowns.snapshot(),
        }

    def _young_restore(self, data: dict[str, Any] | None) -> None:
        if not data:  # a snapshot from before young_runaway: its pools start empty
            return
        self.young.restore(data["guard"])
        self.young_episodes.restore(data["episodes"])
        self.young_cooldowns.restore(data["kills"])
