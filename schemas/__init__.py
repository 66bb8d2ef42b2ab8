"""Wire models of the burnguard contract (../shared/design/CONTRACT.md): plain pydantic v2."""

from schemas.anomaly import ANOMALY_SCHEMA, Action, Anomaly, AnomalyStatus, Severity, anomaly_id_for
from schemas.events import COST_EVENT_SCHEMA, Category, CostEvent, EventKind, Outcome, StepStatus
from schemas.killswitch import KillAck, KillCommand, KillMode, KillScope, KillTarget
from schemas.pricing import ModelPricer
from schemas.timefmt import format_ts, parse_ts

__all__ = [
    "ANOMALY_SCHEMA",
    "COST_EVENT_SCHEMA",
    "Action",
    "Anomaly",
    "AnomalyStatus",
    "Category",
    "CostEvent",
    "EventKind",
    "KillAck",
    "KillCommand",
    "KillMode",
    "KillScope",
    "KillTarget",
    "ModelPricer",
    "Outcome",
    "Severity",
    "StepStatus",
    "anomaly_id_for",
    "format_ts",
    "parse_ts",
]
