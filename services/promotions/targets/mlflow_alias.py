"""Mirror an approval into the MLflow Model Registry: the ``@staging`` / ``@production``
alias points at the approved version (MLflow moves it off the previous holder), and the
version carries ``approved_by`` and ``request_id`` tags.

A portal version trained by a portal job has an MLflow run but may not be registered in
MLflow yet; it is registered then (under the portal model's name with '/' and ':' made '-',
reusing a registration of the same run if one exists), so the alias has something to point at."""

from __future__ import annotations

from typing import Any

from services.config import Settings
from services.errors import NotFound
from services.experiments.runs import tracking_client, tracking_errors


def set_alias(settings: Settings, payload: dict[str, Any]) -> dict[str, Any]:
    stage = str(payload["stage"])
    with tracking_errors(settings, f"set the @{stage} alias"):
        client = tracking_client(settings)
        name, number = _registered_version(client, settings, payload)
        client.set_registered_model_alias(name, stage, number)
        client.set_model_version_tag(name, number, "approved_by", ",".join(payload["approved_by"]))
        client.set_model_version_tag(name, number, "request_id", str(payload["request_id"]))
        if stage == "production":
            _drop_alias_if_on(client, name, "staging", number)
        aliases = sorted(client.get_model_version(name, number).aliases or [])
    return {
        "summary": f"{name} version {number} is @{stage}",
        "mlflow_model_name": name,
        "mlflow_model_version": number,
        "mlflow_aliases": aliases,
    }


def _registered_version(
    client: Any, settings: Settings, payload: dict[str, Any]
) -> tuple[str, str]:
    if payload.get("mlflow_model_name") and payload.get("mlflow_model_version"):
        return str(payload["mlflow_model_name"]), str(payload["mlflow_model_version"])
    name, run_id = registered_name(str(payload["model"])), str(payload["mlflow_run_id"] or "")
    portal_id = str(payload["version_id"])
    exists = _has_registered_model(client, name)
    if exists:
        for existing in client.search_model_versions(f"name = '{_quoted(name)}'"):
            mine = (existing.tags or {}).get("portal_version_id") == portal_id
            if mine or (run_id and existing.run_id == run_id):
                return name, str(existing.version)
    # Check the run before creating anything: a failure must not leave an empty registered
    # model behind in MLflow. A version whose run lives elsewhere (another tracking server,
    # a synced catalog) is registered from its artifacts alone.
    has_run = bool(run_id) and _run_exists(client, run_id)
    if not has_run and not payload.get("artifact_uri"):
        raise NotFound(
            f"MLflow at {settings.resolved_tracking_uri} has no run {run_id}, and version "
            f"{payload['version']} of {payload['model']} names no artifacts, so it cannot be "
            "registered there."
        )
    if not exists:
        client.create_registered_model(name, description="Registered by the AI Ops portal")
    created = client.create_model_version(
        name,
        source=payload.get("artifact_uri") or f"runs:/{run_id}",
        run_id=run_id if has_run else None,
        description=f"Portal version {payload['version']}",
        tags={"portal_version_id": portal_id, "portal_run_id": run_id},
    )
    return name, str(created.version)


def registered_name(model: str) -> str:
    """The MLflow name for a portal model: MLflow refuses '/' and ':' in registered model
    names, which names after Hugging Face ids (``org/model``) often contain."""
    return model.replace("/", "-").replace(":", "-")


def _has_registered_model(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
            raise
        return False
    return True


def _run_exists(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def _drop_alias_if_on(client: Any, name: str, alias: str, number: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        holder = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return
    if str(holder.version) == number:
        client.delete_registered_model_alias(name, alias)


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")
