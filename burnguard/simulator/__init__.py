"""Built-in fleet simulator: a deterministic fleet of AI agents emitting cost events, with injected
incidents whose ground truth is known.

>>> from burnguard.simulator import FleetSimulator
>>> sim = FleetSimulator(seed=7, hours=48.0)
>>> sorted(i.kind for i in sim.incidents)[:2]
['retry_storm', 'routing_regression']
"""

from burnguard.simulator.fleet import DEFAULT_START_TS, FleetSimulator
from burnguard.simulator.incidents import DEFAULT_INCIDENTS, INCIDENT_KINDS, Incident
from burnguard.simulator.jsonl import format_ts, write_jsonl
from burnguard.simulator.profiles import (
    DEFAULT_WORKFLOWS,
    MODEL_PRICES,
    ModelPrice,
    ToolSpec,
    WorkflowProfile,
)

__all__ = [
    "DEFAULT_INCIDENTS",
    "DEFAULT_START_TS",
    "DEFAULT_WORKFLOWS",
    "INCIDENT_KINDS",
    "MODEL_PRICES",
    "FleetSimulator",
    "Incident",
    "ModelPrice",
    "ToolSpec",
    "WorkflowProfile",
    "format_ts",
    "write_jsonl",
]
