"""Settings, PORTAL_HOME and the cookie key: clear messages for bad values."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.config import get_settings, load_settings
from services.errors import ConfigurationError
from services.portal_home import cookie_key, prepare_home


def test_defaults_put_everything_under_portal_home(
    portal_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTAL_MLFLOW_TRACKING_URI")
    settings = load_settings()
    assert settings.resolved_database_url == f"sqlite:///{portal_env / 'portal.db'}"
    assert settings.resolved_tracking_uri == f"sqlite:///{portal_env / 'mlflow.db'}"
    assert settings.report_tz == "UTC" and settings.mlflow_telemetry is False


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("PORTAL_REPORT_TZ", "Mars/Olympus", "PORTAL_REPORT_TZ: unknown time zone 'Mars/Olympus'"),
        ("PORTAL_DATABASE_URL", "not a url", "PORTAL_DATABASE_URL: not a database URL"),
        ("PORTAL_COOKIE_KEY", "short", "PORTAL_COOKIE_KEY: must be at least 32 characters"),
        ("PORTAL_COOKIE_EXPIRY_DAYS", "-1", "PORTAL_COOKIE_EXPIRY_DAYS"),
    ],
)
def test_bad_setting_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_cookie_key_is_generated_once_with_private_permissions(portal_env: Path) -> None:
    first = cookie_key(get_settings())
    path = portal_env / "cookie_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and cookie_key(get_settings()) == first


def test_explicit_cookie_key_wins(monkeypatch: pytest.MonkeyPatch, portal_env: Path) -> None:
    monkeypatch.setenv("PORTAL_COOKIE_KEY", "k" * 40)
    get_settings.cache_clear()
    assert cookie_key(get_settings()) == "k" * 40
    assert not (portal_env / "cookie_key").exists()


def test_shared_database_requires_an_explicit_cookie_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql+psycopg://db.internal/portal")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="Set PORTAL_COOKIE_KEY"):
        cookie_key(get_settings())


def test_damaged_cookie_key_file_says_what_to_do(portal_env: Path) -> None:
    prepare_home(get_settings())
    (portal_env / "cookie_key").write_text("oops")
    with pytest.raises(ConfigurationError, match=r"damaged\. Delete it"):
        cookie_key(get_settings())


def test_portal_home_that_is_a_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("PORTAL_HOME", str(blocker))
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="is a file, not a folder"):
        prepare_home(get_settings())


def test_portal_home_that_cannot_be_created_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("PORTAL_HOME", str(blocker / "home"))
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="Cannot create PORTAL_HOME"):
        prepare_home(get_settings())
