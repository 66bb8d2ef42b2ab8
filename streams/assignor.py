"""One active member per consumer group: every partition to the member that held them.

The alerting stage groups anomalies across all partitions of the anomalies topic, so one member
must see them all. Kafka's group protocol still gives failover: a second member is a standby that
gets everything when the active one leaves or its session times out. The choice is sticky (the
member that held the partitions says so in its join metadata), so a standby joining moves nothing.

>>> from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata as Meta
>>> class Cluster:
...     def partitions_for_topic(self, topic): return {0, 1, 2}
>>> held = one_active_assignor(lambda: True).metadata(["a"])
>>> fresh = one_active_assignor(lambda: False).metadata(["a"])
>>> out = one_active_assignor(lambda: False).assign(Cluster(), {"m-1": fresh, "m-2": held})
>>> out["m-2"].assignment, out["m-1"].assignment
([('a', [0, 1, 2])], [])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

__all__ = ["one_active_assignor"]

_ACTIVE = b"burnguard-alerter:active"


def one_active_assignor(holding: Callable[[], bool]) -> type[AbstractPartitionAssignor]:
    """An assignor that gives every partition to one member: the one whose ``holding()`` said it held
    them at its last assignment (sticky, so a standby joining takes nothing), else the first by id."""

    class OneActiveAssignor(AbstractPartitionAssignor):
        name = "burnguard-one-active"
        version = 0

        @classmethod
        def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
            return ConsumerProtocolMemberMetadata(cls.version, list(topics), _ACTIVE if holding() else b"")

        @classmethod
        def assign(
            cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
        ) -> dict[str, ConsumerProtocolMemberAssignment]:
            chosen = min(members, key=lambda m: (members[m].user_data != _ACTIVE, m))
            topics = sorted({t for meta in members.values() for t in meta.subscription})
            owned = [(t, sorted(cluster.partitions_for_topic(t) or ())) for t in topics]
            return {
                m: ConsumerProtocolMemberAssignment(cls.version, owned if m == chosen else [], b"") for m in members
            }

        @classmethod
        def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
            return None

    return OneActiveAssignor
