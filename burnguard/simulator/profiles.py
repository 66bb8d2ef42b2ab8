"""Price table and per-workflow behaviour profiles of the simulated fleet.

All prices are list prices in USD per one million tokens (as published by the providers in 2025,
matching the ``genai-prices`` catalog for prompts under 200k tokens). Rates are tasks per hour,
durations are milliseconds unless a name says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "CODE_FIX",
    "DEFAULT_WORKFLOWS",
    "EMBEDDING_MODEL",
    "MODEL_PRICES",
    "ModelPrice",
    "ToolSpec",
    "WorkflowProfile",
    "activity",
    "model_price",
    "workflow_profile",
]


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """List price of one model, in USD per 1M tokens, and its rough serving speed."""

    name: str
    provider: str
    input_per_mtok: float
    cached_input_per_mtok: float
    output_per_mtok: float
    context_window: int = 200_000
    first_token_ms: int = 600
    tokens_per_s: float = 80.0

    def cost_usd(self, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float:
        """Cost in USD of one call; ``input_tokens`` includes the cached ones.

        >>> round(MODEL_PRICES["gpt-4o-mini"].cost_usd(1_000_000, 0, 1_000_000), 2)
        0.75
        """
        uncached = input_tokens - cached_input_tokens
        usd = (
            uncached * self.input_per_mtok
            + cached_input_tokens * self.cached_input_per_mtok
            + output_tokens * self.output_per_mtok
        ) / 1_000_000
        return round(usd, 8)


# fmt: off
MODEL_PRICES: dict[str, ModelPrice] = {
    m.name: m
    for m in (
        ModelPrice("gpt-4o-mini", "openai", 0.15, 0.075, 0.60, 128_000, 400, 90.0),
        ModelPrice("gpt-4o", "openai", 2.50, 1.25, 10.00, 128_000, 500, 70.0),
        ModelPrice("gpt-4.1", "openai", 2.00, 0.50, 8.00, 1_000_000, 500, 70.0),
        ModelPrice("gpt-4.1-mini", "openai", 0.40, 0.10, 1.60, 1_000_000, 400, 90.0),
        ModelPrice("o3", "openai", 2.00, 0.50, 8.00, 200_000, 2500, 60.0),
        ModelPrice("claude-sonnet-4", "anthropic", 3.00, 0.30, 15.00, 200_000, 1100, 60.0),
        ModelPrice("claude-opus-4", "anthropic", 15.00, 1.50, 75.00, 200_000, 1600, 35.0),
        ModelPrice("claude-3-5-haiku", "anthropic", 0.80, 0.08, 4.00, 200_000, 500, 100.0),
        ModelPrice("gemini-2.5-flash", "google", 0.30, 0.03, 2.50, 1_000_000, 500, 150.0),
        ModelPrice("gemini-2.5-pro", "google", 1.25, 0.125, 10.00, 200_000, 1500, 80.0),
        ModelPrice("text-embedding-3-small", "openai", 0.02, 0.02, 0.0, 8_192, 60, 1e9),
    )
}
# fmt: on

EMBEDDING_MODEL = "text-embedding-3-small"


def model_price(name: str) -> ModelPrice:
    """The price entry of ``name``; ``KeyError`` for a model not in :data:`MODEL_PRICES`."""
    return MODEL_PRICES[name]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool an agent calls: a fixed USD cost per call, an error probability, a median latency."""

    name: str
    cost_usd: float = 0.0
    error_rate: float = 0.005
    duration_ms: int = 400
    output_tokens: int = 300  # median tokens the tool's answer adds to the agent's context


@dataclass(frozen=True, slots=True)
class WorkflowProfile:
    """How one workflow behaves. Token counts are per call, rates are tasks per hour at the daily peak."""

    name: str
    tenant: str
    team: str
    agent: str
    model: str
    tasks_per_hour: float
    utc_offset_hours: float  # tenant's local time, drives the daily rhythm
    night_share: float  # arrival rate at night as a share of the business-hours peak
    calls_median: float  # model calls per task: lognormal median ...
    calls_sigma: float  # ... and log-space standard deviation
    max_calls: int
    prompt_tokens: int  # context of the first model call
    output_median: int
    output_sigma: float
    tools: tuple[ToolSpec, ...]
    tool_share: float  # probability that a model call is followed by a tool call
    cache_hit: float  # probability that the previous context is served from the prompt cache
    think_ms: int  # median framework/agent overhead between two calls
    error_rate: float  # probability that a model call's answer is rejected and retried
    success_rate: float
    regression_model: str  # where a routing regression sends this workflow's calls
    retrieval: bool = False
    guardrail: bool = False
    human_review_rate: float = 0.0  # share of root tasks sent to a person ($2-$12 each)
    subagent_share: float = 0.0  # share of root tasks that spawn 1-3 sub-agents
    subagent_model: str | None = None
    budget_usd: float | None = None  # a ceiling set above normal tasks (human review included)
    value_usd: float | None = None  # business value of one successful outcome
    compute_name: str = "serverless-fn"
    compute_usd_per_hour: float = 0.02
    observability_name: str = "langfuse"
    trigger: str = "user"
    prompt_version: str = "v1"

    @property
    def max_context(self) -> int:
        """Largest prompt in tokens the agent sends before it compacts its history."""
        return int(model_price(self.model).context_window * 0.9)


