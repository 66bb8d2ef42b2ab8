"""The kill switch's per-test topic names and the test workers' kill key (``conftest.Names.env`` sets them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: the kill key of every test worker (a test of a worker without a key removes it)
TEST_KILL_KEY = "test-kill-key-4f1c"


@dataclass(frozen=True)
class KillTopics:
    killswitch: str
    acks: str
    proposals: str
    internal: str

    @classmethod
    def of(cls, names: Any) -> KillTopics:
        """The topics of a test (``names``: its :class:`~tests.streams.conftest.Names`)."""
        app_id = names if isinstance(names, str) else names.app_id
        return cls(
            f"{app_id}-killswitch", f"{app_id}-killswitch-acks", f"{app_id}-kill-proposals", f"{app_id}-kill-issued"
        )


def kill_env(app_id: str) -> dict[str, str]:
    """The ``BURNGUARD_*`` settings of a test worker's kill switch: its own topics, the test key."""
    t = KillTopics.of(app_id)
    return {
        "BURNGUARD_KILLSWITCH_TOPIC": t.killswitch,
        "BURNGUARD_KILL_ACKS_TOPIC": t.acks,
        "BURNGUARD_KILL_PROPOSALS_TOPIC": t.proposals,
        "BURNGUARD_KILL_INTERNAL_TOPIC": t.internal,
        "BURNGUARD_KILL_KEYS": TEST_KILL_KEY,
    }
