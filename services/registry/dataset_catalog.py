"""Reading datasets: the list with each one's newest version, and one dataset's versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from models.dataset import Dataset, DatasetVersion
from models.team import Team
from services.access import Actor, require
from services.db import Database, text_match
from services.errors import NotFound
from services.permissions import Permission


@dataclass(frozen=True)
class DatasetRow:
    id: int
    name: str
    owner_team: str | None
    versions: int
    latest: int | None
    records: int | None
    size_bytes: int | None
    format: str | None
    pii_status: str | None
    updated_at: datetime


@dataclass(frozen=True)
class DatasetDetail:
    dataset: Dataset
    owner_team: str | None
    versions: list[DatasetVersion]


def list_datasets(db: Database, *, actor: Actor, text: str = "") -> list[DatasetRow]:
    """Every dataset (matching ``text``) with the facts of its newest version."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        latest = (
            select(
                DatasetVersion.dataset_id,
                func.max(DatasetVersion.number).label("n"),
                func.count().label("count"),
            )
            .group_by(col(DatasetVersion.dataset_id))
            .subquery()
        )
        stmt = (
            select(Dataset, col(Team.name), latest.c.count, DatasetVersion)
            .outerjoin(Team, col(Team.id) == col(Dataset.owner_team_id))
            .outerjoin(latest, latest.c.dataset_id == col(Dataset.id))
            .outerjoin(
                DatasetVersion,
                (col(DatasetVersion.dataset_id) == col(Dataset.id))
                & (col(DatasetVersion.number) == latest.c.n),
            )
            .order_by(func.lower(Dataset.name))
        )
        if text.strip():
            stmt = stmt.where(text_match(text, Dataset.name, Dataset.description))
        rows = session.exec(stmt).all()
    return [
        DatasetRow(
            id=d.id or 0,
            name=d.name,
            owner_team=team,
            versions=count or 0,
            latest=v.number if v else None,
            records=v.record_count if v else None,
            size_bytes=v.size_bytes if v else None,
            format=v.format if v else None,
            pii_status=v.pii_status if v else None,
            updated_at=v.created_at if v else d.created_at,
        )
        for d, team, count, v in rows
    ]


def dataset_detail(db: Database, *, actor: Actor, dataset_id: int) -> DatasetDetail:
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise NotFound(f"No dataset with id {dataset_id}.")
        team = session.get(Team, dataset.owner_team_id) if dataset.owner_team_id else None
        versions = session.exec(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(col(DatasetVersion.number).desc())
        ).all()
        return DatasetDetail(dataset, team.name if team else None, list(versions))


def version_choices(db: Database, *, actor: Actor) -> list[tuple[int, str]]:
    """Every dataset version as (id, "name vN · records · PII"), newest first, for pickers."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        rows = session.exec(
            select(DatasetVersion, col(Dataset.name))
            .join(Dataset, col(Dataset.id) == col(DatasetVersion.dataset_id))
            .order_by(col(DatasetVersion.created_at).desc())
        ).all()
    return [
        (v.id or 0, f"{name} v{v.number} · {v.record_count:,} records · PII {v.pii_status}")
        for v, name in rows
    ]
