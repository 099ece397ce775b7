"""Teams: name, cost center and monthly budget. Administrators create and edit them;
every logged-in user may list them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from models.team import Team, TeamCreate, TeamPublic, TeamUpdate
from models.user import User
from services import audit
from services.access import Actor, require
from services.db import Database
from services.errors import Conflict, NotFound
from services.permissions import Permission


def _snapshot(team: Team) -> dict[str, Any]:
    return {
        "name": team.name,
        "cost_center": team.cost_center,
        "monthly_budget": str(team.monthly_budget),
    }


def _name_taken(session: Session, name: str, *, excluding: int | None = None) -> bool:
    stmt = select(Team.id).where(func.lower(Team.name) == name.lower())
    if excluding is not None:
        stmt = stmt.where(Team.id != excluding)
    return session.exec(stmt).first() is not None


def list_teams(db: Database) -> list[TeamPublic]:
    """All teams with their member counts, by name."""
    with db.read() as session:
        counts = dict(
            session.exec(
                select(User.team_id, func.count())
                .where(col(User.team_id).is_not(None))
                .group_by(col(User.team_id))
            ).all()
        )
        teams = session.exec(select(Team).order_by(col(Team.name))).all()
        return [
            TeamPublic.model_validate(t, update={"member_count": counts.get(t.id, 0)})
            for t in teams
        ]


def create_team(db: Database, *, actor: Actor, data: TeamCreate) -> TeamPublic:
    with db.write() as session:
        require(session, actor, Permission.MANAGE_TEAMS)
        if _name_taken(session, data.name):
            raise Conflict(f"A team named {data.name!r} already exists.")
        team = Team.model_validate(data)
        session.add(team)
        try:
            session.flush()
        except IntegrityError as exc:
            raise Conflict(f"A team named {data.name!r} already exists.") from exc
        audit.record(
            session,
            actor=actor.username,
            action="team.create",
            entity_type="team",
            entity_id=team.id,
            summary=f"Created team {team.name} (cost center {team.cost_center or '—'}, "
            f"monthly budget ${team.monthly_budget:,.2f})",
            after=_snapshot(team),
        )
        return TeamPublic.model_validate(team)


def update_team(
    db: Database, *, actor: Actor, team_id: int, data: TeamUpdate, expected_version: int
) -> TeamPublic:
    with db.write() as session:
        require(session, actor, Permission.MANAGE_TEAMS)
        team = session.get(Team, team_id)
        if team is None:
            raise NotFound(f"No team with id {team_id}.")
        if team.version != expected_version:
            raise Conflict(
                f"Team {team.name} was changed by someone else since you opened it. "
                "Reload the page and make your change again."
            )
        if _name_taken(session, data.name, excluding=team.id):
            raise Conflict(f"A team named {data.name!r} already exists.")
        before = _snapshot(team)
        team.name, team.cost_center, team.monthly_budget = (
            data.name,
            data.cost_center,
            data.monthly_budget,
        )
        after = _snapshot(team)
        if after == before:
            return TeamPublic.model_validate(team)
        team.version += 1
        session.add(team)
        changed = {k for k in after if after[k] != before[k]}
        audit.record(
            session,
            actor=actor.username,
            action="team.update",
            entity_type="team",
            entity_id=team.id,
            summary=f"Changed {', '.join(sorted(changed))} of team {team.name}",
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
        return TeamPublic.model_validate(team)


def find_team(db: Database, name: str) -> TeamPublic:
    with db.read() as session:
        team = session.exec(
            select(Team).where(func.lower(Team.name) == name.strip().lower())
        ).first()
        if team is None:
            raise NotFound(f"No team named {name!r}.")
        return TeamPublic.model_validate(team)
