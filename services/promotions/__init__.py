"""Promotions: requests with evidence, policy gates, approvals with separation of duties,
the stage change they apply, and the side effects mirrored into MLflow, SageMaker and a
deployment webhook."""

from services.promotions.decisions import approve, reject
from services.promotions.policies import current_policies, policy_history, save_policy
from services.promotions.queries import (
    RequestDetail,
    RequestFilter,
    RequestRow,
    approval_queue,
    list_requests,
    request_detail,
    requestable_versions,
    requests_of_version,
    target_choices,
)
from services.promotions.requests import expire_due, request_promotion, withdraw
from services.promotions.side_effects import retry, run_due

__all__ = [
    "RequestDetail",
    "RequestFilter",
    "RequestRow",
    "approval_queue",
    "approve",
    "current_policies",
    "expire_due",
    "list_requests",
    "policy_history",
    "reject",
    "request_detail",
    "request_promotion",
    "requestable_versions",
    "requests_of_version",
    "retry",
    "run_due",
    "save_policy",
    "target_choices",
    "withdraw",
]
