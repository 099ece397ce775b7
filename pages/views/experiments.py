"""Experiments: not available yet (issue #5)."""

from pages.components.guard import page_user
from pages.components.layout import not_available_yet

page_user("experiments")
not_available_yet(
    "Run comparison",
    5,
    [
        "Compare MLflow runs across experiments, with differences highlighted against a baseline.",
        "Chart metric histories, scatter plots and parallel coordinates for hundreds of runs.",
        "Share a comparison by URL and export it as CSV.",
    ],
)
