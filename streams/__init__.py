"""The Kafka pipeline on Faust: the only package that imports ``faust``.

``create_app(settings)`` builds the app (:mod:`streams.app`); :mod:`streams.pipeline` holds what
its agents do, :mod:`streams.ordering` how each engine gets its workflows' events in event-time
order, :mod:`streams.state` how an engine's state survives a crash, :mod:`streams.rollup` how
tenant- and team-level burn rates are judged over every partition's spend (wired by
:mod:`streams.rollup_stage`), :mod:`streams.dlq` the dead-letter records, :mod:`streams.topics`
the topics, :mod:`streams.settings` the settings.
"""

from streams.app import create_app
from streams.dlq import DEAD_LETTER_SCHEMA, dead_letter
from streams.ordering import EventTimeMerge
from streams.pipeline import TASK_SUMMARY_SCHEMA, DetectionPipeline, Record, Watermark, route, task_summary
from streams.settings import SettingsError, StreamSettings
from streams.state import PartitionState, workflow_key
from streams.topics import BrokerUnreachable, ensure_topics, partition_for_key, topic_specs

__all__ = [
    "DEAD_LETTER_SCHEMA",
    "TASK_SUMMARY_SCHEMA",
    "BrokerUnreachable",
    "DetectionPipeline",
    "EventTimeMerge",
    "PartitionState",
    "Record",
    "SettingsError",
    "StreamSettings",
    "Watermark",
    "create_app",
    "dead_letter",
    "ensure_topics",
    "partition_for_key",
    "route",
    "task_summary",
    "topic_specs",
    "workflow_key",
]
