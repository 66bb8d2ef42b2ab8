"""burnguard's agent-side SDK: report cost events and obey signed kill commands.

Needs only ``aiokafka`` and ``pydantic``. :class:`CostReporter` publishes the contract's cost events
(CONTRACT §1) without hand-written JSON and without ever blocking the agent; :class:`KillSwitchListener`
halts the guarded work when a valid, signed, unexpired kill command (CONTRACT §3) names it, and
acknowledges. :class:`SyncCostReporter` and :class:`SyncKillSwitchListener` serve synchronous agents.
"""

from burnguard_sdk.book import Reason
from burnguard_sdk.commands import KillAck, KillCommand, KillMode, KillScope, KillTarget, canonical_json
from burnguard_sdk.guards import Guard, Halted
from burnguard_sdk.keys import KillKeys, load_kill_keys
from burnguard_sdk.listener import KillSwitchListener, Rejection
from burnguard_sdk.reporter import CostReporter, ReporterStats
from burnguard_sdk.sync import SyncCostReporter, SyncKillSwitchListener
from burnguard_sdk.tasks import TaskRun

__all__ = [
    "CostReporter",
    "Guard",
    "Halted",
    "KillAck",
    "KillCommand",
    "KillKeys",
    "KillMode",
    "KillScope",
    "KillSwitchListener",
    "KillTarget",
    "Reason",
    "Rejection",
    "ReporterStats",
    "SyncCostReporter",
    "SyncKillSwitchListener",
    "TaskRun",
    "canonical_json",
    "load_kill_keys",
]
