"""CostReporter against the real broker: contract events, outcomes, sub-agents, and Kafka down."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest

from burnguard_sdk import CostReporter, SyncCostReporter
from schemas.events import CostEvent, EventKind, Outcome
from tests.burnguard_sdk.conftest import SdkTopics, TcpForwarder, free_port

pytestmark = pytest.mark.kafka


def decoded(records: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


def validated(records: list[Any]) -> list[CostEvent]:
    """Every record as the server reads it; the key must be the root task id (CONTRACT §1)."""
    events = [CostEvent.model_validate_json(r.value) for r in records]
    for record, event in zip(records, events, strict=True):
        assert record.key.decode() == event.root
    return events


async def test_task_lifecycle_steps_and_subagents_are_contract_events(topics: SdkTopics) -> None:
    async with CostReporter(topics.bootstrap, team="search", workflow="answer", agent="answerer",
                            topic=topics.events) as reporter:  # fmt: skip
        async with reporter.task("t-ok", budget_usd=2.5, attributes={"prompt_version": "v7", "beta": True}) as run:
            run.model_call("gpt-4o-mini", provider="openai", input_tokens=1200, output_tokens=300,
                           cached_input_tokens=200, duration_ms=850)  # fmt: skip
            run.model_call("gpt-4o-mini", provider="openai", input_tokens=1200, output_tokens=0,
                           attempt=2, status="error", cost_usd=0.0004)  # fmt: skip
            run.tool_call("web_search", cost_usd=0.005, duration_ms=300)
            run.retrieval("pgvector", cost_usd=0.0001)
            run.embedding("text-embedding-3-small", provider="openai", input_tokens=500)
            run.human_review("reviewer-1", cost_usd=1.5, duration_ms=120_000)
            run.step("guardrail", name="pii-filter", cost_usd=0.0002)
            with run.subtask("t-sub", agent="researcher") as sub:
                sub.model_call("claude-3-5-haiku", provider="anthropic", input_tokens=10, output_tokens=5)
                with sub.subtask() as subsub:
                    subsub.tool_call("calculator")
            run.set_outcome("success", value_usd=4.0)
        assert await reporter.flush(30)
        assert reporter.stats.sent == 15 and reporter.stats.dropped == 0

    records = await topics.events_read()
    events = validated(records)
    assert len(events) == 15
    assert len({e.event_id for e in events}) == 15
    by_task: dict[str, list[CostEvent]] = {}
    for e in events:
        by_task.setdefault(e.task_id, []).append(e)
    root = by_task["t-ok"]
    assert root[0].kind is EventKind.TASK_STARTED and root[-1].kind is EventKind.TASK_FINISHED
    assert root[0].budget_usd == 2.5 and root[0].attributes == {"prompt_version": "v7", "beta": True}
    assert root[-1].outcome is Outcome.SUCCESS and root[-1].value_usd == 4.0
    model_steps = [e for e in root if e.category is not None and e.category.value == "model"]
    assert model_steps[0].cost_usd is None  # priced by the server from tokens
    assert "cost_usd" not in decoded(records)[1]
    assert model_steps[0].cached_input_tokens == 200 and model_steps[0].duration_ms == 850
    assert model_steps[1].attempt == 2 and model_steps[1].status.value == "error" and model_steps[1].is_failed_or_retry
    assert {e.category.value for e in root if e.category} == {
        "model", "tool", "retrieval", "embedding", "human_review", "guardrail"}  # fmt: skip
    sub_events = by_task["t-sub"]
    assert {(e.root_task_id, e.parent_task_id, e.agent) for e in sub_events} == {("t-ok", "t-ok", "researcher")}
    [subsub_id] = set(by_task) - {"t-ok", "t-sub"}
    assert {(e.root_task_id, e.parent_task_id) for e in by_task[subsub_id]} == {("t-ok", "t-sub")}
    assert all(e.team == "search" and e.workflow == "answer" for e in events)


async def test_outcomes_failure_cancelled_and_explicit(topics: SdkTopics) -> None:
    async with CostReporter(topics.bootstrap, team="t", workflow="w", topic=topics.events) as reporter:
        with pytest.raises(RuntimeError), reporter.task("t-fail"):
            raise RuntimeError("tool broke")

        async def cancelled() -> None:
            async with reporter.task("t-cancel") as run:
                run.tool_call("slow")
                await asyncio.Event().wait()

        job = asyncio.create_task(cancelled())
        await asyncio.sleep(0)  # let it enter its task
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        with reporter.task("t-esc") as run:
            run.set_outcome("escalated")
        run = reporter.task("t-manual")
        run.start()
        run.finish("failure")
        run.finish("success")  # once only
        assert await reporter.flush(30)

    events = validated(await topics.events_read())
    finished = {e.task_id: e.outcome for e in events if e.kind is EventKind.TASK_FINISHED}
    assert finished == {
        "t-fail": Outcome.FAILURE, "t-cancel": Outcome.CANCELLED, "t-esc": Outcome.ESCALATED,
        "t-manual": Outcome.FAILURE,
    }  # fmt: skip


async def test_unserialisable_values_are_counted_not_raised(
    topics: SdkTopics, caplog: pytest.LogCaptureFixture
) -> None:
    async with CostReporter(topics.bootstrap, team="t", workflow="w", topic=topics.events) as reporter:
        with reporter.task("t-nan") as run:
            run.tool_call("x", cost_usd=float("nan"))
        assert await reporter.flush(30)
        assert reporter.stats.invalid == 1 and reporter.stats.sent == 2
    assert "could not be serialised" in caplog.text


async def test_values_of_the_wrong_type_are_refused_where_they_are_reported(
    topics: SdkTopics, caplog: pytest.LogCaptureFixture
) -> None:
    """What the server would dead-letter (a bool or a string for a number, 3.0 for an integer) is
    counted as invalid and named in the log; nothing of it reaches Kafka."""
    reporter = CostReporter(topics.bootstrap, team="t", workflow="w", topic=topics.events, log_interval_s=0)
    async with reporter:
        with reporter.task("t-types") as run:
            run.tool_call("x", cost_usd=True)
            run.tool_call("x", cost_usd="0.5")  # type: ignore[arg-type]
            run.model_call("m", input_tokens=12.0)  # type: ignore[arg-type]
            run.model_call("m", input_tokens=12, output_tokens=3, attempt="2")  # type: ignore[arg-type]
            run.tool_call("x", cost_usd=1)
        assert await reporter.flush(30)
        assert (reporter.stats.invalid, reporter.stats.sent) == (4, 3)
    events = validated(await topics.events_read())
    assert [(e.kind.value, e.cost_usd) for e in events] == [
        ("task_started", None), ("step", 1.0), ("task_finished", None)
    ]  # fmt: skip
    for clause in ("cost_usd: a number, not bool", "cost_usd: a number, not str", "input_tokens: an integer, not float",
                   "attempt: an integer, not str"):  # fmt: skip
        assert clause in caplog.text


async def test_broker_unreachable_agent_keeps_running_bounded_then_delivers(
    topics: SdkTopics, caplog: pytest.LogCaptureFixture
) -> None:
    """Kafka down when the agent starts: every report returns at once, the buffer stops at its bound,
    drops are counted and logged; once Kafka answers, what was buffered is delivered."""
    caplog.set_level(logging.WARNING, logger="burnguard_sdk")
    forwarder = TcpForwarder(free_port(), topics.bootstrap)
    reporter = CostReporter(f"127.0.0.1:{forwarder.port}", team="t", workflow="w", topic=topics.events,
                            max_buffered=50, reconnect_backoff_s=(0.1, 0.5))  # fmt: skip
    await reporter.start()
    try:
        with reporter.task("t-down") as run:
            for i in range(200):
                run.tool_call("loop", cost_usd=0.001, attributes={"i": i})
        stats = reporter.stats
        assert stats.reported == 202 and stats.buffered == 50 and stats.dropped == 152 and stats.sent == 0
        assert not await reporter.flush(1.0)  # nothing can be delivered yet
        assert "events dropped: 1 in total" in caplog.text  # the first drop is logged at once
        assert "cannot reach Kafka" in caplog.text

        await forwarder.open()
        assert await reporter.flush(60)
        assert reporter.stats.sent == 50
    finally:
        await reporter.close()
        await forwarder.close()
    events = validated(await topics.events_read())
    assert len(events) == 50 and events[0].kind is EventKind.TASK_STARTED
    assert [e.attributes["i"] for e in events[1:] if e.attributes] == list(range(49))


async def test_close_with_kafka_down_reports_what_was_lost(caplog: pytest.LogCaptureFixture) -> None:
    reporter = CostReporter(f"127.0.0.1:{free_port()}", team="t", workflow="w", max_buffered=10)
    await reporter.start()
    with reporter.task("t-lost") as run:
        run.tool_call("x")
    await reporter.close(timeout_s=0.5)
    assert "3 cost event(s) not delivered before close" in caplog.text
    reporter.task("after-close").tool_call("y")  # after close: dropped and counted, never raised
    assert reporter.stats.dropped == 1


def test_sync_reporter_from_several_threads(topics: SdkTopics) -> None:
    with SyncCostReporter(topics.bootstrap, team="t", workflow="w", topic=topics.events) as reporter:

        def agent(n: int) -> None:
            with reporter.task(f"sync-{n}") as run:
                for _ in range(25):
                    run.model_call("gpt-4o-mini", provider="openai", input_tokens=10, output_tokens=10)

        threads = [threading.Thread(target=agent, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert reporter.flush(30)
        assert reporter.stats.sent == 4 * 27

    events = validated(asyncio.run(topics.events_read()))
    assert len(events) == 4 * 27 and len({e.event_id for e in events}) == 4 * 27
    for n in range(4):
        mine = [e for e in events if e.task_id == f"sync-{n}"]
        assert mine[0].kind is EventKind.TASK_STARTED and mine[-1].outcome is Outcome.SUCCESS


async def test_an_event_too_large_for_kafka_is_dropped_and_counted_the_rest_delivered(
    topics: SdkTopics, caplog: pytest.LogCaptureFixture
) -> None:
    async with CostReporter(topics.bootstrap, team="t", workflow="w", topic=topics.events,
                            producer_options={"max_request_size": 2000}) as reporter:  # fmt: skip
        with reporter.task("t-big") as run:
            run.tool_call("x" * 3000)
        assert await reporter.flush(30)
        assert reporter.stats.invalid == 1 and reporter.stats.sent == 2
    assert "too large for Kafka" in caplog.text
    assert [e.kind for e in validated(await topics.events_read())] == [EventKind.TASK_STARTED, EventKind.TASK_FINISHED]
