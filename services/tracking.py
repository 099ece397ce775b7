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


def open_job_run(
    settings: Settings, *, experiment_name: str, run_name: str, tags: dict[str, str]
) -> tuple[str, str]:
    """Create the MLflow run a training job logs into, before the job starts, so the portal
    knows the run from the first second. Returns (experiment id, run id)."""
    apply_process_defaults(settings)
    from mlflow.tracking import MlflowClient

    uri = ensure_tracking_store(settings)
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            location = None
            if uri.startswith("sqlite:"):  # keep artifacts under PORTAL_HOME, not ./mlruns
                location = (settings.artifact_root / experiment_name).as_uri()
            experiment_id = client.create_experiment(experiment_name, artifact_location=location)
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    except Exception as exc:  # MLflow raises many types; the user needs the one line
        raise ExternalServiceError(
            f"Could not create the MLflow run for {run_name} at {uri}: {exc}",
            detail=repr(exc),
        ) from exc
    return experiment_id, run.info.run_id


def finished_run_summary(settings: Settings, run_id: str) -> tuple[dict[str, float], str, str]:
    """The latest metrics, the artifact URI and the status of a run."""
    from mlflow.tracking import MlflowClient

    try:
        run = MlflowClient(tracking_uri=settings.resolved_tracking_uri).get_run(run_id)
    except Exception as exc:  # MLflow raises many types; the user needs the one line
        raise ExternalServiceError(
            f"Could not read MLflow run {run_id}: {exc}", detail=repr(exc)
        ) from exc
    return dict(run.data.metrics), str(run.info.artifact_uri), str(run.info.status)
