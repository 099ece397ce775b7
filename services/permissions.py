"""Who may do what: the roles table of ARCHITECTURE.md as data, checked by every service."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from models.user import Role


class Permission(StrEnum):
    VIEW_REGISTRY = "view_registry"
    MANAGE_REGISTRY = "manage_registry"
    EXCEPT_DATASET_PII = "except_dataset_pii"
    SYNC_REGISTRY = "sync_registry"
    VIEW_JOBS = "view_jobs"
    LAUNCH_JOBS = "launch_jobs"
    STOP_ANY_JOB = "stop_any_job"
    VIEW_EXPERIMENTS = "view_experiments"
    VIEW_PROMOTIONS = "view_promotions"
    REQUEST_PROMOTION = "request_promotion"
    APPROVE_PROMOTION = "approve_promotion"
    VIEW_OWN_USAGE = "view_own_usage"
    VIEW_ALL_USAGE = "view_all_usage"
    MANAGE_BUDGETS = "manage_budgets"
    MANAGE_USERS = "manage_users"
    MANAGE_TEAMS = "manage_teams"
    VIEW_AUDIT = "view_audit"
    MANAGE_POLICIES = "manage_policies"
    MANAGE_PRICES = "manage_prices"
    INGEST_USAGE = "ingest_usage"


_READ_MODELS = {
    Permission.VIEW_REGISTRY,
    Permission.VIEW_JOBS,
    Permission.VIEW_EXPERIMENTS,
    Permission.VIEW_PROMOTIONS,
    Permission.VIEW_OWN_USAGE,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.DATA_SCIENTIST: frozenset(
        _READ_MODELS
        | {
            Permission.MANAGE_REGISTRY,
            Permission.SYNC_REGISTRY,
            Permission.LAUNCH_JOBS,
            Permission.REQUEST_PROMOTION,
        }
    ),
    Role.APPROVER: frozenset(
        _READ_MODELS | {Permission.APPROVE_PROMOTION, Permission.EXCEPT_DATASET_PII}
    ),
    Role.MANAGER: frozenset({Permission.VIEW_ALL_USAGE, Permission.MANAGE_BUDGETS}),
    Role.ADMIN: frozenset(
        {
            Permission.MANAGE_USERS,
            Permission.MANAGE_TEAMS,
            Permission.VIEW_AUDIT,
            Permission.MANAGE_POLICIES,
            Permission.MANAGE_PRICES,
            Permission.INGEST_USAGE,  # load gateway logs (automation runs as the command line)
            Permission.VIEW_ALL_USAGE,  # usage and cost of every team, as managers see it
            Permission.EXCEPT_DATASET_PII,
            Permission.SYNC_REGISTRY,
            Permission.VIEW_REGISTRY,  # to read the catalog and decide on flagged datasets
            Permission.VIEW_JOBS,  # to see what runs on the organisation's compute
            Permission.STOP_ANY_JOB,
        }
    ),
}


def permissions_of(roles: Iterable[Role | str]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[Role(role)]
    return frozenset(granted)


def roles_granting(permission: Permission) -> list[Role]:
    return [role for role in Role if permission in ROLE_PERMISSIONS[role]]


@dataclass(frozen=True)
class PageAccess:
    """A page and the permissions that open it (any one is enough; none means everyone)."""

    key: str
    any_of: frozenset[Permission] = frozenset()

    def allows(self, roles: Iterable[Role | str]) -> bool:
        return not self.any_of or bool(self.any_of & permissions_of(roles))

    def required_roles(self) -> list[Role]:
        return [role for role in Role if self.allows([role])]


PAGES: dict[str, PageAccess] = {
    page.key: page
    for page in (
        PageAccess("home"),
        PageAccess("registry", frozenset({Permission.VIEW_REGISTRY})),
        PageAccess("fine-tuning", frozenset({Permission.VIEW_JOBS})),
        PageAccess("experiments", frozenset({Permission.VIEW_EXPERIMENTS})),
        PageAccess("promotions", frozenset({Permission.VIEW_PROMOTIONS})),
        PageAccess("usage", frozenset({Permission.VIEW_OWN_USAGE, Permission.VIEW_ALL_USAGE})),
        PageAccess("admin", frozenset({Permission.MANAGE_USERS})),
    )
}
