"""Registry: not available yet (issue #3)."""

from pages.components.guard import page_user
from pages.components.layout import not_available_yet

page_user("registry")
not_available_yet(
    "The AI registry",
    3,
    [
        "Browse foundation and fine-tuned models, their versions and datasets in one catalog.",
        "Sync from Amazon Bedrock, the SageMaker Model Registry and the MLflow Model Registry.",
        "Read a model card per version and follow its lineage from dataset to deployment.",
        "Compare two versions side by side.",
    ],
)
