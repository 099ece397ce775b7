"""The portal's own errors. Services raise these with messages a user can act on;
pages and the CLI show ``str(error)`` and, where present, ``detail`` as technical context."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime


class PortalError(Exception):
    """Base class: the message is for the user, ``detail`` is for the expander or the log."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class ConfigurationError(PortalError):
    """A setting is missing or wrong; the message names the setting to change."""


class DatabaseUnavailable(PortalError):
    """The portal database cannot be reached or opened."""


class TransactionConflict(DatabaseUnavailable):
    """PostgreSQL ended the transaction to break a deadlock or a serialization conflict with
    another one: nothing of it was saved, and running it again is safe."""


class PermissionDenied(PortalError):
    """The acting user lacks the role an action needs."""


class NotFound(PortalError):
    """The thing asked for does not exist (or is not visible to the user)."""


class Conflict(PortalError):
    """The change clashes with the current state: a duplicate, or someone else changed it first."""


class ValidationError(PortalError):
    """Input was rejected; ``fields`` maps each bad field to what is wrong with it."""

    def __init__(self, message: str, *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = dict(fields or {})


class ExternalServiceError(PortalError):
    """A backend (AWS, MLflow, ...) failed; ``code`` keeps the service's own error code."""

    def __init__(self, message: str, *, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.code = code


class AuthenticationFailed(PortalError):
    """Base for login refusals."""


class InvalidCredentials(AuthenticationFailed):
    def __init__(self) -> None:
        super().__init__("Username or password is incorrect.")


class AccountLocked(AuthenticationFailed):
    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(
            "This account is locked after too many failed logins. "
            f"Try again after {until:%H:%M} UTC, or ask an administrator to unlock it."
        )


class AccountDisabled(AuthenticationFailed):
    def __init__(self) -> None:
        super().__init__("This account is disabled. Ask an administrator to enable it.")
