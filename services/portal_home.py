"""``PORTAL_HOME``: the folder that holds the embedded default's data (SQLite databases,
MLflow artifacts) and, unless ``PORTAL_COOKIE_KEY`` is set, the generated cookie key."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from services.config import MIN_COOKIE_KEY_LENGTH, Settings, apply_process_defaults
from services.errors import ConfigurationError

log = logging.getLogger(__name__)

COOKIE_KEY_FILE = "cookie_key"


def prepare_home(settings: Settings) -> Path:
    """Create ``PORTAL_HOME`` if needed (mode 0700) and check the portal can write there."""
    home = settings.home_dir
    if home.exists() and not home.is_dir():
        raise ConfigurationError(
            f"PORTAL_HOME points at {home}, which is a file, not a folder. "
            "Set PORTAL_HOME to a folder the portal may write to."
        )
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot create PORTAL_HOME at {home}: {exc.strerror}. "
            "Set PORTAL_HOME to a folder the portal may write to."
        ) from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"PORTAL_HOME at {home} is not writable. Fix its permissions or choose another folder."
        )
    return home


def prepare_runtime(settings: Settings) -> None:
    """What every entry point (the app, the CLI) does before touching a backend: keep MLflow
    from phoning home, and make sure the embedded default has its folder."""
    apply_process_defaults(settings)
    if settings.uses_embedded_database:
        prepare_home(settings)


def cookie_key(settings: Settings) -> str:
    """The key that signs login cookies: ``PORTAL_COOKIE_KEY`` if set, else a key generated
    once into ``PORTAL_HOME`` with mode 0600 (embedded default only)."""
    if settings.cookie_key is not None:
        return settings.cookie_key.get_secret_value()
    if not settings.uses_embedded_database:
        raise ConfigurationError(
            "Set PORTAL_COOKIE_KEY when the portal uses a shared database (PORTAL_DATABASE_URL), "
            "so that every replica signs login cookies with the same key."
        )
    path = prepare_home(settings) / COOKIE_KEY_FILE
    if not path.exists():
        _create_key_file(path)
    return _read_key(path)


def _create_key_file(path: Path) -> None:
    """Write the key to a private temporary file, then link it into place: two processes
    starting at once agree on one key, and no one ever reads a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        os.link(tmp, path)
        log.info("generated a new cookie signing key in %s", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _read_key(path: Path) -> str:
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the cookie key {path}: {exc.strerror}.") from None
    if len(key) < MIN_COOKIE_KEY_LENGTH or not key.isprintable():
        raise ConfigurationError(
            f"The cookie key file {path} is damaged. Delete it and restart the portal to generate "
            "a new one (everyone will need to log in again)."
        )
    return key
