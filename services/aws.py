"""boto3 clients and AWS error mapping.

Clients are built once per process from an explicit session (boto3 clients are thread-safe
and shared between Streamlit sessions; sessions are not shared), with standard retries and
explicit timeouts. ``PORTAL_AWS_ENDPOINT_URL`` points every client at an emulator such as
``moto_server``. ``aws_errors`` turns botocore failures into the portal's
``ExternalServiceError``, keeping the AWS error code and request id for the detail view.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from services.config import Settings
from services.errors import ConfigurationError, ExternalServiceError

log = logging.getLogger(__name__)


_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
}
_SERVER_ERRORS = {
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "500",
    "502",
    "503",
    "504",
}
_MISSING = {
    "ResourceNotFound",
    "ResourceNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
    "404",
    "NotFound",
}


def not_configured_reason(settings: Settings) -> str | None:
    """Why AWS cannot be used, in words a user can act on; None when it can."""
    if not settings.aws_region:
        return "AWS is not configured: set PORTAL_AWS_REGION (and credentials) to use it."
    return None


@lru_cache(maxsize=64)
def _client(
    service: str, region: str, profile: str | None, endpoint: str | None, config: Config
) -> Any:
    session = boto3.session.Session(profile_name=profile, region_name=region)
    return session.client(service, endpoint_url=endpoint, config=config)


def client(service: str, settings: Settings) -> Any:
    """The process-wide client for ``service`` under the current settings."""
    reason = not_configured_reason(settings)
    if reason:
        raise ConfigurationError(reason)
    assert settings.aws_region is not None
    return _client(
        service,
        settings.aws_region,
        settings.aws_profile,
        settings.aws_endpoint_url,
        _config(settings.aws_max_attempts, settings.aws_connect_timeout, settings.aws_read_timeout),
    )


@lru_cache(maxsize=16)
def _config(attempts: int, connect_timeout: float, read_timeout: float) -> Config:
    """Standard retries (throttling, 5xx answers and timeouts are retried with back-off, up to
    ``attempts`` in all) and explicit timeouts; one object per distinct value, so that the
    cached clients are found again."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _explain(code: str, message: str) -> str:
    if code in _THROTTLING:
        return "AWS is throttling requests; try again in a minute"
    if code in _DENIED:
        return f"access denied ({message or code}); the portal's AWS identity lacks a permission"
    if code in _MISSING:
        return f"not found ({message or code})"
    if code in _SERVER_ERRORS:
        return f"AWS had an internal error ({code}) and still did after retrying; try again later"
    return message or code


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Run AWS calls; on failure raise ``ExternalServiceError`` saying what could not be done.

    ``action`` completes the sentence "Could not …", e.g. "list Bedrock custom models"."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        error = exc.response.get("Error", {})
        message = str(error.get("Message", "")).strip()
        request_id = exc.response.get("ResponseMetadata", {}).get("RequestId", "unknown")
        log.warning("AWS %s failed: %s %s (request %s)", action, code, message, request_id)
        raise ExternalServiceError(
            f"Could not {action}: {_explain(code, message).rstrip('.')}.",
            code=code,
            detail=f"{code}: {message}\nRequest id: {request_id}",
        ) from exc
    except NoCredentialsError as exc:
        raise ExternalServiceError(
            f"Could not {action}: no AWS credentials were found. Configure a profile "
            "(PORTAL_AWS_PROFILE) or the standard AWS credential variables.",
            code="NoCredentials",
        ) from exc
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
        raise ExternalServiceError(
            f"Could not {action}: AWS did not answer ({exc}). Check the network, "
            "PORTAL_AWS_REGION and PORTAL_AWS_ENDPOINT_URL.",
            code="Unreachable",
            detail=repr(exc),
        ) from exc
    except BotoCoreError as exc:
        raise ExternalServiceError(
            f"Could not {action}: {exc}.", code=type(exc).__name__, detail=repr(exc)
        ) from exc
