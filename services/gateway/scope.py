"""Who sees which usage: managers and admins every team; everyone else with the Usage page
their own requests and their team's totals (not its members' or keys' breakdown)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlmodel import Session

from models.team import Team
from models.user import User
from services.access import Actor, require_any, roles_of
from services.errors import PermissionDenied, ValidationError
from services.permissions import Permission, permissions_of

DIMENSIONS = ("day", "team", "user", "key", "model", "provider", "tag")
"""What a report can group by or filter on ("key" is the API key alias or IAM principal)."""
MAX_DAYS = 400


@dataclass(frozen=True)
class UsageQuery:
    """A date range (inclusive, reporting time zone days), filters and a grouping. In a
    filter, "" stands for "none": the requests with no team, user, key or tag."""

    start: date
    end: date
    group_by: tuple[str, ...] = ("team",)
    teams: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    team_totals: bool = False
    """For people who see only their own usage: their team's totals instead."""

    def check(self) -> None:
        if self.end < self.start:
            raise ValidationError(
                f"The range ends ({self.end}) before it starts ({self.start}).",
                fields={"range": "end before start"},
            )
        if (self.end - self.start).days >= MAX_DAYS:
            raise ValidationError(
                f"Choose at most {MAX_DAYS} days at a time.", fields={"range": "too long"}
            )
        unknown = [d for d in self.group_by if d not in DIMENSIONS]
        if unknown:
            raise ValidationError(
                f"Cannot group by {', '.join(unknown)}; choose from {', '.join(DIMENSIONS)}.",
                fields={"group_by": "unknown dimension"},
            )

    def filtered(self) -> set[str]:
        pairs = {
            "team": self.teams,
            "user": self.users,
            "key": self.keys,
            "model": self.models,
            "provider": self.providers,
            "tag": self.tags,
        }
        return {name for name, values in pairs.items() if values}


def usage_viewer(session: Session, actor: Actor) -> tuple[User | None, bool]:
    """Refuse those with no usage to see; otherwise the actor's row and whether they see
    every team (managers, admins) or only their own usage and team."""
    user = require_any(session, actor, Permission.VIEW_ALL_USAGE, Permission.VIEW_OWN_USAGE)
    return user, Permission.VIEW_ALL_USAGE in permissions_of(roles_of(actor, user))


def visible_query(
    session: Session, actor: Actor, query: UsageQuery, *, requests: bool = False
) -> UsageQuery:
    """``query`` narrowed to what ``actor`` may see; refused where narrowing cannot help.
    ``requests``: the caller lists single requests (who made each), not totals."""
    query.check()
    user, sees_all = usage_viewer(session, actor)
    if sees_all:
        return query
    if not query.team_totals:
        return replace(query, users=(actor.username,))
    team = session.get(Team, user.team_id) if user is not None and user.team_id else None
    if team is None:
        raise PermissionDenied("You belong to no team, so there are no team totals to show.")
    if requests or {"user", "key"} & (set(query.group_by) | query.filtered()):
        raise PermissionDenied(
            "You can see your team's totals, not how they split by person or key; a manager can."
        )
    return replace(query, teams=(team.name,))
