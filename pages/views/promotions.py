"""Promotions: not available yet (issue #6)."""

from pages.components.guard import page_user
from pages.components.layout import not_available_yet

page_user("promotions")
not_available_yet(
    "Promotions",
    6,
    [
        "Request promotion of a model version to staging or production, with evidence attached.",
        "Approvers review requests against policy gates; nobody approves their own request.",
        "Approved changes are mirrored to MLflow aliases and SageMaker approval status.",
    ],
)
