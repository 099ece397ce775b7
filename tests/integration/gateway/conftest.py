"""AWS for the gateway's S3 sources: fake credentials, moto answering every call (the same
set-up as the registry's integration tests)."""

from tests.integration.registry.conftest import aws_settings, offline_sdks

__all__ = ["aws_settings", "offline_sdks"]
