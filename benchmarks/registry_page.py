"""Registry page at catalog scale: a warm rerun of the filtered Models view with 1,000 models
and 10,000 versions (the second ``run()`` of the same AppTest, which is what a user's click
costs), beside the framework's floor: the warm rerun of a page that only shows a 10,000-row
table. Both measured in this one run.

    python -m benchmarks.registry_page [--models 1000] [--versions 10000] [--runs 15]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import tempfile

from streamlit.testing.v1 import AppTest

from benchmarks.harness import (
    floor_app,
    report_page_rerun,
    signed_in_page,
    use_portal_home,
    warm_reruns,
)


def seed(models: int, versions: int) -> None:
    from models.registry import ModelAsset, ModelVersion, StageChange
    from models.team import Team
    from models.user import Role, UserCreate
    from services import users
    from services.access import Actor
    from services.config import get_settings
    from services.db import Database, upgrade_schema

    db = Database(get_settings().resolved_database_url)
    upgrade_schema(db)
    password = secrets.token_urlsafe(16)  # throwaway accounts in a temporary database
    users.create_first_admin(
        db,
        data=UserCreate(username="root", display_name="Root", password=password, roles=["admin"]),
    )
    users.create_user(
        db,
        actor=Actor.command_line(),
        data=UserCreate(
            username="dana",
            display_name="Dana",
            password=password,
            roles=[Role.DATA_SCIENTIST.value],
        ),
    )
    rng = random.Random(7)
    providers = ["Anthropic", "Amazon", "Meta", "Mistral AI", "Cohere", "In-house"]
    stages = ["development", "staging", "production", "archived"]
    with db.write() as session:
        team_ids = []
        for name in ("Payments", "Search", "Care", "Platform"):
            team = Team(name=name)
            session.add(team)
            session.flush()
            team_ids.append(team.id)
        assets = [
            ModelAsset(
                name=f"model {i:04d}",
                kind=rng.choice(["foundation", "custom"]),
                provider=rng.choice(providers),
                source="portal",
                source_ref=f"portal:model-{i:04d}",
                created_by="dana",
                owner_team_id=rng.choice(team_ids),
                tags={"tier": rng.choice("ab")},
                base_model=rng.choice(["llama-3", "nova-micro", "claude-haiku"]),
            )
            for i in range(models)
        ]
        session.add_all(assets)
        session.flush()
        held: set[tuple[int, str]] = set()  # one production and one staging version per model

        def stage_of(model: int) -> str:
            stage = rng.choice(stages)
            if stage in ("production", "staging"):
                if (model, stage) in held:
                    return "archived"
                held.add((model, stage))
            return stage

        rows = [
            ModelVersion(
                model_id=assets[i % models].id or 0,
                number=i // models + 1,
                stage=stage_of(i % models),
                created_by="dana",
                metrics={"eval_loss": rng.random()},
                params={"lr": "1e-4"},
            )
            for i in range(versions)
        ]
        session.add_all(rows)
        session.flush()
        session.add_all(
            StageChange(model_version_id=v.id or 0, to_stage=v.stage, changed_by="dana")
            for v in rows
        )
    db.dispose()


def registry_app() -> AppTest:
    params = {"provider": "Meta", "stage": "production", "sort": "updated"}
    return signed_in_page("dana", "pages/views/registry.py", params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        use_portal_home(home)
        seed(args.models, args.versions)
        registry = warm_reruns(registry_app(), args.runs)
        from pages.components.registry_models import forget_cached_catalog

        uncached = warm_reruns(registry_app(), args.runs, before_each=forget_cached_catalog)
        floor = warm_reruns(floor_app(home), args.runs)
    reg, flo = statistics.median(registry) * 1000, statistics.median(floor) * 1000
    print(
        f"Catalog: {args.models:,} models, {args.versions:,} versions; "
        f"median of {args.runs} warm reruns each"
    )
    print(
        f"Registry page, filtered (provider=Meta, stage=production): {reg:7.1f} ms "
        f"(min {min(registry) * 1000:.1f}, max {max(registry) * 1000:.1f})  target < 150 ms"
    )
    unc = statistics.median(uncached) * 1000
    print(
        f"Same, with the query cache cleared before every rerun:       {unc:7.1f} ms "
        f"(min {min(uncached) * 1000:.1f}, max {max(uncached) * 1000:.1f})"
    )
    print(
        f"Floor: a page showing only a 10,000-row table:             {flo:7.1f} ms "
        f"(min {min(floor) * 1000:.1f}, max {max(floor) * 1000:.1f})"
    )
    print(f"Registry / floor: {reg / flo:.2f}x")
    report_page_rerun(
        "registry_page",
        f"warm rerun, filtered, {args.models:,} models, {args.versions:,} versions",
        reg,
        unc,
        flo,
    )


if __name__ == "__main__":
    main()
