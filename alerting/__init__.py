"""On-call alerting: anomalies routed, grouped, deduplicated, silenced and inhibited, then delivered.

Transport-free core (no Kafka, no faust): :class:`AlertPipeline` turns anomalies into
:class:`Notification` objects at the right time; the dispatcher delivers them through the channel
notifiers with the one retry stage.
"""

from alerting.config import AlertingConfig, load_alerting_config
from alerting.console import ConsoleReceiver, render_notification
from alerting.dispatch import DeliveryReport, Dispatcher
from alerting.matchers import Matchers, labels_of
from alerting.notifier import DeliveryError, Notification, Notifier
from alerting.pagerduty import PagerDutyNotifier
from alerting.pipeline import AlertPipeline
from alerting.retry import DeliveryOutcome, RetryStage, is_retryable
from alerting.silences import Silence, SilenceStore
from alerting.slack import SlackNotifier

__all__ = [
    "AlertPipeline",
    "AlertingConfig",
    "ConsoleReceiver",
    "DeliveryError",
    "DeliveryOutcome",
    "DeliveryReport",
    "Dispatcher",
    "Matchers",
    "Notification",
    "Notifier",
    "PagerDutyNotifier",
    "RetryStage",
    "Silence",
    "SilenceStore",
    "SlackNotifier",
    "is_retryable",
    "labels_of",
    "load_alerting_config",
    "render_notification",
]
