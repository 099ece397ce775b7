"""Datasets: register a version from an upload or S3 after checking every line and scanning
for PII, split it deterministically, and record exceptions for PII findings.

Nothing is half-registered: the bytes are checked in a private temporary file, kept in their
content folder only when valid, and the database rows are written in one transaction; if that
transaction fails, a folder this registration created is removed again."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from models.dataset import Dataset, DatasetCreate, DatasetVersion, PiiStatus
from models.team import Team
from models.types import utcnow
from services import audit
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.errors import Conflict, NotFound, PermissionDenied, ValidationError
from services.permissions import Permission
from services.registry import dataset_files
from services.registry.dataset_files import DatasetSource
from services.registry.formats import DatasetFormat
from services.registry.inspection import DatasetReport, inspect_jsonl
from services.registry.splits import split_jsonl

log = logging.getLogger(__name__)

MIN_EXCEPTION_REASON = 10


class DatasetRejected(ValidationError):
    """The file is not a valid dataset of the chosen format; ``report`` says line by line why."""

    def __init__(self, report: DatasetReport) -> None:
        super().__init__(
            f"The file is not a valid {report.format.label} dataset: {report.issue_count:,} "
            f"bad line(s) among {report.record_count:,}. Nothing was registered.",
            fields={"file": f"{report.issue_count} bad lines"},
        )
        self.report = report


@dataclass(frozen=True)
class SplitOptions:
    seed: int = 42
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    stratify_field: str | None = None

    def check(self) -> None:
        """Refuse split settings that cannot work, before any byte is read."""
        if any(f < 0 for f in self.fractions) or abs(sum(self.fractions) - 1) > 1e-6:
            raise ValidationError(
                "Split: train, validation and test must be between 0 and 1 and add up to 1.",
                fields={"split": "fractions must add up to 1"},
            )
        if self.fractions[0] == 0:
            raise ValidationError(
                "Split: the training split cannot be empty.", fields={"split": "train is 0"}
            )
        if self.stratify_field is not None and not self.stratify_field.isidentifier():
            raise ValidationError(
                "Split: the stratify field must be a top-level JSON key name.",
                fields={"stratify_field": "not a field name"},
            )

    @property
    def folder_name(self) -> str:
        """Splits depend on these options, so each set of options has its own folder."""
        parts = "-".join(f"{f:g}" for f in self.fractions)
        return f"seed{self.seed}-{parts}-{self.stratify_field or 'unstratified'}"


@dataclass(frozen=True)
class Registration:
    version: DatasetVersion
    dataset_name: str
    report: DatasetReport
    duplicate: bool  # the same bytes were already this dataset's version ``version.number``


def _check_target(session: Session, dataset_id: int | None, new: DatasetCreate | None) -> None:
    if dataset_id is not None:
        if session.get(Dataset, dataset_id) is None:
            raise NotFound(f"No dataset with id {dataset_id}.")
        return
    if new is None:
        raise ValidationError("Choose a dataset or name a new one.", fields={"dataset": "required"})
    taken = session.exec(
        select(Dataset.id).where(func.lower(Dataset.name) == new.name.lower())
    ).first()
    if taken is not None:
        raise Conflict(f"A dataset named {new.name!r} already exists: add a version to it instead.")
    if new.owner_team_id is not None and session.get(Team, new.owner_team_id) is None:
        raise ValidationError(
            "Owner team: does not exist.", fields={"owner_team_id": "does not exist"}
        )


def _inspect(
    source: DatasetSource,
    fmt: DatasetFormat,
    settings: Settings,
    incoming: Path,
    progress: Callable[[int, int | None], None] | None,
) -> DatasetReport:
    limit = settings.max_dataset_mb * (1 << 20)
    with dataset_files.opened(source, settings) as (stream, size), incoming.open("wb") as copy:
        if size is not None and size > limit:
            raise ValidationError(
                f"{source.name} is {size / (1 << 20):,.0f} MB, more than the "
                f"{settings.max_dataset_mb:,} MB limit (PORTAL_MAX_DATASET_MB). "
                "Nothing was registered."
            )
        reader = dataset_files.SizeLimitedReader(stream, copy, limit, source.name)
        return inspect_jsonl(
            reader,
            fmt,
            progress=(lambda done: progress(done, size)) if progress else None,
        )


def register_version(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    source: DatasetSource,
    fmt: DatasetFormat,
    dataset_id: int | None = None,
    new_dataset: DatasetCreate | None = None,
    split: SplitOptions = SplitOptions(),
    progress: Callable[[int, int | None], None] | None = None,
) -> Registration:
    """Check, scan, split and register one dataset version (to an existing dataset, or a new
    one named in ``new_dataset``). Raises ``DatasetRejected`` with the report when invalid."""
    split.check()
    with db.read() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        _check_target(session, dataset_id, new_dataset)
    with dataset_files.incoming_file(settings) as incoming:
        report = _inspect(source, fmt, settings, incoming, progress)
        if not report.is_valid:
            raise DatasetRejected(report)
        destination = dataset_files.content_dir(settings, report.sha256)
        created_folder = dataset_files.keep(incoming, destination)
    try:
        splits = split_jsonl(
            destination / "data.jsonl",
            destination / "splits" / split.folder_name,
            seed=split.seed,
            fractions=split.fractions,
            stratify_field=split.stratify_field,
        )
        stored = {
            name: {"uri": str(f.path), "sha256": f.sha256, "records": f.records}
            for name, f in splits.items()
        }
        return _record(
            db, actor, source, fmt, report, destination, split, stored, dataset_id, new_dataset
        )
    except BaseException:
        if created_folder:
            shutil.rmtree(destination, ignore_errors=True)
        raise


def _record(
    db: Database,
    actor: Actor,
    source: DatasetSource,
    fmt: DatasetFormat,
    report: DatasetReport,
    destination: Path,
    split: SplitOptions,
    splits: dict[str, Any],
    dataset_id: int | None,
    new_dataset: DatasetCreate | None,
) -> Registration:
    with db.write() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        _check_target(session, dataset_id, new_dataset)
        dataset: Dataset | None
        if dataset_id is None:
            assert new_dataset is not None
            dataset = Dataset.model_validate(new_dataset, update={"created_by": actor.username})
            session.add(dataset)
            session.flush()
        else:
            dataset = session.get(Dataset, dataset_id)
        assert dataset is not None and dataset.id is not None
        same = session.exec(
            select(DatasetVersion).where(
                DatasetVersion.dataset_id == dataset.id, DatasetVersion.sha256 == report.sha256
            )
        ).first()
        if same is not None:
            return Registration(same, dataset.name, report, duplicate=True)
        number = (
            int(
                session.exec(
                    select(func.max(DatasetVersion.number)).where(
                        DatasetVersion.dataset_id == dataset.id
                    )
                ).one()
                or 0
            )
            + 1
        )
        findings = {kind: asdict(finding) for kind, finding in report.pii.items()}
        version = DatasetVersion(
            dataset_id=dataset.id,
            number=number,
            sha256=report.sha256,
            format=fmt.value,
            source_uri=source.name[:1000],
            storage_uri=str(destination / "data.jsonl"),
            size_bytes=report.size_bytes,
            record_count=report.record_count,
            token_estimate=report.token_estimate,
            pii_status=(PiiStatus.FLAGGED if findings else PiiStatus.CLEAN).value,
            pii_findings=findings,
            split_seed=split.seed,
            stratify_field=split.stratify_field,
            splits=splits,
            created_by=actor.username,
        )
        session.add(version)
        session.flush()
        audit.record(
            session,
            actor=actor.username,
            action="dataset.version_register",
            entity_type="dataset_version",
            entity_id=version.id,
            summary=f"Registered {dataset.name} v{number} ({report.record_count:,} records, "
            f"PII {version.pii_status})",
            after={
                "sha256": report.sha256,
                "records": report.record_count,
                "pii": {k: f["count"] for k, f in findings.items()},
            },
        )
        return Registration(version, dataset.name, report, duplicate=False)


def except_pii(db: Database, *, actor: Actor, version_id: int, reason: str) -> DatasetVersion:
    """An approver or admin accepts a flagged dataset's PII findings, with a reason."""
    reason = reason.strip()
    if len(reason) < MIN_EXCEPTION_REASON:
        raise ValidationError(
            f"Reason: say why in at least {MIN_EXCEPTION_REASON} characters.",
            fields={"reason": "too short"},
        )
    with db.write() as session:
        require(session, actor, Permission.EXCEPT_DATASET_PII)
        version = session.get(DatasetVersion, version_id)
        if version is None:
            raise NotFound(f"No dataset version with id {version_id}.")
        if version.pii_status != PiiStatus.FLAGGED.value:
            raise Conflict(
                f"This dataset version is {version.pii_status}; only a flagged one "
                "needs an exception."
            )
        if version.created_by == actor.username:
            raise PermissionDenied(
                "You registered this dataset version; another approver or "
                "administrator must record the exception."
            )
        version.pii_status = PiiStatus.EXCEPTED.value
        version.pii_exception_reason, version.pii_exception_by = reason, actor.username
        version.pii_exception_at = utcnow()
        session.add(version)
        audit.record(
            session,
            actor=actor.username,
            action="dataset.pii_exception",
            entity_type="dataset_version",
            entity_id=version.id,
            summary=f"Accepted the PII findings of dataset version {version.id}: {reason}",
            before={"pii_status": "flagged"},
            after={"pii_status": "excepted"},
        )
        return version


def ensure_trainable(session: Session, version_id: int) -> DatasetVersion:
    """Fine-tuning refuses a dataset version whose PII findings nobody has accepted."""
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound(f"No dataset version with id {version_id}.")
    if version.pii_status == PiiStatus.FLAGGED.value:
        raise PermissionDenied(
            "This dataset version is flagged for personal data; an approver "
            "must record an exception before it can be used for training."
        )
    return version
