"""Browsing the catalog: search with filters, sorting and pages, and the picker values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import exists, func, select
from sqlmodel import Session, col

from models.registry import ModelAsset, ModelVersion, Stage
from models.team import Team
from services.access import Actor, require
from services.db import Database, text_match
from services.paging import Page, clamp_page
from services.permissions import Permission

SortKey = Literal["name", "updated", "provider", "versions"]
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class ModelQuery:
    """What the Registry page's filter row asks for; every part is optional."""

    text: str = ""
    kinds: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    team_ids: tuple[int, ...] = ()
    tag: str = ""  # "key" or "key=value"
    base_model: str = ""
    sort: SortKey = "name"


@dataclass(frozen=True)
class ModelRow:
    id: int
    name: str
    kind: str
    provider: str
    source: str
    owner_team: str | None
    base_model: str | None
    tags: dict[str, str]
    version_count: int
    latest_version: int | None
    production_version: int | None
    staging_version: int | None
    updated_at: datetime


ModelPage = Page[ModelRow]


@dataclass(frozen=True)
class FilterOptions:
    providers: list[str] = field(default_factory=list)
    teams: list[tuple[int, str]] = field(default_factory=list)
    base_models: list[str] = field(default_factory=list)
    tag_keys: list[str] = field(default_factory=list)


def _version_stat(fn: Any, *, stage: Stage | None = None) -> Any:
    stmt = select(fn).where(col(ModelVersion.model_id) == col(ModelAsset.id))
    if stage is not None:
        stmt = stmt.where(col(ModelVersion.stage) == stage.value)
    return stmt.correlate(ModelAsset).scalar_subquery()


def _filtered(query: ModelQuery) -> Any:
    stmt = select(col(ModelAsset.id))
    if query.text.strip():
        stmt = stmt.where(
            text_match(
                query.text,
                ModelAsset.name,
                ModelAsset.description,
                ModelAsset.source_ref,
                ModelAsset.provider,
            )
        )
    if query.kinds:
        stmt = stmt.where(col(ModelAsset.kind).in_(query.kinds))
    if query.providers:
        stmt = stmt.where(col(ModelAsset.provider).in_(query.providers))
    if query.team_ids:
        stmt = stmt.where(col(ModelAsset.owner_team_id).in_(query.team_ids))
    if query.base_model.strip():
        stmt = stmt.where(text_match(query.base_model, ModelAsset.base_model))
    if query.stages:
        in_stage = exists().where(
            col(ModelVersion.model_id) == col(ModelAsset.id),
            col(ModelVersion.stage).in_(query.stages),
        )
        stmt = stmt.where(in_stage)
    if query.tag.strip():
        key, _, value = query.tag.strip().partition("=")
        tag = col(ModelAsset.tags)[key.strip()].as_string()
        stmt = stmt.where(tag == value.strip() if value.strip() else tag.is_not(None))
    return stmt


_ORDER = {
    "name": lambda: (func.lower(ModelAsset.name), col(ModelAsset.id)),
    "updated": lambda: (col(ModelAsset.updated_at).desc(), col(ModelAsset.id)),
    "provider": lambda: (col(ModelAsset.provider), func.lower(ModelAsset.name)),
    "versions": lambda: (_version_stat(func.count()).desc(), func.lower(ModelAsset.name)),
}


def search_models(
    db: Database, *, actor: Actor, query: ModelQuery, page: int = 1, page_size: int = 25
) -> ModelPage:
    """One page of models matching ``query``, with their version counts and the versions now
    in production and staging."""
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        ids = _filtered(query).subquery()
        total = session.execute(select(func.count()).select_from(ids)).scalar_one()
        page = clamp_page(page, total, page_size)
        stmt = (
            select(
                ModelAsset,
                col(Team.name),
                _version_stat(func.count()),
                _version_stat(func.max(ModelVersion.number)),
                _version_stat(func.max(ModelVersion.number), stage=Stage.PRODUCTION),
                _version_stat(func.max(ModelVersion.number), stage=Stage.STAGING),
            )
            .outerjoin(Team, col(Team.id) == col(ModelAsset.owner_team_id))
            .where(col(ModelAsset.id).in_(select(ids.c.id)))
            .order_by(*_ORDER[query.sort]())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        rows = [
            ModelRow(
                id=m.id,
                name=m.name,
                kind=m.kind,
                provider=m.provider,
                source=m.source,
                owner_team=team,
                base_model=m.base_model,
                tags=dict(m.tags),
                version_count=count,
                latest_version=latest,
                production_version=prod,
                staging_version=staging,
                updated_at=m.updated_at,
            )
            for m, team, count, latest, prod, staging in session.execute(stmt).all()
        ]
    return ModelPage(rows, total, page, page_size)


def filter_options(db: Database, *, actor: Actor) -> FilterOptions:
    """The values the filter pickers offer: what occurs in the catalog now."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        return _options(session)


def _options(session: Session) -> FilterOptions:
    providers = (
        session.execute(
            select(col(ModelAsset.provider))
            .where(col(ModelAsset.provider) != "")
            .distinct()
            .order_by(ModelAsset.provider)
        )
        .scalars()
        .all()
    )
    teams = session.execute(
        select(col(Team.id), col(Team.name))
        .where(exists().where(col(ModelAsset.owner_team_id) == col(Team.id)))
        .order_by(Team.name)
    ).all()
    bases = (
        session.execute(
            select(col(ModelAsset.base_model))
            .where(col(ModelAsset.base_model).is_not(None))
            .distinct()
            .order_by(ModelAsset.base_model)
        )
        .scalars()
        .all()
    )
    tag_keys: set[str] = set()
    for tags in session.execute(select(col(ModelAsset.tags))).scalars():
        tag_keys.update(tags or {})
    return FilterOptions(
        list(providers), [(t[0], t[1]) for t in teams], list(bases), sorted(tag_keys)
    )
