from tests.burnguard_sdk.conftest import topics
from tests.streams.conftest import names, start_worker

__all__ = ["names", "start_worker", "topics"]
