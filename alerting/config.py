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
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator, model_validator

from alerting.matchers import LABEL_NAMES, Matchers
from alerting.secrets import secret_from_config
from detectors.config_file import ConfigError, consistency_error, known_names, load_yaml_model, suggest

__all__ = [
    "ALERTING_KEYS",
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
    "alerting_problems",
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


def _labels(names: tuple[str, ...]) -> tuple[str, ...]:
    return known_names("label", names, LABEL_NAMES)


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

    @field_validator("group_by")
    @classmethod
    def _group_labels(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _labels(value) if value is not None else None


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

    @field_validator("equal")
    @classmethod
    def _equal_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _labels(value)


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
        found = alerting_problems(self.model_dump(by_alias=True))
        if found:
            raise consistency_error(found)
        return self

    def receiver(self, name: str) -> ReceiverConfig:
        return next(r for r in self.receivers if r.name == name)


def alerting_problems(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The checks across fields, on the raw mapping (so they are made even when a field is bad):
    receiver names unique, every route's receiver defined, a root route with a receiver and no
    matchers, a Slack token when a receiver posts to Slack."""
    out: list[tuple[str, str]] = []
    receivers = [r for r in _items(raw.get("receivers", ())) if isinstance(r, Mapping)]
    names = [str(r["name"]) for r in receivers if isinstance(r.get("name"), str)]
    if "receivers" not in raw:
        names = ["console"]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        out.append(("receivers", f"the name(s) {', '.join(map(repr, duplicated))} are used more than once"))
    root = raw.get("route", {"receiver": "console"})
    if isinstance(root, Mapping):
        if root.get("receiver") is None:
            out.append(("route.receiver", "the root route needs a receiver: it gets what no child route takes"))
        if root.get("match") or root.get("match_re"):
            out.append(("route", "the root route matches everything: put match and match_re on its child routes"))

        def check(node: Mapping[str, Any], where: str) -> None:
            receiver = node.get("receiver")
            if isinstance(receiver, str) and receiver not in names:
                out.append(
                    (
                        f"{where}.receiver",
                        f"unknown receiver {receiver!r}{suggest(receiver, names)}; "
                        f"defined: {', '.join(dict.fromkeys(names)) or 'none'}",
                    )
                )
            for i, child in enumerate(_items(node.get("routes", ()))):
                if isinstance(child, Mapping):
                    check(child, f"{where}.routes.{i}")

        check(root, "route")
    slack = raw.get("slack")
    token = slack.get("token") if isinstance(slack, Mapping) else None
    if any(r.get("slack") for r in receivers) and token is None:
        out.append(("slack.token", "a receiver posts to Slack, so a bot token is needed ({env: NAME} or {file: PATH})"))
    return out


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


#: the top-level keys of an alerting config
ALERTING_KEYS = ("route", "receivers", "inhibit_rules", "slack", "pagerduty", "retry", "dedup_ttl", "links")


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
    return load_yaml_model(path, AlertingConfig, ", ".join(ALERTING_KEYS), problems=alerting_problems)
