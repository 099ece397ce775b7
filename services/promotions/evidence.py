"""The evidence a promotion request carries: the version's metrics against the policy's gates,
the comparison with the version now in the target stage, the training data's governance
state, lineage, and who trained it. Captured when the request is filed and kept with it."""

from __future__ import annotations

import math
from typing import Any

from sqlmodel import Session, select

from models.dataset import Dataset, DatasetVersion, PiiStatus
from models.promotion import PromotionPolicy
from models.registry import ModelAsset, ModelVersion
from models.training import FineTuneJob
from services.promotions.policies import describe


def stage_holder(session: Session, model_id: int, stage: str) -> ModelVersion | None:
    """The version of ``model_id`` in ``stage`` now (at most one, by a unique index)."""
    return session.exec(
        select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.stage == stage)
    ).first()


def gate_results(policy: PromotionPolicy, metrics: dict[str, float]) -> list[dict[str, Any]]:
    results = []
    for gate in policy.gates():
        value = metrics.get(gate.metric)
        shown = None if value is None or not math.isfinite(value) else float(value)
        results.append(
            {
                "gate": gate.describe(),
                "metric": gate.metric,
                "value": shown,
                "passed": gate.passes(shown),
                "reason": "" if shown is not None else "metric missing",
            }
        )
    return results


def dataset_state(session: Session, version: ModelVersion) -> dict[str, Any] | None:
    if version.dataset_version_id is None:
        return None
    data = session.get(DatasetVersion, version.dataset_version_id)
    if data is None:
        return None
    dataset = session.get(Dataset, data.dataset_id)
    return {
        "dataset_id": data.dataset_id,
        "name": dataset.name if dataset else f"dataset {data.dataset_id}",
        "version": data.number,
        "pii_status": data.pii_status,
        "pii_exception_reason": data.pii_exception_reason,
        "pii_exception_by": data.pii_exception_by,
    }


def pii_blocks(policy: PromotionPolicy, dataset: dict[str, Any] | None) -> bool:
    """Flagged training data blocks a promotion the policy guards (an exception clears it)."""
    return bool(policy.block_pii and dataset and dataset["pii_status"] == PiiStatus.FLAGGED.value)


def trained_by(session: Session, version: ModelVersion) -> str:
    if version.job_ref and version.job_ref.isdigit():
        job = session.get(FineTuneJob, int(version.job_ref))
        if job is not None:
            return job.owner
    return version.created_by


def collect(
    session: Session, model: ModelAsset, version: ModelVersion, target: str, policy: PromotionPolicy
) -> dict[str, Any]:
    """Everything a reviewer needs, as plain JSON, frozen at the moment of the request."""
    metrics = {k: float(v) for k, v in version.metrics.items()}
    holder = stage_holder(session, model.id or 0, target)
    incumbent = None
    if holder is not None and holder.id != version.id:
        theirs = {k: float(v) for k, v in holder.metrics.items()}
        incumbent = {
            "number": holder.number,
            "metrics": theirs,
            "deltas": {
                name: metrics[name] - theirs[name]
                for name in sorted(metrics.keys() & theirs.keys())
                if math.isfinite(metrics[name]) and math.isfinite(theirs[name])
            },
        }
    dataset = dataset_state(session, version)
    return {
        "model": model.name,
        "version": version.number,
        "from_stage": version.stage,
        "metrics": {k: (v if math.isfinite(v) else None) for k, v in metrics.items()},
        "policy": {"revision": policy.revision, "summary": describe(policy)},
        "gates": gate_results(policy, metrics),
        "incumbent": incumbent,
        "dataset": dataset,
        "pii_blocked": pii_blocks(policy, dataset),
        "lineage": {
            "base_model": version.base_model,
            "job_ref": version.job_ref,
            "mlflow_run_id": version.mlflow_run_id,
            "artifact_uri": version.artifact_uri,
            "sagemaker_package_arn": version.sagemaker_package_arn,
        },
        "trained_by": trained_by(session, version),
    }


def blocking_reasons(evidence: dict[str, Any]) -> list[str]:
    """Why the evidence fails the policy, in words; empty when it passes."""
    reasons = [
        f"gate {g['gate']} fails ("
        + ("metric missing" if g["value"] is None else f"{g['metric']} = {g['value']:g}")
        + ")"
        for g in evidence["gates"]
        if not g["passed"]
    ]
    if evidence.get("pii_blocked"):
        data = evidence["dataset"]
        reasons.append(
            f"training dataset {data['name']} v{data['version']} is flagged for personal data"
        )
    return reasons
