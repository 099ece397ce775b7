"""Demo promotion requests, filed and decided through the real services by the demo users:
one waiting for its second approval, one approved, one rejected, one withdrawn."""

from __future__ import annotations

from sqlmodel import select

from models.promotion import PromotionRequest, RequestCreate
from models.registry import ModelAsset, ModelVersion
from models.user import User
from services.access import Actor
from services.config import Settings
from services.db import Database
from services.promotions.decisions import approve, reject
from services.promotions.requests import request_promotion, withdraw


def seed_requests(db: Database, settings: Settings) -> str:
    """File the demo requests unless some exist already. Returns a one-line summary."""
    with db.read() as session:
        if session.exec(select(PromotionRequest.id)).first() is not None:
            return "promotion requests already present"
        people = {u.username: Actor.of(u) for u in session.exec(select(User)).all()}
        versions = {
            (name, v.number): v.id
            for v, name in session.exec(
                select(ModelVersion, ModelAsset.name).join(
                    ModelAsset,
                    ModelAsset.id == ModelVersion.model_id,  # type: ignore[arg-type]
                )
            ).all()
        }
    if not {"dana", "sam", "priya", "omar"} <= people.keys():
        return "no promotion requests (the demo users are missing)"

    def file(who: str, model: str, number: int, stage: str, why: str) -> int:
        request = request_promotion(
            db,
            actor=people[who],
            data=RequestCreate(
                model_version_id=versions[(model, number)] or 0,
                target_stage=stage,
                justification=why,
            ),
        )
        return request.id or 0

    pending = file(
        "dana",
        "Support assistant",
        3,
        "production",
        "v3 cuts eval loss by 0.17 against v2 and agents accepted 81% of its drafts in the "
        "two-week staging trial (ticket CARE-311).",
    )
    approve(
        db, settings, actor=people["priya"], request_id=pending, comment="Trial data checks out."
    )

    approved = file(
        "sam",
        "Query rewriter",
        4,
        "staging",
        "Retrained on the November query log; offline recall@10 up 3 points. Ready for the "
        "shadow-traffic trial.",
    )
    approve(
        db, settings, actor=people["omar"], request_id=approved, comment="Go for shadow traffic."
    )

    withdrawn = file(
        "dana",
        "Support assistant",
        4,
        "staging",
        "Early look at the December refresh for the staging trial.",
    )
    withdraw(db, actor=people["dana"], request_id=withdrawn, comment="Waiting for the full export.")
    rejected = file(
        "dana",
        "Support assistant",
        4,
        "staging",
        "December refresh on the full export; eval loss on par with v3 at half the epochs.",
    )
    reject(
        db,
        settings,
        actor=people["omar"],
        request_id=rejected,
        comment="The eval split overlaps the March export used for training; re-split and re-run.",
    )
    return "4 promotion requests (pending, approved, withdrawn, rejected)"
