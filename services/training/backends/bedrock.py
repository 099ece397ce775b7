"""Amazon Bedrock model customization jobs as a training backend (:class:`JobBackend`).

The base model, customization type, dataset format and hyperparameters are checked against
:mod:`services.training.bedrock_models` before anything is sent. The splits go to the same
content-addressed ``portal/datasets/`` prefix as SageMaker's; Bedrock writes its output, and the
step-wise loss CSVs, under ``portal/jobs/<name>/output/``. Bedrock's own idempotency
(``clientRequestToken`` = the portal's idempotency key) makes a repeated submit the same job.

Losses take the portal's names: ``train_loss`` (Bedrock's ``trainingLoss``) and ``eval_loss``
(``validationLoss``), as metrics and as curves by step.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from datetime import datetime
from typing import Any

from models.training import Backend, JobStatus
from services import aws
from services.config import Settings
from services.errors import ConfigurationError, ExternalServiceError, ValidationError
from services.registry.formats import DatasetFormat
from services.registry.sources.base import as_utc, pages
from services.training.backends.base import JobSpec, JobState, Submitted, Transition
from services.training.backends.staging import (
    JOBS_PREFIX,
    already_exists,
    job_tags,
    missing_settings,
    stage_dataset,
)
from services.training.bedrock_models import (
    DISTILLATION_SETTINGS,
    BedrockBaseModel,
    Customization,
    CustomizationType,
    customizable_models,
    customization_for,
    spec_for,
    validate_hyperparameters,
)

log = logging.getLogger(__name__)

TRAINING_METRICS_CSV = "training_artifacts/step_wise_training_metrics.csv"
VALIDATION_METRICS_CSV = (
    "validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv"
)
_CURVES = {  # the portal's metric name -> (the file Bedrock writes the curve to, its column)
    "train_loss": (TRAINING_METRICS_CSV, "training_loss"),
    "eval_loss": (VALIDATION_METRICS_CSV, "validation_loss"),
}
_FINAL_METRICS = {"trainingLoss": "train_loss", "validationLoss": "eval_loss"}
_STATUSES = {
    "Completed": JobStatus.COMPLETED,
    "Failed": JobStatus.FAILED,
    "Stopping": JobStatus.STOPPING,
    "Stopped": JobStatus.STOPPED,
}
_STAGES = {
    "validationDetails": "Data validation",
    "dataProcessingDetails": "Data processing",
    "trainingDetails": "Training",
}


def custom_model_name(job_name: str) -> str:
    """The name of the model a job creates: the job's, as Bedrock allows model names, + "-model"."""
    base = re.sub(r"[^0-9A-Za-z]+", "-", job_name).strip("-")[:57].rstrip("-")
    return f"{base}-model"


