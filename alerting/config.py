"""Alerting configuration: the route tree, receivers, grouping timers, inhibit rules, channels.

A YAML file validated by pydantic; every error names its location (``route.routes.0.receiver``).
Durations are seconds or strings such as ``30s``, ``5m``, ``4h``, ``1h30m``. Secrets are written
``{env: NAME}`` or ``{file: PATH}`` (see :mod:`alerting.secrets`).

.. code-block:: yaml

    route:
      receiver: finops
      group_by: [workflow, detector]
      routes:
        - match: {severity: critical}
          receiver: oncall
          group_wait: 10s
          continue: true
    receivers:
      - name: finops
        slack: {channel: "#agent-spend"}
      - name: oncall
        slack: {channel: "#oncall"}
        pagerduty: {routing_key: {env: BURNGUARD_PD_ROUTING_KEY}}
    slack:
      token: {env: BURNGUARD_SLACK_TOKEN}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from alerting.matchers import LABEL_NAMES, Matchers
from alerting.secrets import secret_from_config
from detectors.config import ConfigError, load_yaml_model

__all__ = [
    "AlertingConfig",
    "ConfigError",
    "InhibitRule",
    "PagerDutyReceiver",
    "PagerDutySettings",
    "ReceiverConfig",
    "RetrySettings",
    "RouteConfig",
    "SlackReceiver",
    "SlackSettings",
    "default_alerting_config",
    "load_alerting_config",
    "parse_duration",
]

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a ``1h30m``-style string.

    >>> parse_duration("1h30m"), parse_duration("30s"), parse_duration(5)
    (5400.0, 30.0, 5.0)
    """
    if isinstance(value, bool):
        raise ValueError("a duration is seconds or a string like 30s, 5m, 4h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and (m := _DURATION.fullmatch(value.strip())):
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = 3600 * h + 60 * mi + s
    else:
        raise ValueError(f"not a duration: {value!r} (seconds, or a string like 30s, 5m, 4h)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Secret = Annotated[SecretStr, BeforeValidator(secret_from_config)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteConfig(Matchers):
    """A node of the route tree; unset fields inherit from the parent (the root sets the defaults)."""

    receiver: str | None = None
    group_by: tuple[str, ...] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = Field(default=None, gt=0)
    repeat_interval: Duration | None = Field(default=None, gt=0)
    continue_: bool = Field(default=False, alias="continue")
    routes: tuple[RouteConfig, ...] = ()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _group_labels(self) -> RouteConfig:
        unknown = sorted(set(self.group_by or ()) - set(LABEL_NAMES))
        if unknown:
            raise ValueError(f"group_by: unknown label(s) {unknown}; known: {list(LABEL_NAMES)}")
        return self


class SlackReceiver(_Strict):
    channel: str = Field(min_length=1, max_length=80, description="channel id (C0123…) or #name")


class PagerDutyReceiver(_Strict):
    routing_key: Secret = Field(description="Events API v2 integration key, from {env: …} or {file: …}")


class ReceiverConfig(_Strict):
    """Who gets a group's notifications: a Slack channel, a PagerDuty service, or both."""

    name: str = Field(min_length=1, max_length=64)
    slack: SlackReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    send_resolved: bool = True


class InhibitRule(_Strict):
    """While a firing anomaly matches ``source``, anomalies matching ``target`` with the same
    values of the ``equal`` labels are not notified (the source explains them)."""

    source: Matchers
    target: Matchers
    equal: tuple[str, ...] = ("tenant", "workflow", "root_task_id")

    @model_validator(mode="after")
    def _equal_labels(self) -> InhibitRule:
        unknown = sorted(set(self.equal) - set(LABEL_NAMES))
        if unknown:
            raise ValueError(f"equal: unknown label(s) {unknown}")
        return self


#: A critical anomaly, or one whose action is a kill, hides the warnings and notices it explains.
_EXPLAINED = Matchers(match_re={"severity": "warning|info"})
DEFAULT_INHIBIT_RULES = (
    InhibitRule(source=Matchers(match={"severity": "critical"}), target=_EXPLAINED),
    InhibitRule(source=Matchers(match={"action": "kill"}), target=_EXPLAINED),
)


class SlackSettings(_Strict):
    token: Secret | None = Field(default=None, description="bot token (xoxb-…), from {env: …} or {file: …}")
    base_url: str = "https://slack.com/api/"
    timeout_s: int = Field(default=10, ge=1, le=120)
    messages_per_s: float = Field(default=1.0, gt=0, description="per channel (Slack allows about 1/s)")


class PagerDutySettings(_Strict):
    base_url: str = Field(default="https://events.pagerduty.com", pattern=r"^https://")
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    events_per_minute: float = Field(default=120.0, gt=0, description="per routing key")
    source: str = Field(default="burnguard", min_length=1, max_length=255)
    ca_file: str | None = Field(
        default=None, description="a CA bundle (PEM) to trust instead of the system's: a TLS proxy, a test server"
    )


class RetrySettings(_Strict):
    """The one retry stage: exponential backoff with jitter, ``Retry-After`` honoured up to a cap."""

    initial_backoff_s: float = Field(default=1.0, gt=0)
    max_backoff_s: float = Field(default=60.0, gt=0)
    max_retry_after_s: float = Field(default=300.0, gt=0)
    max_elapsed_s: float = Field(default=900.0, gt=0, description="give up (permanent failure) after this")


class AlertingConfig(_Strict):
    route: RouteConfig = Field(default_factory=lambda: RouteConfig(receiver="console"))
    receivers: tuple[ReceiverConfig, ...] = (ReceiverConfig(name="console"),)
    inhibit_rules: tuple[InhibitRule, ...] = DEFAULT_INHIBIT_RULES
    slack: SlackSettings = Field(default_factory=SlackSettings)
    pagerduty: PagerDutySettings = Field(default_factory=PagerDutySettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    dedup_ttl: Duration = Field(default=86_400.0, gt=0, description="how long a seen anomaly state is remembered")
    links: dict[str, str] = Field(
        default_factory=dict, description="name -> URL template with {workflow}, {anomaly_id}, … placeholders"
    )

    @model_validator(mode="after")
    def _consistent(self) -> AlertingConfig:
        names = [r.name for r in self.receivers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"receivers: duplicate name(s) {duplicated}")
        if self.route.receiver is None:
            raise ValueError("route.receiver: the root route needs a receiver (the default)")
        if not self.route.empty:
            raise ValueError("route: the root route matches everything; put match/match_re on child routes")

        def check(node: RouteConfig, where: str) -> None:
            if node.receiver is not None and node.receiver not in names:
                raise ValueError(f"{where}.receiver: unknown receiver {node.receiver!r}; known: {names}")
            for i, child in enumerate(node.routes):
                check(child, f"{where}.routes.{i}")

        check(self.route, "route")
        if any(r.slack for r in self.receivers) and self.slack.token is None:
            raise ValueError("slack.token: a receiver posts to Slack, so a token is needed ({env: …} or {file: …})")
        return self

    def receiver(self, name: str) -> ReceiverConfig:
        return next(r for r in self.receivers if r.name == name)


def default_alerting_config() -> AlertingConfig:
    """The built-in routing: every finding posts to Slack (grouped: ``group_wait`` 30 s), and
    critical ones page PagerDuty at once (``group_wait`` 0: a kill halts its task within seconds,
    and the resolution that follows must not hide the kill from on-call).

    Its receivers, named ``slack`` and ``pagerduty`` for the channel each stands for, have no
    channel settings: nothing leaves the machine, the console receiver prints what would be sent.
    """
    return AlertingConfig(
        route=RouteConfig(
            receiver="slack",
            routes=(
                RouteConfig.model_validate(
                    {"match": {"severity": "critical"}, "receiver": "pagerduty", "group_wait": 0, "continue": True}
                ),
                RouteConfig(receiver="slack"),  # every finding, critical ones included, in one Slack thread
            ),
        ),
        receivers=(ReceiverConfig(name="slack"), ReceiverConfig(name="pagerduty")),
    )


def load_alerting_config(path: str | Path | None) -> AlertingConfig:
    """Read and validate the alerting YAML; ``None`` gives the built-in dry run
    (:func:`default_alerting_config`)."""
    if path is None:
        return default_alerting_config()
    return load_yaml_model(path, AlertingConfig, "route, receivers, …")
