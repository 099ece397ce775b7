"""The portal's pages: title, URL path, icon and menu section. Who may open each one is
decided in ``services.permissions.PAGES``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    key: str
    title: str
    url_path: str
    icon: str
    section: str
    caption: str

    @property
    def file(self) -> str:
        return f"pages/views/{self.key.replace('-', '_')}.py"


PAGE_SPECS: tuple[PageSpec, ...] = (
    PageSpec("home", "Home", "", ":material/home:", "Overview", "What needs your attention today."),
    PageSpec(
        "registry",
        "Registry",
        "registry",
        ":material/inventory_2:",
        "Models",
        "Models, versions, datasets and their lineage in one catalog.",
    ),
    PageSpec(
        "fine-tuning",
        "Fine-tuning",
        "fine-tuning",
        ":material/model_training:",
        "Models",
        "Launch, watch and stop fine-tuning jobs locally, on SageMaker or on Bedrock.",
    ),
    PageSpec(
        "experiments",
        "Experiments",
        "experiments",
        ":material/experiment:",
        "Models",
        "Compare the MLflow runs your jobs produced and pick the best one.",
    ),
    PageSpec(
        "promotions",
        "Promotions",
        "promotions",
        ":material/verified:",
        "Models",
        "Request, review and approve promotions to staging and production.",
    ),
    PageSpec(
        "usage",
        "Usage & costs",
        "usage",
        ":material/payments:",
        "Costs",
        "LLM gateway usage and cost by team, user, key and model, against budgets.",
    ),
    PageSpec(
        "admin",
        "Admin",
        "admin",
        ":material/admin_panel_settings:",
        "Administration",
        "Users, teams, training prices and the audit log.",
    ),
)

SPECS_BY_KEY = {spec.key: spec for spec in PAGE_SPECS}
