"""Online, event-time cost detectors and the engine that runs them. No I/O, no transport.

The public API: :class:`Engine` (events in, anomalies out), the configuration, and the detectors.
"""

from detectors.base import Detector, DetectorParams, Signal
from detectors.config import Autonomy, BurnguardConfig, ConfigError, load_config
from detectors.engine import Engine, EngineStats
from detectors.ledger import BUDGET_LINES, TaskState
from detectors.registry import PARAMS, SCOPE_DETECTOR, WORKFLOW_DETECTORS

__all__ = [
    "BUDGET_LINES",
    "PARAMS",
    "SCOPE_DETECTOR",
    "WORKFLOW_DETECTORS",
    "Autonomy",
    "BurnguardConfig",
    "ConfigError",
    "Detector",
    "DetectorParams",
    "Engine",
    "EngineStats",
    "Signal",
    "TaskState",
    "load_config",
]
