"""burnguard: runtime cost governance for AI agents.

Cost events in, anomalies out, in event time: the same engine runs over a file (``burnguard
replay``), on the embedded demo fleet (``burnguard demo``) and under Kafka (``burnguard worker``).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