def _tool(name: str, cost: float = 0.0, err: float = 0.005, ms: int = 400, out: int = 300) -> ToolSpec:
    return ToolSpec(name, cost, err, ms, out)


# fmt: off
# The coding agent is calibrated against the mini-swe-agent SWE-bench trace in /work/shared/data:
# median call ~$0.009, ~36 calls and ~4 minutes per task, ~3% rejected answers.
CODE_FIX = WorkflowProfile(
    name="code-fix", tenant="initech", team="platform", agent="swe-agent", model="claude-sonnet-4",
    tasks_per_hour=24.0, utc_offset_hours=-8.0, night_share=0.25,
    calls_median=34.0, calls_sigma=0.5, max_calls=150, prompt_tokens=2_200,
    output_median=95, output_sigma=1.1,
    tools=(_tool("bash", 0.0, 0.002, 900, 380),), tool_share=0.95, cache_hit=0.9, think_ms=1_800,
    error_rate=0.03, success_rate=0.72, regression_model="claude-opus-4",
    budget_usd=12.0, compute_name="sandbox-vm", compute_usd_per_hour=0.10, trigger="ci", prompt_version="v12",
)

DEFAULT_WORKFLOWS: tuple[WorkflowProfile, ...] = (
    WorkflowProfile(
        name="support-triage", tenant="acme-retail", team="support", agent="triage-bot", model="gpt-4o-mini",
        tasks_per_hour=110.0, utc_offset_hours=-5.0, night_share=0.12,
        calls_median=4.0, calls_sigma=0.4, max_calls=20, prompt_tokens=2_500,
        output_median=160, output_sigma=0.6,
        tools=(_tool("ticket_api", 0.0, 0.004, 250, 400), _tool("order_lookup", 0.0, 0.004, 300, 350)),
        tool_share=0.7, cache_hit=0.5, think_ms=300, error_rate=0.015, success_rate=0.9,
        regression_model="gpt-4.1", retrieval=True, guardrail=True, value_usd=1.2, prompt_version="v31",
    ),
    WorkflowProfile(
        name="refund-agent", tenant="acme-retail", team="support", agent="refund-agent",
        model="claude-sonnet-4", tasks_per_hour=20.0, utc_offset_hours=-5.0, night_share=0.1,
        calls_median=6.0, calls_sigma=0.5, max_calls=30, prompt_tokens=3_500,
        output_median=220, output_sigma=0.6,
        tools=(_tool("order_api", 0.0, 0.005, 300, 450), _tool("payments_api", 0.0, 0.01, 700, 200)),
        tool_share=0.8, cache_hit=0.7, think_ms=400, error_rate=0.02, success_rate=0.85,
        regression_model="claude-opus-4", guardrail=True, human_review_rate=0.03,
        budget_usd=20.0, value_usd=4.0, prompt_version="v8",
    ),
    WorkflowProfile(
        name="lead-enrichment", tenant="acme-retail", team="growth", agent="enricher",
        model="gemini-2.5-flash",
        tasks_per_hour=45.0, utc_offset_hours=-5.0, night_share=0.3,
        calls_median=5.0, calls_sigma=0.5, max_calls=25, prompt_tokens=1_800,
        output_median=300, output_sigma=0.7,
        tools=(_tool("crm_api", 0.0, 0.01, 350, 500), _tool("web_search", 0.005, 0.01, 1_200, 900),
               _tool("company_db", 0.002, 0.005, 200, 400)),
        tool_share=0.9, cache_hit=0.3, think_ms=300, error_rate=0.01, success_rate=0.88,
        regression_model="gemini-2.5-pro", value_usd=0.8, trigger="webhook", prompt_version="v5",
    ),
    WorkflowProfile(
        name="kyc-review", tenant="northwind-bank", team="compliance", agent="kyc-checker", model="gpt-4.1",
        tasks_per_hour=22.0, utc_offset_hours=1.0, night_share=0.08,
        calls_median=8.0, calls_sigma=0.4, max_calls=30, prompt_tokens=4_000,
        output_median=350, output_sigma=0.5,
        tools=(_tool("document_ocr", 0.0015, 0.01, 2_500, 1_200),
               _tool("sanctions_screening", 0.03, 0.005, 800, 300)),
        tool_share=0.6, cache_hit=0.6, think_ms=500, error_rate=0.02, success_rate=0.8,
        regression_model="o3", guardrail=True, human_review_rate=0.05, budget_usd=20.0,
        compute_name="k8s-pod", compute_usd_per_hour=0.05, prompt_version="v3",
    ),
    WorkflowProfile(
        name="research-assistant", tenant="northwind-bank", team="research", agent="research-lead",
        model="claude-sonnet-4", tasks_per_hour=9.0, utc_offset_hours=1.0, night_share=0.05,
        calls_median=12.0, calls_sigma=0.6, max_calls=60, prompt_tokens=3_000,
        output_median=400, output_sigma=0.8,
        tools=(_tool("web_search", 0.005, 0.01, 1_200, 900), _tool("fetch_url", 0.0, 0.03, 1_500, 2_000),
               _tool("python", 0.0, 0.02, 2_000, 300)),
        tool_share=0.8, cache_hit=0.8, think_ms=600, error_rate=0.015, success_rate=0.85,
        regression_model="claude-opus-4", retrieval=True, subagent_share=0.6,
        subagent_model="claude-3-5-haiku",
        budget_usd=10.0, compute_name="k8s-pod", compute_usd_per_hour=0.05, prompt_version="v4",
    ),
    WorkflowProfile(
        name="report-writer", tenant="northwind-bank", team="research", agent="report-writer",
        model="gemini-2.5-pro", tasks_per_hour=6.0, utc_offset_hours=1.0, night_share=0.05,
        calls_median=6.0, calls_sigma=0.4, max_calls=20, prompt_tokens=6_000,
        output_median=1_500, output_sigma=0.5,
        tools=(_tool("chart_render", 0.0, 0.01, 1_500, 100),),
        tool_share=0.3, cache_hit=0.5, think_ms=500, error_rate=0.01, success_rate=0.9,
        regression_model="claude-opus-4", retrieval=True, human_review_rate=0.02, value_usd=25.0,
        prompt_version="v2",
    ),
    CODE_FIX,
    WorkflowProfile(
        name="pr-review", tenant="initech", team="platform", agent="pr-reviewer", model="gpt-4.1",
        tasks_per_hour=30.0, utc_offset_hours=-8.0, night_share=0.08,
        calls_median=5.0, calls_sigma=0.5, max_calls=20, prompt_tokens=6_000,
        output_median=450, output_sigma=0.6,
        tools=(_tool("github_api", 0.0, 0.005, 350, 1_500),),
        tool_share=0.7, cache_hit=0.6, think_ms=300, error_rate=0.01, success_rate=0.95,
        regression_model="o3", guardrail=False, trigger="webhook", prompt_version="v6",
    ),
    WorkflowProfile(
        name="sql-analyst", tenant="initech", team="data", agent="sql-analyst", model="gpt-4.1-mini",
        tasks_per_hour=16.0, utc_offset_hours=-8.0, night_share=0.1,
        calls_median=6.0, calls_sigma=0.5, max_calls=25, prompt_tokens=3_000,
        output_median=250, output_sigma=0.6,
        tools=(_tool("warehouse_query", 0.004, 0.03, 3_000, 600),),
        tool_share=0.7, cache_hit=0.6, think_ms=400, error_rate=0.02, success_rate=0.85,
        regression_model="gpt-4.1", compute_name="warehouse-session", compute_usd_per_hour=0.6,
        prompt_version="v9",
    ),
    WorkflowProfile(
        name="doc-qa", tenant="initech", team="data", agent="docs-bot", model="gpt-4o-mini",
        tasks_per_hour=60.0, utc_offset_hours=-8.0, night_share=0.15,
        calls_median=2.0, calls_sigma=0.3, max_calls=8, prompt_tokens=1_500,
        output_median=250, output_sigma=0.5,
        tools=(), tool_share=0.0, cache_hit=0.4, think_ms=200, error_rate=0.01, success_rate=0.93,
        regression_model="gpt-4.1", retrieval=True, guardrail=True, prompt_version="v14",
    ),
)

