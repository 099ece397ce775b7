"""Fine-tuning: not available yet (issue #4)."""

from pages.components.guard import page_user
from pages.components.layout import not_available_yet

page_user("fine-tuning")
not_available_yet(
    "Fine-tuning",
    4,
    [
        "Launch a fine-tuning job locally, on SageMaker or on Bedrock from one form.",
        "Watch its progress, loss curve and logs; stop it.",
        "Turn a finished job into a model version in the registry.",
    ],
)
