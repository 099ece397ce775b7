"""Portal settings: one pydantic-settings class, read from ``PORTAL_*`` environment variables.

Nothing else in the portal reads ``os.environ``: everything goes through :func:`get_settings`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from services.errors import ConfigurationError

MIN_COOKIE_KEY_LENGTH = 32
PAGE_REQUEST_TIMEOUT = 10  # seconds a page waits for one request to the MLflow server


class Settings(BaseSettings):
    """Every setting of the portal, with the embedded default where one makes sense."""

    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    home: Path = Field(
        default=Path(".portal"), description="Folder for the embedded default's data"
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the portal database (default: SQLite in home)"
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI (default: SQLite store in home)"
    )
    cookie_key: SecretStr | None = Field(
        default=None, description="Secret that signs the login cookie (default: generated in home)"
    )
    cookie_name: str = "aiops_portal_session"
    cookie_expiry_days: float = Field(default=1.0, gt=0, le=30)
    aws_region: str | None = None
    aws_profile: str | None = None
    aws_endpoint_url: str | None = None
    aws_max_attempts: int = Field(
        default=5, ge=1, le=20, description="Attempts per AWS call (botocore standard retries)"
    )
    aws_connect_timeout: float = Field(
        default=5.0, gt=0, le=300, description="Seconds to wait for a connection to AWS"
    )
    aws_read_timeout: float = Field(
        default=60.0, gt=0, le=900, description="Seconds to wait for each AWS answer"
    )
    report_tz: str = "UTC"
    mlflow_telemetry: bool = False
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    max_dataset_mb: int = Field(default=1024, ge=1, le=1_048_576)
    environment: Literal["development", "production"] = "development"
    max_local_jobs: int = Field(
        default=1, ge=1, le=64, description="Local training jobs one worker runs at once"
    )
    start_worker: bool = Field(
        default=True, description="Start a local training worker alongside the app"
    )
    stop_grace_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Wait after SIGTERM before SIGKILL"
    )
    training_bucket: str | None = Field(
        default=None, description="S3 bucket for SageMaker/Bedrock training data and output"
    )
    sagemaker_role_arn: str | None = None
    bedrock_role_arn: str | None = None
    sagemaker_image_uri: str | None = Field(
        default=None, description="Training image (default: the Hugging Face PyTorch image)"
    )
    sagemaker_inference_image_uri: str | None = Field(
        default=None,
        description="Serving image of registered model packages (default: Hugging Face's)",
    )
    cost_allocation_tag: str = Field(
        default="team",
        max_length=128,
        description="AWS cost allocation tag whose values are team names (billed cost per team)",
    )
    budget_warnings: str = Field(
        default="80,90,100",
        description="Percentages of a monthly team budget that raise a warning",
    )
    promotion_webhook_url: str | None = Field(
        default=None, description="URL told of every promotion decision (signed JSON POST)"
    )
    promotion_webhook_secret: SecretStr | None = Field(
        default=None, description="Shared secret that signs the promotion webhook's body"
    )

    budget_webhook_url: str | None = Field(
        default=None,
        description="URL told when a team's spend crosses a budget warning level (signed POST)",
    )
    budget_webhook_secret: SecretStr | None = Field(
        default=None, description="Shared secret that signs the budget alert webhook's body"
    )

    @model_validator(mode="after")
    def _webhooks_need_secrets(self) -> Settings:
        hooks = (
            ("PROMOTION", "deployment", self.promotion_webhook_url, self.promotion_webhook_secret),
            ("BUDGET", "budget alert", self.budget_webhook_url, self.budget_webhook_secret),
        )
        for name, what, url, secret in hooks:
            if url and secret is None:
                raise ValueError(
                    f"PORTAL_{name}_WEBHOOK_URL is set without PORTAL_{name}_WEBHOOK_SECRET: an "
                    f"unsigned {what} webhook could be forged; set a secret of at least "
                    f"{MIN_COOKIE_KEY_LENGTH} characters"
                )
            if secret is not None and len(secret.get_secret_value()) < MIN_COOKIE_KEY_LENGTH:
                raise ValueError(
                    f"PORTAL_{name}_WEBHOOK_SECRET must be at least {MIN_COOKIE_KEY_LENGTH} "
                    "characters"
                )
        return self

    @field_validator("budget_warnings")
    @classmethod
    def _percentages(cls, value: str) -> str:
        try:
            levels = [int(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError(
                "must be whole percentages separated by commas, e.g. 80,90,100"
            ) from None
        if not levels or any(not 1 <= level <= 1000 for level in levels):
            raise ValueError("must be percentages between 1 and 1000, e.g. 80,90,100")
        return ",".join(str(level) for level in sorted(set(levels)))

    @property
    def budget_warning_levels(self) -> list[int]:
        return [int(part) for part in self.budget_warnings.split(",")]

    @field_validator("report_tz")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)"
            ) from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _parsable_url(cls, value: str | None) -> str | None:
        if value:
            try:
                make_url(value)
            except ArgumentError as exc:
                raise ValueError(f"not a database URL: {exc}") from exc
        return value

    @field_validator("cookie_key")
    @classmethod
    def _strong_cookie_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_COOKIE_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_COOKIE_KEY_LENGTH} characters; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'portal.db'}"

    @property
    def resolved_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.home_dir / "mlartifacts"

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.report_tz)


def load_settings() -> Settings:
    """Read the settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PORTAL_{'_'.join(str(p) for p in err['loc']).upper()}: "
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise ConfigurationError(f"Invalid settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing them."""
    return load_settings()


def apply_process_defaults(settings: Settings) -> None:
    """Switch off MLflow's telemetry unless the user asked for it: the portal never phones home."""
    if not settings.mlflow_telemetry:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
    # A page waits for MLflow: a server that is down should say so in seconds, not after
    # MLflow's default of 7 retries with back-off (minutes). Training jobs keep the defaults.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(PAGE_REQUEST_TIMEOUT))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
