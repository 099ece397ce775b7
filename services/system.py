"""What the portal is running on, for the Admin page's System tab (no secrets)."""

from __future__ import annotations

from dataclasses import dataclass

from services.access import Actor, require
from services.config import Settings
from services.db import Database, current_revision, head_revision
from services.permissions import Permission


@dataclass(frozen=True)
class SystemStatus:
    rows: list[tuple[str, str, str]]  # setting, value in effect, where it comes from


def system_status(
    db: Database, settings: Settings, *, actor: Actor, tracking_state: str = "not checked"
) -> SystemStatus:
    with db.read() as session:
        require(session, actor, Permission.MANAGE_USERS)
    revision = current_revision(db)
    explicit = settings.model_fields_set

    def source(name: str) -> str:
        return f"PORTAL_{name.upper()}" if name in explicit else "default"

    aws = settings.aws_region or "not configured (set PORTAL_AWS_REGION to use AWS)"
    rows = [
        ("Portal home", str(settings.home_dir), source("home")),
        ("Portal database", db.display_url, source("database_url")),
        ("Schema revision", f"{revision} (newest: {head_revision()})", "migrations"),
        ("MLflow tracking", settings.resolved_tracking_uri, source("mlflow_tracking_uri")),
        ("MLflow store", tracking_state, "checked at start-up"),
        (
            "MLflow telemetry",
            "on" if settings.mlflow_telemetry else "off",
            source("mlflow_telemetry"),
        ),
        ("AWS region", aws, source("aws_region")),
        ("AWS profile", settings.aws_profile or "default credentials chain", source("aws_profile")),
        (
            "AWS endpoint",
            settings.aws_endpoint_url or "AWS (no emulator)",
            source("aws_endpoint_url"),
        ),
        ("Reporting time zone", settings.report_tz, source("report_tz")),
        (
            "Login cookie key",
            "set" if settings.cookie_key else "generated in portal home",
            source("cookie_key"),
        ),
        ("Login lifetime", f"{settings.cookie_expiry_days:g} day(s)", source("cookie_expiry_days")),
    ]
    return SystemStatus(rows)
