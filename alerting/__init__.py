"""On-call alerting: anomalies routed, grouped, deduplicated, silenced and inhibited, then delivered.

Transport-free core (no Kafka, no faust): :class:`AlertPipeline` turns anomalies into
:class:`Notification` objects at the right time; the dispatcher delivers them through the channel
notifiers with the one retry stage. The channels are registered in :mod:`alerting.channels` and keep
their state in one :class:`NotificationLog`; the :class:`Outbox` holds what is released and not yet
delivered everywhere.
"""

from alerting.channels import CHANNELS, build_channels
from alerting.config import AlertingConfig, load_alerting_config
from alerting.console import ConsoleReceiver, render_notification
from alerting.dispatch import DeliveryReport, Dispatcher
from alerting.matchers import Matchers, labels_of
from alerting.nflog import ChannelLog, LogEntry, NotificationLog
from alerting.notifier import ChannelSpec, DeliveryError, Notification, Notifier
from alerting.outbox import JournaledNotifier, Outbox
from alerting.pagerduty import PagerDutyNotifier
from alerting.pipeline import AlertPipeline
from alerting.retry import DeliveryOutcome, RetryStage, is_retryable
from alerting.silences import Silence, SilenceStore
from alerting.slack import SlackNotifier

__all__ = [
    "CHANNELS",
    "AlertPipeline",
    "AlertingConfig",
    "ChannelLog",
    "ChannelSpec",
    "ConsoleReceiver",
    "DeliveryError",
    "DeliveryOutcome",
    "DeliveryReport",
    "Dispatcher",
    "JournaledNotifier",
    "LogEntry",
    "Matchers",
    "Notification",
    "NotificationLog",
    "Notifier",
    "Outbox",
    "PagerDutyNotifier",
    "RetryStage",
    "Silence",
    "SilenceStore",
    "SlackNotifier",
    "build_channels",
    "is_retryable",
    "labels_of",
    "load_alerting_config",
    "render_notification",
]
