"""Simulation of one agent run, step by step, recording contract events.

Times are epoch seconds (floats, rounded to milliseconds in events), durations milliseconds,
costs USD. Each task draws from its own ``random.Random`` so a task's events depend only on its
seed and on the incidents that touch it.
"""

from __future__ import annotations

import math
import random
from typing import Any

from burnguard.simulator.effects import FleetEffects
from burnguard.simulator.profiles import EMBEDDING_MODEL, MODEL_PRICES, ToolSpec, WorkflowProfile

__all__ = ["SCHEMA", "AgentRun", "Event", "TaskRecorder", "lognormal_int", "task_id_for"]

SCHEMA = "burnguard.cost_event/1"
Event = dict[str, Any]

MAX_MODEL_ATTEMPTS = 8
MAX_TOOL_ATTEMPTS = 5
GUARDRAIL_NAME = "llama-guard-3-8b"
GUARDRAIL_USD_PER_MTOK = 0.20
RETRIEVAL_USD_PER_QUERY = 0.00008
OBSERVABILITY_USD_PER_SPAN = 0.00002


_ID_BITS = 40
_ID_MULTIPLIER = 0x5DEECE66D  # odd, so n -> n * multiplier + salt is a bijection modulo 2**40


def task_id_for(workflow: str, n: int, salt: int) -> str:
    """A random-looking task id, unique for every ``n`` below 2**40 within one workflow.

    >>> task_id_for("doc-qa", 1, 0)
    'doc-qa-05deece66d'
    """
    return f"{workflow}-{(n * _ID_MULTIPLIER + salt) % (1 << _ID_BITS):010x}"


