"""Usage & costs: not available yet (issue #7)."""

from pages.components.guard import page_user
from pages.components.layout import not_available_yet

page_user("usage")
not_available_yet(
    "Usage and cost reporting",
    7,
    [
        "See LLM gateway usage and cost by team, user, API key and model.",
        "Track spend against team budgets, with forecasts and alerts.",
        "Export the numbers as CSV.",
    ],
)