# Business-day shape by local hour: share of the peak arrival rate (before applying night_share).
_HOURLY_SHAPE: tuple[float, ...] = (
    0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.15, 0.35, 0.65, 0.9, 1.0, 1.0,
    0.85, 0.95, 1.0, 1.0, 0.9, 0.7, 0.5, 0.35, 0.25, 0.15, 0.08, 0.03,
)
# fmt: on
_WEEKEND_FACTOR = 0.35


def activity(ts: float, utc_offset_hours: float, night_share: float) -> float:
    """Arrival rate at epoch ``ts`` as a share (0..1] of the business-hours peak.

    Business hours of a weekday give 1.0, the middle of the night gives ``night_share``; the
    daytime bump is 35 % as high on Saturday and Sunday.

    >>> round(activity(1793620800.0, -5.0, 0.1), 3)  # Monday 2026-11-02 12:00 UTC = 07:00 in UTC-5
    0.415
    """
    local = ts / 3600.0 + utc_offset_hours
    hour = local % 24.0
    day = math.floor(local / 24.0)
    i = int(hour)
    frac = hour - i
    shape = _HOURLY_SHAPE[i] * (1.0 - frac) + _HOURLY_SHAPE[(i + 1) % 24] * frac
    if (day + 3) % 7 >= 5:  # 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays
        shape *= _WEEKEND_FACTOR
    return night_share + (1.0 - night_share) * shape


def workflow_profile(
    name: str, workflows: tuple[WorkflowProfile, ...] = DEFAULT_WORKFLOWS
) -> WorkflowProfile:
    """The profile called ``name`` among ``workflows``."""
    for wf in workflows:
        if wf.name == name:
            return wf
    raise KeyError(name)
