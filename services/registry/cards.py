"""Reading one model: its versions, a version's model card, the production timeline, the
lineage graph and a side-by-side comparison of two versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.dataset import Dataset, DatasetVersion
from models.registry import ModelAsset, ModelVersion, Stage, StageChange
from models.team import Team
from services.access import Actor, require
from services.db import Database
from services.permissions import Permission
from services.registry.assets import load_model, load_version


@dataclass(frozen=True)
class TrainingData:
    dataset_id: int
    dataset_name: str
    version_id: int
    number: int
    sha256: str
    records: int
    pii_status: str


@dataclass(frozen=True)
class ProductionSpell:
    """One version's time in a stage: from ``since`` until ``until`` (None: still there)."""

    version: int
    since: datetime
    until: datetime | None


@dataclass(frozen=True)
class ModelDetail:
    model: ModelAsset
    owner_team: str | None
    versions: list[ModelVersion]
    production_timeline: list[ProductionSpell]


@dataclass(frozen=True)
class VersionCard:
    model: ModelAsset
    owner_team: str | None
    version: ModelVersion
    training_data: TrainingData | None
    stage_history: list[StageChange]


def _team(session: Session, team_id: int | None) -> str | None:
    team = session.get(Team, team_id) if team_id else None
    return team.name if team else None


def _training_data(session: Session, version: ModelVersion) -> TrainingData | None:
    if version.dataset_version_id is None:
        return None
    dv = session.get(DatasetVersion, version.dataset_version_id)
    if dv is None:
        return None
    dataset = session.get(Dataset, dv.dataset_id)
    assert dv.id is not None and dataset is not None
    return TrainingData(
        dv.dataset_id, dataset.name, dv.id, dv.number, dv.sha256, dv.record_count, dv.pii_status
    )


def stage_timeline(session: Session, model_id: int, stage: Stage) -> list[ProductionSpell]:
    """Which version was in ``stage`` when, oldest first (MLflow cannot answer this)."""
    changes = session.exec(
        select(StageChange, ModelVersion.number)
        .join(ModelVersion, col(ModelVersion.id) == col(StageChange.model_version_id))
        .where(ModelVersion.model_id == model_id)
        .order_by(col(StageChange.changed_at), col(StageChange.id))
    ).all()
    spells: list[ProductionSpell] = []
    open_since: dict[int, datetime] = {}
    for change, number in changes:
        if change.to_stage == stage.value:
            open_since[number] = change.changed_at
        elif change.from_stage == stage.value and number in open_since:
            spells.append(ProductionSpell(number, open_since.pop(number), change.changed_at))
    spells += [ProductionSpell(n, since, None) for n, since in open_since.items()]
    return sorted(spells, key=lambda s: s.since)


def model_detail(db: Database, *, actor: Actor, model_id: int) -> ModelDetail:
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        model = load_model(session, model_id)
        versions = session.exec(
            select(ModelVersion)
            .where(ModelVersion.model_id == model_id)
            .order_by(col(ModelVersion.number).desc())
        ).all()
        return ModelDetail(
            model,
            _team(session, model.owner_team_id),
            list(versions),
            stage_timeline(session, model_id, Stage.PRODUCTION),
        )


def version_card(db: Database, *, actor: Actor, model_id: int, number: int) -> VersionCard:
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        model = load_model(session, model_id)
        version = load_version(session, model_id, number)
        history = session.exec(
            select(StageChange)
            .where(StageChange.model_version_id == version.id)
            .order_by(col(StageChange.changed_at), col(StageChange.id))
        ).all()
        return VersionCard(
            model,
            _team(session, model.owner_team_id),
            version,
            _training_data(session, version),
            list(history),
        )


@dataclass(frozen=True)
class ComparisonRow:
    section: str
    item: str
    left: str
    right: str

    @property
    def differs(self) -> bool:
        return self.left != self.right


def _text(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def compare_versions(
    db: Database, *, actor: Actor, model_id: int, left: int, right: int
) -> list[ComparisonRow]:
    """Two versions side by side: data, parameters and metrics, one row per item."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        a, b = load_version(session, model_id, left), load_version(session, model_id, right)
        data_a, data_b = _training_data(session, a), _training_data(session, b)

    def data(d: TrainingData | None) -> dict[str, object]:
        if d is None:
            return {"dataset": None}
        return {
            "dataset": f"{d.dataset_name} v{d.number}",
            "sha256": d.sha256[:12],
            "records": d.records,
            "PII": d.pii_status,
        }

    rows = [
        ComparisonRow("Version", item, _text(getattr(a, item)), _text(getattr(b, item)))
        for item in ("stage", "base_model", "artifact_uri", "mlflow_run_id", "created_by")
    ]
    sections = (
        ("Data", data(data_a), data(data_b)),
        ("Parameters", a.params, b.params),
        ("Metrics", a.metrics, b.metrics),
    )
    for section, one, two in sections:
        rows += [
            ComparisonRow(section, key, _text(one.get(key)), _text(two.get(key)))
            for key in sorted(set(one) | set(two))
        ]
    return rows
