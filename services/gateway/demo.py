"""Demo gateway traffic: three months of LiteLLM logs, generated as the proxy's ``s3``
callback would write them and loaded through the same ingestion path as real logs.

Believable shape: weekday peaks and quiet weekends, slow growth, each team on its own mix
of models; Search runs long-document analysis on a premium model and overspends its
budget; an in-house router model has no price; the fine-tuned support assistant is served
under the gateway name ``support-assistant`` with a negotiated price."""

from __future__ import annotations

import hashlib
import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlmodel import select

from models.registry import ModelAsset, ModelVersion, Stage
from models.usage import PriceUnit, UsageEvent, UsageSource
from models.user import User
from services.access import Actor
from services.config import Settings
from services.db import Database
from services.gateway.admin import set_price_override
from services.gateway.ingest import ingest
from services.gateway.model_usage import link_gateway_model
from services.gateway.pricing import PriceBook

DAYS = 91
SUPPORT_MODEL = "support-assistant"
UNPRICED_MODEL = "inhouse-router-7b"


@dataclass(frozen=True)
class Habit:
    """How one team uses the gateway: requests per weekday, models (weighted), prompt size."""

    team: str
    users: tuple[str, ...]
    per_weekday: int
    models: tuple[tuple[str, str, int], ...]  # model, provider, weight
    prompt_tokens: tuple[int, int]
    completion_tokens: tuple[int, int]


HABITS = (
    Habit("Payments", ("dana", "ines", "kofi"), 90,
          (("gpt-4o-mini", "openai", 6), ("anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock", 3),
           (UNPRICED_MODEL, "hosted_vllm", 1)), (2_000, 12_000), (200, 900)),
    Habit("Search", ("sam", "yuki", "arun"), 140,
          (("anthropic.claude-3-opus-20240229-v1:0", "bedrock", 5), ("gpt-4o", "openai", 3),
           ("text-embedding-3-small", "openai", 2)), (60_000, 120_000), (2_000, 6_000)),
    Habit("Customer Care", ("lena", "tom"), 120,
          ((SUPPORT_MODEL, "bedrock", 7), ("gpt-4o-mini", "openai", 3)),
          (3_000, 9_000), (300, 1_200)),
    Habit("Platform", ("lee", "nia"), 60,
          (("gpt-4o", "openai", 4), ("anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock", 4),
           (UNPRICED_MODEL, "hosted_vllm", 2)), (5_000, 30_000), (500, 3_000)),
)  # fmt: skip


def seed_usage(db: Database, settings: Settings, *, now: datetime | None = None) -> str:
    """Generate and ingest the demo traffic unless usage is already stored."""
    with db.read() as session:
        if session.exec(select(UsageEvent.id).limit(1)).first() is not None:
            return "gateway usage already present"
    actor = Actor.command_line()
    set_price_override(
        db, actor=actor, model=SUPPORT_MODEL, unit=PriceUnit.PER_1M, input_price=Decimal("0.80"),
        output_price=Decimal("3.20"), note="Provisioned throughput, negotiated rate (demo)",
    )  # fmt: skip
    _link_support_assistant(db)
    book = PriceBook()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "litellm-demo.jsonl"
        count = _write(path, book, now or datetime.now(UTC))
        result = ingest(db, settings, actor=actor, location=str(path), source=UsageSource.LITELLM)
    return f"{count:,} gateway requests over {DAYS} days ({result.summary()})"


def _link_support_assistant(db: Database) -> None:
    with db.read() as session:
        version_id = session.exec(
            select(ModelVersion.id)
            .join(ModelAsset, ModelAsset.id == ModelVersion.model_id)  # type: ignore[arg-type]
            .where(ModelAsset.name == "Support assistant", ModelVersion.stage == Stage.PRODUCTION)
        ).first()
        owner = session.exec(select(User).where(User.username == "dana")).first()
    if version_id is not None and owner is not None:  # a data scientist links it, as in life
        link_gateway_model(
            db, actor=Actor.of(owner), version_id=version_id, gateway_model=SUPPORT_MODEL
        )


def _write(path: Path, book: PriceBook, now: datetime) -> int:
    rng = random.Random(20261130)  # noqa: S311 (demo data, the same every time)
    count = 0
    with path.open("wb") as out:
        for back in range(DAYS, -1, -1):
            day = (now - timedelta(days=back)).replace(hour=0, minute=0, second=0, microsecond=0)
            weekend = day.weekday() >= 5
            growth = 1 + (DAYS - back) / DAYS * 0.4
            for habit in HABITS:
                per_day = habit.per_weekday * growth * (0.25 if weekend else 1.0)
                for _ in range(int(rng.gauss(per_day, per_day * 0.1))):
                    start = day + timedelta(seconds=rng.gauss(14 * 3600, 3 * 3600) % 86_400)
                    if back == 0 and start > now:
                        continue
                    out.write(orjson.dumps(_record(rng, habit, start, book)) + b"\n")
                    count += 1
    return count


def _record(rng: random.Random, habit: Habit, start: datetime, book: PriceBook) -> dict[str, Any]:
    model, provider, _ = rng.choices(habit.models, weights=[w for *_, w in habit.models])[0]
    user = rng.choice(habit.users)
    failed = rng.random() < 0.012
    prompt = 0 if failed else rng.randint(*habit.prompt_tokens)
    completion = (
        0 if failed or model.startswith("text-embedding") else rng.randint(*habit.completion_tokens)
    )
    cached = prompt // 2 if rng.random() < 0.15 else 0
    price = book.price_of(model) if model != SUPPORT_MODEL else None
    cost = float(price.cost(prompt - cached, completion, cached, 0)) if price else 0.0
    cache_hit = not failed and rng.random() < 0.04  # answered from LiteLLM's cache: free
    if cache_hit:
        cost = 0.0
    key = f"{habit.team.lower().replace(' ', '-')}-{'prod' if rng.random() < 0.8 else 'dev'}"
    return {
        "id": f"chatcmpl-demo-{rng.getrandbits(64):016x}",
        "call_type": "acompletion",
        "status": "failure" if failed else "success",
        "error_str": "litellm.RateLimitError: rate limit reached" if failed else None,
        "startTime": start.timestamp(),
        "endTime": start.timestamp() + rng.uniform(0.4, 9.0),
        "model": model,
        "custom_llm_provider": provider,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "response_cost": cost,
        "cache_hit": cache_hit,
        "request_tags": [
            f"app:{habit.team.lower().replace(' ', '-')}",
            rng.choice(["env:prod", "env:prod", "env:staging"]),
        ],
        "metadata": {
            "user_api_key_hash": hashlib.sha256(key.encode()).hexdigest()[:16],
            "user_api_key_alias": key,
            "user_api_key_user_id": user,
            "user_api_key_team_id": f"team-{habit.team.lower().replace(' ', '-')}",
            "user_api_key_team_alias": habit.team,
            "usage_object": {"prompt_tokens_details": {"cached_tokens": cached}},
        },
    }
