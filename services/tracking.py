"""The MLflow tracking store the portal writes runs to. MLflow is imported only here and only
when needed: it takes seconds to import and most pages never touch it."""

from __future__ import annotations

from services.config import Settings, apply_process_defaults
from services.errors import ExternalServiceError


def ensure_tracking_store(settings: Settings) -> str:
    """Create (or upgrade) the embedded SQLite store, or check that a remote server answers.
    Returns the tracking URI."""
    apply_process_defaults(settings)
    uri = settings.resolved_tracking_uri
    try:
        if uri.startswith("sqlite:"):
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            settings.artifact_root.mkdir(parents=True, exist_ok=True)
            SqlAlchemyStore(uri, settings.artifact_root.as_uri())
        else:
            from mlflow.tracking import MlflowClient

            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many types; the user needs the one line
        raise ExternalServiceError(
            f"The MLflow tracking store at {uri} cannot be used: {exc}. "
            "Check PORTAL_MLFLOW_TRACKING_URI.",
            detail=repr(exc),
        ) from exc
    return uri
