"""The MLflow tracking store the portal writes runs to. MLflow is imported only here and only
when needed: it takes seconds to import and most pages never touch it."""

from __future__ import annotations

import logging
import threading

from services.config import Settings, apply_process_defaults
from services.db import MIGRATION_LOCK
from services.errors import ExternalServiceError

log = logging.getLogger(__name__)


def ensure_tracking_store(settings: Settings) -> str:
    """Create (or upgrade) the embedded SQLite store, or check that a remote server answers.
    Returns the tracking URI."""
    apply_process_defaults(settings)
    uri = settings.resolved_tracking_uri
    try:
        if uri.startswith("sqlite:"):
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            settings.artifact_root.mkdir(parents=True, exist_ok=True)
            with MIGRATION_LOCK:  # MLflow migrates its store with Alembic too
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


class TrackingStoreWarmup:
    """Prepares the tracking store once per process in a background thread, so no page waits
    for MLflow's import and first migration; ``state`` says how far it got."""

    def __init__(self, settings: Settings) -> None:
        self.state = "preparing"
        self._thread = threading.Thread(
            target=self._run, args=(settings,), name="mlflow-store-warmup", daemon=True
        )
        self._thread.start()

    def _run(self, settings: Settings) -> None:
        try:
            self.state = f"ready ({ensure_tracking_store(settings)})"
        except ExternalServiceError as exc:
            log.warning("%s", exc)
            self.state = f"not usable: {exc}"

    def wait(self, timeout: float) -> str:
        self._thread.join(timeout)
        return self.state