def lognormal_int(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    """A lognormal draw with the given median, rounded and clipped to ``[lo, hi]``."""
    value = round(median * math.exp(rng.gauss(0.0, sigma)))
    return lo if value < lo else hi if value > hi else value


class TaskRecorder:
    """Collects the events of one root task tree (the root agent and its sub-agents)."""

    def __init__(self, profile: WorkflowProfile, effects: FleetEffects) -> None:
        self.profile = profile
        self.effects = effects
        self.events: list[Event] = []
        self.cost_usd = 0.0  # spend so far of the whole tree
        self.marks: dict[str, float] = {}  # named moments (epoch seconds) an incident reports
        self._seq: dict[str, int] = {}

    def emit(
        self,
        task_id: str,
        root_task_id: str,
        parent_task_id: str | None,
        agent: str,
        kind: str,
        ts: float,
        fields: dict[str, Any],
    ) -> Event:
        """Append one event; ``fields`` are the kind-specific ones (``category``, tokens, ...)."""
        seq = self._seq.get(task_id, 0) + 1
        self._seq[task_id] = seq
        p = self.profile
        event: Event = {
            "schema": SCHEMA,
            "event_id": f"{task_id}#{seq}",
            "ts": round(ts, 3),
            "kind": kind,
            "tenant": p.tenant,
            "team": p.team,
            "workflow": p.name,
            "agent": agent,
            "task_id": task_id,
            "root_task_id": root_task_id,
        }
        if parent_task_id is not None:
            event["parent_task_id"] = parent_task_id
        event.update(fields)
        self.cost_usd += fields.get("cost_usd", 0.0)
        self.events.append(event)
        return event

    def sorted_events(self) -> list[Event]:
        """The events in time order (stable: equal times keep the order they were made in)."""
        self.events.sort(key=_ts_of)
        return self.events


def _ts_of(event: Event) -> float:
    ts: float = event["ts"]
    return ts


class AgentRun:
    """One agent run (a root task or a sub-agent) advancing its own clock ``t`` step by step."""

    def __init__(
        self,
        rec: TaskRecorder,
        rng: random.Random,
        task_id: str,
        start_ts: float,
        *,
        root_task_id: str | None = None,
        parent_task_id: str | None = None,
        agent: str | None = None,
        model: str | None = None,
        prompt_tokens: int | None = None,
    ) -> None:
        profile = rec.profile
        self.rec = rec
        self.rng = rng
        self.profile = profile
        self.task_id = task_id
        self.root_task_id = root_task_id or task_id
        self.parent_task_id = parent_task_id
        self.agent = agent or profile.agent
        self.model = model or profile.model
        self.start_ts = start_ts
        self.t = start_ts
        self.children_end = start_ts  # latest end of a sub-agent this run waits for
        self.context = prompt_tokens if prompt_tokens is not None else profile.prompt_tokens
        self.cached_prefix = 0  # tokens of the previous prompt, reusable from the prompt cache
        self.step = 0

    def emit(self, kind: str, fields: dict[str, Any]) -> Event:
        """Record one event of this run at its current time."""
        return self.rec.emit(
            self.task_id, self.root_task_id, self.parent_task_id, self.agent, kind, self.t, fields
        )

    def emit_step(
        self,
        category: str,
        name: str,
        cost_usd: float,
        duration_ms: int | None = None,
        attempt: int = 1,
        failed: bool = False,
        **extra: Any,
    ) -> Event:
        """Record one ``step``; ``extra`` holds provider, token counts, attributes."""
        fields: dict[str, Any] = {"category": category, "name": name, **extra, "cost_usd": cost_usd}
        fields["attempt"] = attempt
        fields["status"] = "error" if failed else "ok"
        if duration_ms is not None:
            fields["duration_ms"] = duration_ms
        return self.emit("step", fields)

    def pause(self, median_ms: float, sigma: float = 0.6) -> None:
        """Let time pass: a lognormal wait with the given median in milliseconds."""
        self.t += median_ms * math.exp(self.rng.gauss(0.0, sigma)) / 1000.0

    def start(self, budget_usd: float | None = None, attributes: dict[str, Any] | None = None) -> None:
        fields: dict[str, Any] = {}
        if budget_usd is not None:
            fields["budget_usd"] = budget_usd
        if attributes:
            fields["attributes"] = attributes
        self.emit("task_started", fields)

    def model_call(self) -> None:
        """One logical model call; a rejected answer is asked again with ``attempt`` + 1."""
        p, rng = self.profile, self.rng
        attempt = 1
        while True:
            model = MODEL_PRICES[self.rec.effects.model_for(p.name, self.t, self.model)]
            if self.context > model.context_window * 0.9:  # the agent compacts its history
                self.context = int(model.context_window * 0.55)
                self.cached_prefix = 0
            output = lognormal_int(rng, p.output_median, p.output_sigma, 1, 16_000)
            cached = min(self.cached_prefix, self.context) if rng.random() < p.cache_hit else 0
            latency_ms = int(
                model.first_token_ms * math.exp(rng.gauss(0.0, 0.35)) + output * 1000.0 / model.tokens_per_s
            )
            self.t += latency_ms / 1000.0
            failed = rng.random() < p.error_rate
            cost = model.cost_usd(self.context, cached, output)
            self.emit_step(
                "model",
                model.name,
                cost,
                latency_ms,
                attempt,
                failed,
                provider=model.provider,
                input_tokens=self.context,
                cached_input_tokens=cached,
                output_tokens=output,
                attributes={"step": self.step},
            )
            self.cached_prefix = self.context
            self.context += output
            if not failed or attempt >= MAX_MODEL_ATTEMPTS:
                break
            attempt += 1
            self.context += 60  # the framework's "malformed answer, try again" message
            self.pause(300.0)
        self.step += 1

    def tool_call(self, tool: ToolSpec) -> bool:
        """One logical tool call with retries; False if it still failed after the last attempt."""
        p, rng, effects = self.profile, self.rng, self.rec.effects
        attempt = 1
        while True:
            error_rate = effects.tool_error_rate(p.name, tool.name, self.t, tool.error_rate)
            failed = rng.random() < error_rate
            duration_ms = lognormal_int(rng, tool.duration_ms, 0.7, 5, 600_000)
            if failed and error_rate > tool.error_rate:  # an outage: calls hang until they time out
                duration_ms = max(duration_ms, rng.randint(5_000, 30_000))
            self.t += duration_ms / 1000.0
            self.emit_step("tool", tool.name, tool.cost_usd, duration_ms, attempt, failed)
            if not failed:
                self.context += lognormal_int(rng, tool.output_tokens, 0.9, 10, 40_000)
                return True
            self.context += 80
            if attempt >= MAX_TOOL_ATTEMPTS:
                return False
            attempt += 1
            self.pause(500.0 * 2**attempt, 0.3)  # back-off before the agent tries again
            self.model_call()  # the agent reads the error and decides to retry

    def retrieval(self) -> None:
        """Embed the query, search the vector store, add the retrieved chunks to the context."""
        rng = self.rng
        emb = MODEL_PRICES[EMBEDDING_MODEL]
        tokens = lognormal_int(rng, 60, 0.6, 5, 4_000)
        duration_ms = lognormal_int(rng, 120, 0.4, 10, 10_000)
        self.t += duration_ms / 1000.0
        self.emit_step(
            "embedding",
            emb.name,
            emb.cost_usd(tokens, 0, 0),
            duration_ms,
            provider=emb.provider,
            input_tokens=tokens,
            output_tokens=0,
        )
        duration_ms = lognormal_int(rng, 70, 0.5, 5, 10_000)
        self.t += duration_ms / 1000.0
        self.emit_step("retrieval", "pgvector", RETRIEVAL_USD_PER_QUERY, duration_ms)
        self.context += lognormal_int(rng, 1_600, 0.4, 100, 20_000)

    def guardrail(self, stage: str) -> None:
        """A safety classifier over the prompt (``stage`` input) or the answer (``output``)."""
        tokens = self.context if stage == "output" else self.profile.prompt_tokens
        duration_ms = lognormal_int(self.rng, 250, 0.4, 20, 10_000)
        self.t += duration_ms / 1000.0
        cost = round(tokens * GUARDRAIL_USD_PER_MTOK / 1e6, 8)
        self.emit_step(
            "guardrail",
            GUARDRAIL_NAME,
            cost,
            duration_ms,
            provider="together",
            input_tokens=tokens,
            attributes={"stage": stage},
        )

    def human_review(self) -> None:
        """A person checks the work: $2-$12, minutes to an hour."""
        duration_ms = lognormal_int(self.rng, 8 * 60_000, 0.7, 60_000, 4 * 3_600_000)
        self.t += duration_ms / 1000.0
        self.emit_step("human_review", "review-queue", round(self.rng.uniform(2.0, 12.0), 2), duration_ms)

    def compute(self, name: str, cost_usd: float, duration_ms: int) -> None:
        """A compute bill (sandbox, container, warehouse session) of ``cost_usd`` for ``duration_ms``."""
        self.emit_step("compute", name, round(cost_usd, 8), duration_ms)

    def overhead(self) -> None:
        """Compute and observability bills of the whole run, booked when it ends."""
        p = self.profile
        elapsed_ms = max(1, int((self.t - self.start_ts) * 1000))
        self.compute(p.compute_name, p.compute_usd_per_hour * elapsed_ms / 3_600_000, elapsed_ms)
        cost = round(OBSERVABILITY_USD_PER_SPAN * len(self.rec.events), 8)
        self.emit_step("observability", p.observability_name, cost)

    def finish(self, outcome: str, value_usd: float | None = None) -> None:
        fields: dict[str, Any] = {
            "outcome": outcome,
            "duration_ms": int((self.t - self.start_ts) * 1000),
        }
        if value_usd is not None:
            fields["value_usd"] = value_usd
        self.emit("task_finished", fields)

    def spawn(self, index: int, model: str | None = None, prompt_tokens: int | None = None) -> AgentRun:
        """Start sub-agent number ``index`` of this run now (it works when :meth:`work` is called on
        it); it uses ``model``, by default the profile's sub-agent model."""
        p = self.profile
        child = AgentRun(
            self.rec,
            self.rng,
            f"{self.task_id}.{index}",
            self.t + self.rng.uniform(0.05, 0.5),
            root_task_id=self.root_task_id,
            parent_task_id=self.task_id,
            agent=f"{p.agent}-worker",
            model=model or p.subagent_model or p.model,
            prompt_tokens=prompt_tokens or max(500, p.prompt_tokens // 2),
        )
        child.start(attributes={"depth": child.task_id.count(".")})
        return child

    def work(self, calls: int, tool_share: float | None = None) -> bool:
        """``calls`` model calls, each maybe followed by a tool call; False if a tool gave up."""
        p, rng = self.profile, self.rng
        share = p.tool_share if tool_share is None else tool_share
        all_ok = True
        for i in range(calls):
            self.pause(p.think_ms)
            self.model_call()
            if p.tools and i < calls - 1 and rng.random() < share:
                all_ok = self.tool_call(p.tools[rng.randrange(len(p.tools))]) and all_ok
        return all_ok