class BedrockBackend:
    """Runs jobs as Bedrock model customization jobs; clients from :func:`services.aws.client`."""

    name = Backend.BEDROCK

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def unavailable_reason(self) -> str | None:
        return missing_settings(
            self._settings,
            "Bedrock customization",
            {
                "training_bucket": ("PORTAL_TRAINING_BUCKET", "an S3 bucket for data and output"),
                "bedrock_role_arn": (
                    "PORTAL_BEDROCK_ROLE_ARN",
                    "the ARN of an IAM role Bedrock assumes to read the data and write output",
                ),
            },
        )

    def submit(self, spec: JobSpec) -> Submitted:
        """Check the job against the model table, upload the splits, create the job. A repeated
        submit (same name and key) returns the job the first one started."""
        model, kind, hyperparameters = checked_job(spec)
        reason = self.unavailable_reason()
        if reason:
            raise ConfigurationError(reason)
        bucket = str(self._settings.training_bucket)
        output = f"s3://{bucket}/{JOBS_PREFIX}/{spec.name}/output/"
        uris = stage_dataset(self._client("s3"), bucket, spec.dataset)
        tags = [{"key": k, "value": v} for k, v in job_tags(spec).items()]
        request: dict[str, Any] = {
            "jobName": spec.name,
            "customModelName": custom_model_name(spec.name),
            "roleArn": self._settings.bedrock_role_arn,
            "clientRequestToken": spec.idempotency_key,
            "baseModelIdentifier": model.model_id,
            "customizationType": kind.value,
            "trainingDataConfig": {"s3Uri": uris["train"]},
            "outputDataConfig": {"s3Uri": output},
            "jobTags": tags,
            "customModelTags": tags,
        }
        detail = ""
        if kind is CustomizationType.DISTILLATION:
            request["customizationConfig"] = _distillation_config(
                hyperparameters, customization_for(model, kind)
            )
            if "validation" in uris:
                detail = "Bedrock distillation takes no validation data; that split was not sent."
        elif "validation" in uris:
            request["validationDataConfig"] = {"validators": [{"s3Uri": uris["validation"]}]}
        if hyperparameters:
            request["hyperParameters"] = hyperparameters
        bedrock = self._client("bedrock")
        try:
            with aws.aws_errors(f"start the Bedrock customization job {spec.name}"):
                arn = str(bedrock.create_model_customization_job(**request)["jobArn"])
        except ExternalServiceError as exc:
            if not already_exists(exc):
                raise
            arn, status = self._same_job(spec, exc)
            return Submitted(arn, status, "This job was submitted before.", output)
        return Submitted(arn, JobStatus.STARTING, detail, output)

    def describe(self, external_id: str) -> JobState:
        job = self._job(external_id)
        try:
            curves = self._curves(job)
        except ExternalServiceError as exc:  # the job's state matters more than its curves
            log.warning("Loss curves of Bedrock job %s left out: %s", external_id, exc)
            curves = {}
        return job_state(job, curves)

    def metric_history(self, external_id: str) -> dict[str, list[tuple[int, float]]]:
        """Loss by step (``train_loss``, ``eval_loss``) from the CSVs Bedrock writes under the
        job's output; {} until Bedrock has written them."""
        return self._curves(self._job(external_id))

    def stop(self, external_id: str) -> None:
        with aws.aws_errors(f"stop the Bedrock customization job {external_id}"):
            self._client("bedrock").stop_model_customization_job(jobIdentifier=external_id)

    def logs(self, external_id: str, limit: int = 200) -> list[str]:
        """Bedrock keeps no job log: the job's status history, one line per step, oldest first."""
        state = job_state(self._job(external_id), {})
        lines = [
            f"{_when(t.at)}  {t.status}" + (f": {t.detail}" if t.detail else "")
            for t in state.transitions
        ]
        return lines[-max(1, limit) :]

    def _job(self, external_id: str) -> dict[str, Any]:
        with aws.aws_errors(f"read the Bedrock customization job {external_id}"):
            return dict(
                self._client("bedrock").get_model_customization_job(jobIdentifier=external_id)
            )

    def _same_job(self, spec: JobSpec, refusal: ExternalServiceError) -> tuple[str, JobStatus]:
        job = self._job(spec.name)
        if job.get("clientRequestToken") not in (None, spec.idempotency_key):
            raise ExternalServiceError(
                f"Another Bedrock customization job is already named {spec.name}; "
                "it was not started by this portal job.",
                code=refusal.code,
                detail=refusal.detail,
            )
        return str(job["jobArn"]), job_state(job, {}).status

    def _curves(self, job: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
        output = str(job.get("outputDataConfig", {}).get("s3Uri") or "")
        if not output.startswith("s3://"):
            return {}
        bucket, _, prefix = output.removeprefix("s3://").partition("/")
        s3 = self._client("s3")
        with aws.aws_errors(f"read the metrics of Bedrock job {job.get('jobName')} in {output}"):
            keys = [
                str(item["Key"])
                for page in pages(s3, "list_objects_v2", Bucket=bucket, Prefix=prefix)
                for item in page.get("Contents", [])
            ]
            curves = {}
            for metric, (suffix, column) in _CURVES.items():
                key = next((k for k in sorted(keys) if k.endswith("/" + suffix)), None)
                if key is not None:
                    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
                    curves[metric] = _curve(text, column)
        return {metric: points for metric, points in curves.items() if points}

    def _client(self, service: str) -> Any:
        with aws.aws_errors(f"connect to {service}"):
            return aws.client(service, self._settings)


def checked_job(spec: JobSpec) -> tuple[BedrockBaseModel, CustomizationType, dict[str, str]]:
    """The table entry, customization type and hyperparameter strings of a job, or one
    ``ValidationError`` naming every problem (model, type, dataset format, hyperparameters)."""
    model = spec_for(spec.base_model)
    if model is None:
        names = ", ".join(m.name for m in customizable_models())
        raise ValidationError(
            f"{spec.base_model} is not a Bedrock base model the portal can customize.",
            fields={"base_model": f"choose one of: {names}"},
        )
    customization = customization_for(model, spec.customization_type)
    kind = CustomizationType(str(spec.customization_type))
    problems: dict[str, str] = {}
    if spec.dataset.format not in customization.data_formats:
        problems["dataset"] = _format_problem(model, kind, customization, spec.dataset.format)
    hyperparameters: dict[str, str] = {}
    try:
        hyperparameters = validate_hyperparameters(model, kind, spec.hyperparameters)
    except ValidationError as exc:
        problems.update(exc.fields)
    if problems:
        raise ValidationError(
            f"This {kind.label} job for {model.name} cannot start: check {', '.join(problems)}.",
            fields=problems,
        )
    return model, kind, hyperparameters


def job_state(job: dict[str, Any], curves: dict[str, list[tuple[int, float]]]) -> JobState:
    """A GetModelCustomizationJob answer, with the loss curves read so far, as a JobState."""
    details = job.get("statusDetails") or {}
    stages = {label: details.get(key) or {} for key, label in _STAGES.items()}
    status = _status(str(job["status"]), details)
    failed = status is JobStatus.FAILED
    current = next((label for label, s in stages.items() if s.get("status") == "InProgress"), None)
    metrics = {metric: points[-1][1] for metric, points in curves.items()}
    if status is JobStatus.COMPLETED or not metrics:  # the final figures, once there are any
        metrics.update(_final_metrics(job))
    transitions = [Transition(as_utc(job.get("creationTime")), "Submitted")]
    transitions += [
        Transition(as_utc(stage.get("lastModifiedTime")), f"{label}: {stage['status']}")
        for label, stage in stages.items()
        if stage.get("status") not in (None, "NotStarted")
    ]
    if status.finished:
        transitions.append(Transition(as_utc(job.get("endTime")), str(job["status"])))
    steps = curves.get("train_loss")
    return JobState(
        status=status,
        detail=str(job.get("failureMessage") or "") if failed else f"{current or job['status']}",
        transitions=tuple(transitions),
        metrics=metrics,
        progress_step=steps[-1][0] if steps else None,
        output_model_ref=job.get("outputModelArn") if status is JobStatus.COMPLETED else None,
        failure_reason=job.get("failureMessage") if failed else None,
    )


def _status(status: str, details: dict[str, Any]) -> JobStatus:
    if status == "InProgress":
        training = (details.get("trainingDetails") or {}).get("status")
        return (
            JobStatus.STARTING
            if details and training in (None, "NotStarted")
            else JobStatus.RUNNING
        )
    if status not in _STATUSES:
        log.warning("Unknown Bedrock customization job status %r; taken as running", status)
    return _STATUSES.get(status, JobStatus.RUNNING)


def _final_metrics(job: dict[str, Any]) -> dict[str, float]:
    """``trainingMetrics`` and ``validationMetrics`` under the portal's names (a ``_2``…
    suffix from the second validator on)."""
    figures = [job.get("trainingMetrics") or {}, *(job.get("validationMetrics") or [])]
    metrics: dict[str, float] = {}
    for index, figure in enumerate(figures):
        suffix = f"_{index}" if index > 1 else ""
        metrics.update({_FINAL_METRICS.get(k, k) + suffix: float(v) for k, v in figure.items()})
    return metrics


def _curve(text: str, column: str) -> list[tuple[int, float]]:
    points = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            points.append((int(float(row["step_number"])), float(row[column])))
        except (KeyError, TypeError, ValueError):
            continue  # a header repeated or a row cut short: the rest of the curve still counts
    return points


def _distillation_config(hyperparameters: dict[str, str], rules: Customization) -> dict[str, Any]:
    defaults = {spec.name: spec.default for spec in rules.hyperparameters}
    teacher, length = (hyperparameters.pop(name, defaults[name]) for name in DISTILLATION_SETTINGS)
    teacher_config = {
        "teacherModelIdentifier": teacher,
        "maxResponseLengthForInference": int(str(length)),
    }
    return {"distillationConfig": {"teacherModelConfig": teacher_config}}


def _format_problem(
    model: BedrockBaseModel, kind: CustomizationType, rules: Customization, fmt: str
) -> str:
    if not rules.data_formats:
        return rules.note
    needed = " or ".join(f.label for f in rules.data_formats)
    given = DatasetFormat(fmt).label if fmt in set(DatasetFormat) else fmt
    return f"{kind.label} of {model.name} needs {needed} records; this dataset is {given}"


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else "—"
