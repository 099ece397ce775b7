"""Demo catalog for ``demo seed``: a dozen Bedrock foundation models, two datasets (one
flagged for personal data), three fine-tuned models whose versions span every stage with a
believable history, and their lineage."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from sqlmodel import Session, select

from models.dataset import DatasetCreate
from models.registry import ModelAsset, ModelVersion, Source, Stage, StageChange
from models.types import utcnow
from services import audit
from services.access import Actor
from services.auth import active_user
from services.config import Settings
from services.db import Database
from services.registry import dataset_catalog, datasets
from services.registry.assets import portal_ref
from services.registry.dataset_files import DatasetSource
from services.registry.formats import DatasetFormat
from services.registry.sources.base import ExternalModel, ExternalVersion
from services.registry.sync import upsert_snapshot

REGION = "us-east-1"
FOUNDATION = (
    (
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "Claude 3.5 Sonnet v2",
        "Anthropic",
        ("TEXT", "IMAGE"),
        (),
    ),
    (
        "anthropic.claude-3-haiku-20240307-v1:0",
        "Claude 3 Haiku",
        "Anthropic",
        ("TEXT", "IMAGE"),
        ("FINE_TUNING",),
    ),
    (
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "Claude Haiku 4.5",
        "Anthropic",
        ("TEXT", "IMAGE"),
        (),
    ),
    ("amazon.nova-pro-v1:0", "Nova Pro", "Amazon", ("TEXT", "IMAGE", "VIDEO"), ("FINE_TUNING",)),
    ("amazon.nova-lite-v1:0", "Nova Lite", "Amazon", ("TEXT", "IMAGE", "VIDEO"), ("FINE_TUNING",)),
    ("amazon.nova-micro-v1:0", "Nova Micro", "Amazon", ("TEXT",), ("FINE_TUNING",)),
    (
        "amazon.titan-text-express-v1",
        "Titan Text G1 - Express",
        "Amazon",
        ("TEXT",),
        ("FINE_TUNING", "CONTINUED_PRE_TRAINING"),
    ),
    (
        "amazon.titan-embed-text-v2:0",
        "Titan Text Embeddings V2",
        "Amazon",
        ("TEXT", "EMBEDDING"),
        (),
    ),
    (
        "meta.llama3-1-8b-instruct-v1:0",
        "Llama 3.1 8B Instruct",
        "Meta",
        ("TEXT",),
        ("FINE_TUNING",),
    ),
    (
        "meta.llama3-1-70b-instruct-v1:0",
        "Llama 3.1 70B Instruct",
        "Meta",
        ("TEXT",),
        ("FINE_TUNING",),
    ),
    ("mistral.mistral-large-2407-v1:0", "Mistral Large (24.07)", "Mistral AI", ("TEXT",), ()),
    ("cohere.command-r-plus-v1:0", "Command R+", "Cohere", ("TEXT",), ()),
)

FINE_TUNED: tuple[tuple[str, str, str, str, dict[str, str], str | None], ...] = (
    (
        "Support assistant",
        "Customer Care",
        "meta.llama3-1-8b-instruct-v1:0",
        "Drafts replies to customer support tickets for an agent to review.",
        {"use-case": "support"},
        "support-conversations",
    ),
    (
        "Fraud explainer",
        "Payments",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "Explains why a payment was flagged, in plain words for the reviewer.",
        {"use-case": "risk"},
        "payment-disputes",
    ),
    (
        "Query rewriter",
        "Search",
        "amazon.nova-micro-v1:0",
        "Rewrites search queries into the catalogue's vocabulary.",
        {"use-case": "search"},
        None,
    ),
)
# Each fine-tuned model: v1 archived (was in production), v2 production, v3 staging, v4 development.
HISTORY: tuple[tuple[int, list[tuple[int, Stage]]], ...] = (
    (1, [(60, Stage.STAGING), (55, Stage.PRODUCTION), (20, Stage.ARCHIVED)]),
    (2, [(25, Stage.STAGING), (20, Stage.PRODUCTION)]),
    (3, [(6, Stage.STAGING)]),
    (4, []),
)


def _foundation_snapshot() -> list[ExternalModel]:
    return [
        ExternalModel(
            source="bedrock",
            kind="foundation",
            provider=provider,
            name=name,
            source_ref=model_id,  # as the Bedrock sync records it, so a later sync updates it
            modalities=modalities,
            customizations=customizations,
            lifecycle="ACTIVE",
            versions=(
                ExternalVersion(
                    version=model_id,
                    source_ref=f"arn:aws:bedrock:{REGION}::foundation-model/{model_id}",
                ),
            ),
        )
        for model_id, name, provider, modalities, customizations in FOUNDATION
    ]


def _fine_tuned(session: Session, team_ids: dict[str, int], by: str, data: dict[str, int]) -> int:
    created = 0
    now = utcnow()
    for name, team, base, description, tags, dataset in FINE_TUNED:
        ref = portal_ref(name)
        if session.exec(select(ModelAsset.id).where(ModelAsset.source_ref == ref)).first():
            continue
        model = ModelAsset(
            name=name,
            kind="custom",
            provider="In-house",
            source=Source.PORTAL.value,
            source_ref=ref,
            description=description,
            base_model=base,
            tags=tags,
            owner_team_id=team_ids.get(team),
            created_by=by,
        )
        session.add(model)
        session.flush()
        assert model.id is not None
        for number, changes in HISTORY:
            born = now - timedelta(days=70 - number * 15)
            loss = round(1.9 - number * 0.17, 3)
            version = ModelVersion(
                model_id=model.id,
                number=number,
                base_model=base,
                created_by="dana",
                created_at=born,
                stage_changed_at=born,
                job_ref=f"demo-job-{model.id}-{number}",
                mlflow_run_id=f"{model.id:04d}{number:04d}".ljust(32, "0"),
                artifact_uri=f"mlflow-artifacts:/demo/{ref}/{number}",
                metrics={
                    "eval_loss": loss,
                    "perplexity": round(2.718**loss, 3),
                    "accuracy": round(0.7 + number * 0.04, 3),
                },
                params={
                    "learning_rate": ["2e-4", "1e-4", "1e-4", "5e-5"][number - 1],
                    "epochs": str(2 + number % 2),
                    "lora_r": "16",
                },
                intended_use=description,
                limitations="English only; review every draft.",
                dataset_version_id=data.get(dataset) if dataset else None,
            )
            session.add(version)
            session.flush()
            assert version.id is not None
            previous: str | None = None
            for days_ago, stage in [(70 - number * 15, Stage.DEVELOPMENT), *changes]:
                session.add(
                    StageChange(
                        model_version_id=version.id,
                        from_stage=previous,
                        to_stage=stage.value,
                        changed_by="priya" if previous else "dana",
                        changed_at=now - timedelta(days=days_ago),
                        reason="registered" if previous is None else "demo history",
                    )
                )
                previous = stage.value
                version.stage, version.stage_changed_at = (
                    stage.value,
                    now - timedelta(days=days_ago),
                )
        created += 1
    return created


def _conversations(count: int) -> bytes:
    topics = [
        "reset my password",
        "change my delivery address",
        "get a refund",
        "close my account",
        "update my card",
        "download an invoice",
    ]
    lines = []
    for i in range(count):
        topic = topics[i % len(topics)]
        record = {
            "messages": [
                {"role": "system", "content": "You are a concise, friendly support agent."},
                {"role": "user", "content": f"Hi, how do I {topic}? (ticket {1000 + i})"},
                {
                    "role": "assistant",
                    "content": f"To {topic}, open Settings, choose Account and "
                    f"follow the steps. Reply here if it fails.",
                },
            ]
        }
        lines.append(json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


def _disputes(count: int) -> bytes:
    lines = []
    for i in range(count):
        prompt = f"Explain why payment {50_000 + i} was held for review."
        if i % 25 == 0:  # real-looking personal data slipped into the export
            prompt += " Customer: alex.morgan@example.com, card 4242 4242 4242 4242."
        lines.append(
            json.dumps(
                {
                    "prompt": prompt,
                    "completion": "The amount was far above the customer's usual spending.",
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()


def _demo_datasets(db: Database, settings: Settings, team_ids: dict[str, int]) -> dict[str, int]:
    """Two datasets registered as the demo data scientist would: one clean, one PII-flagged."""
    dana = active_user(db, "dana")
    if dana is None:
        return {}
    actor = Actor.of(dana)
    existing = {row.name: row.id for row in dataset_catalog.list_datasets(db, actor=actor)}
    wanted = (
        ("support-conversations", "Customer Care", DatasetFormat.CHAT, _conversations(1200)),
        ("payment-disputes", "Payments", DatasetFormat.BEDROCK_PROMPT_COMPLETION, _disputes(800)),
    )
    versions: dict[str, int] = {}
    for name, team, fmt, data in wanted:
        outcome = datasets.register_version(
            db,
            settings,
            actor=actor,
            fmt=fmt,
            source=DatasetSource.upload(io.BytesIO(data), f"{name}.jsonl", len(data)),
            dataset_id=existing.get(name),
            new_dataset=None
            if name in existing
            else DatasetCreate(
                name=name,
                owner_team_id=team_ids.get(team),
                description=f"Demo data for {team} ({fmt.label} format).",
            ),
        )
        versions[name] = outcome.version.id or 0
    return versions


def seed_catalog(db: Database, settings: Settings, team_ids: dict[str, int]) -> str:
    """Add the demo catalog; what already exists is left alone. Returns a one-line summary."""
    data = _demo_datasets(db, settings, team_ids)
    with db.write() as session:
        synced = upsert_snapshot(session, "bedrock", _foundation_snapshot(), by="demo")
        tuned = _fine_tuned(session, team_ids, "demo", data)
        if synced.models_changed or tuned:
            audit.record(
                session,
                actor="cli",
                action="demo.catalog",
                entity_type="registry",
                entity_id="demo",
                summary=f"Seeded the demo catalog: "
                f"{synced.models_changed} foundation and {tuned} fine-tuned models",
            )
    return (
        f"{len(FOUNDATION)} Bedrock foundation models, {len(data)} datasets (one flagged for "
        f"personal data), {len(FINE_TUNED)} fine-tuned models with versions in every stage"
    )
