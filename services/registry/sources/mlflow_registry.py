"""The MLflow Model Registry as a model catalog: one model per registered model, one version per
model version, with aliases, tags, and the params and metrics of each version's source run.

MLflow is imported inside :meth:`MlflowRegistrySource.fetch` only: it takes seconds to import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from services.config import Settings, apply_process_defaults
from services.errors import ConfigurationError, ExternalServiceError
from services.registry.sources.base import (
    STAGE_PRODUCTION,
    STAGE_STAGING,
    ExternalModel,
    ExternalVersion,
)

log = logging.getLogger(__name__)

_STAGE_OF_ALIAS = {
    "production": STAGE_PRODUCTION,
    "prod": STAGE_PRODUCTION,
    "staging": STAGE_STAGING,
    "stage": STAGE_STAGING,
}


class MlflowRegistrySource:
    """Reads the registry of one MLflow tracking server or store (``registry_uri`` defaults to
    the tracking URI, as in MLflow)."""

    name = "mlflow"
    label = "MLflow Model Registry"

    def __init__(
        self, tracking_uri: str | None, *, registry_uri: str | None = None, page_size: int = 100
    ) -> None:
        self._tracking_uri = tracking_uri
        self._registry_uri = registry_uri or tracking_uri
        self._page_size = page_size

    @classmethod
    def from_settings(cls, settings: Settings) -> MlflowRegistrySource:
        """The portal's MLflow store (``PORTAL_MLFLOW_TRACKING_URI`` or the embedded one)."""
        apply_process_defaults(settings)  # telemetry off before MLflow is ever imported
        return cls(settings.resolved_tracking_uri)

    def unavailable_reason(self) -> str | None:
        """Why the registry cannot be read: no URI, or an embedded store not created yet."""
        if not self._tracking_uri or not self._registry_uri:
            return "MLflow tracking URI is not set: set PORTAL_MLFLOW_TRACKING_URI."
        if self._registry_uri.startswith("sqlite:"):
            database = make_url(self._registry_uri).database
            if database and database != ":memory:" and not Path(database).expanduser().exists():
                return (
                    f"The MLflow store {database} does not exist yet: run "
                    "`python -m services.cli init` or set PORTAL_MLFLOW_TRACKING_URI."
                )
        return None

    def fetch(self) -> list[ExternalModel]:
        """Every registered model with all its versions, oldest version first."""
        reason = self.unavailable_reason()
        if reason:
            raise ConfigurationError(reason)
        try:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=self._tracking_uri, registry_uri=self._registry_uri)
            return [
                self._model(client, model) for model in self._all(client.search_registered_models)
            ]
        except Exception as exc:  # MLflow raises many types; the user needs the one line
            uri = str(self._registry_uri)
            raise ExternalServiceError(
                _redacted(f"Could not read the MLflow Model Registry at {uri}: {_why(exc)}", uri),
                code=str(getattr(exc, "error_code", type(exc).__name__)),
                detail=_redacted(repr(exc), uri),
            ) from exc

    def _all(self, search: Callable[..., Any], *args: Any) -> Iterator[Any]:
        token = None
        while True:
            page = search(*args, max_results=self._page_size, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def _model(self, client: Any, model: Any) -> ExternalModel:
        name = str(model.name)
        aliases: dict[str, list[str]] = {}
        for alias, number in (model.aliases or {}).items():
            aliases.setdefault(str(number), []).append(str(alias))
        quote = '"' if "'" in name else "'"
        found = self._all(client.search_model_versions, f"name={quote}{name}{quote}")
        versions = sorted(found, key=lambda version: int(version.version))
        runs: dict[str, Any] = {}
        return ExternalModel(
            source="mlflow",
            kind="custom",
            provider="mlflow",
            name=name,
            source_ref=name,
            description=model.description or None,
            tags=dict(model.tags or {}),
            versions=tuple(
                _version(client, v, sorted(aliases.get(str(v.version), [])), runs) for v in versions
            ),
        )


def _version(
    client: Any, version: Any, aliases: list[str], runs: dict[str, Any]
) -> ExternalVersion:
    name, number = str(version.name), str(version.version)
    run = _run(client, version.run_id, runs) if version.run_id else None
    metrics = dict(run.data.metrics) if run else {}
    params = dict(run.data.params) if run else {}
    for metric in version.metrics or []:  # MLflow 3 logged-model metrics, when there is no run
        metrics.setdefault(metric.key, metric.value)
    for param in version.params or []:
        params.setdefault(param.key, param.value)
    source = version.source or None
    if source and source.startswith(("runs:/", "models:/")):
        source = client.get_model_version_download_uri(name, number)
    return ExternalVersion(
        version=number,
        source_ref=f"models:/{name}/{number}",
        artifact_uri=source,
        created_at=datetime.fromtimestamp(version.creation_timestamp / 1000, UTC),
        created_by=version.user_id or (run.info.user_id if run else None) or None,
        description=version.description or None,
        stage_hint=_stage_hint(aliases, version.current_stage),
        metrics={str(k): float(v) for k, v in metrics.items()},
        params={str(k): str(v) for k, v in params.items()},
        tags=dict(version.tags or {}),
        run_id=version.run_id or None,
        mlflow_model_name=name,
        mlflow_model_version=number,
        mlflow_aliases=tuple(aliases),
    )


def _run(client: Any, run_id: str, runs: dict[str, Any]) -> Any:
    """The source run, or None when it no longer exists (a version outlives its run)."""
    if run_id not in runs:
        try:
            runs[run_id] = client.get_run(run_id)
        except Exception as exc:
            if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
                raise
            log.info("Source run %s of a model version no longer exists", run_id)
            runs[run_id] = None
    return runs[run_id]


def _stage_hint(aliases: list[str], legacy_stage: str | None) -> str | None:
    stages = {_STAGE_OF_ALIAS.get(alias.lower()) for alias in aliases}
    stages.add(_STAGE_OF_ALIAS.get((legacy_stage or "").lower()))
    for stage in (STAGE_PRODUCTION, STAGE_STAGING):
        if stage in stages:
            return stage
    return None


def _why(exc: BaseException) -> str:
    """Connection failures in words a user can act on; anything else as MLflow says it."""
    cause: BaseException | None = exc
    for _ in range(10):  # the chain is short; the bound guards against cycles
        if cause is None:
            break
        if isinstance(cause, OSError):  # requests' connection errors and timeouts are OSErrors
            return (
                f"the tracking server did not answer ({type(cause).__name__}). Check that it "
                "is running and that PORTAL_MLFLOW_TRACKING_URI is right."
            )
        cause = cause.__cause__ or cause.__context__
    return str(exc)


def _redacted(text: str, uri: str) -> str:
    """``text`` without the credentials of ``uri`` (``http://user:password@host``)."""
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        text = text.replace(parts.netloc.rsplit("@", 1)[0] + "@", "***@")
    if parts.password:
        text = text.replace(parts.password, "***")
    return text
