from tests.burnguard_sdk.conftest import topics

__all__ = ["topics"]
