"""The catalog through its services, on SQLite and PostgreSQL: register, search, filter,
sort, page, model cards, stage timeline, comparison and lineage."""

from __future__ import annotations

import pytest

from models.registry import ModelAssetCreate, ModelVersionCardUpdate, ModelVersionCreate, Stage
from models.team import TeamCreate
from models.user import Role
from services import teams
from services.access import Actor
from services.db import Database
from services.errors import Conflict, NotFound, PermissionDenied, ValidationError
from services.registry import assets, cards, catalog, lineage
from services.validation import parse
from tests.conftest import make_user


@pytest.fixture
def scientist(db: Database, admin: Actor) -> Actor:
    return make_user(db, "dana", Role.DATA_SCIENTIST)


def add_model(db: Database, actor: Actor, name: str, **fields: object) -> int:
    data = ModelAssetCreate.model_validate({"name": name, **fields})
    model = assets.register_model(db, actor=actor, data=data)
    assert model.id is not None
    return model.id


def promote(db: Database, model_id: int, number: int, stage: Stage, by: str = "test") -> None:
    """Move a version directly, as the promotions flow does once a request is approved
    (tests/unit/promotions covers the flow itself)."""
    with db.write() as session:
        version = assets.load_version(session, model_id, number)
        assets.record_stage(session, version, stage, by=by, reason=f"to {stage.value}")


def test_register_model_and_versions_then_read_the_card(db: Database, scientist: Actor) -> None:
    model_id = add_model(
        db,
        scientist,
        "Support Assistant",
        kind="custom",
        provider="portal",
        base_model="meta-llama/Llama-3.1-8B",
        tags={"use-case": "support"},
    )
    first = assets.register_version(
        db,
        actor=scientist,
        model_id=model_id,
        data=ModelVersionCreate(
            mlflow_run_id="abc123", metrics={"eval_loss": 1.25}, params={"lr": "1e-4"}
        ),
    )
    second = assets.register_version(
        db, actor=scientist, model_id=model_id, data=ModelVersionCreate(metrics={"eval_loss": 1.1})
    )
    assert (first.number, second.number) == (1, 2)
    assert second.base_model == "meta-llama/Llama-3.1-8B"  # inherited from the model
    card = cards.version_card(db, actor=scientist, model_id=model_id, number=1)
    assert card.version.stage == "development" and card.version.metrics == {"eval_loss": 1.25}
    assert [c.to_stage for c in card.stage_history] == ["development"]
    updated = assets.update_card(
        db,
        actor=scientist,
        version_id=card.version.id,  # type: ignore[arg-type]
        card=ModelVersionCardUpdate(
            intended_use="Answer support tickets", limitations="English only"
        ),
        expected_version=card.version.version,
    )
    assert updated.intended_use == "Answer support tickets"
    with pytest.raises(Conflict, match="changed this model card"):
        assets.update_card(
            db,
            actor=scientist,
            version_id=updated.id,  # type: ignore[arg-type]
            card=ModelVersionCardUpdate(limitations="x"),
            expected_version=1,
        )


def test_duplicate_portal_model_name_is_refused(db: Database, scientist: Actor) -> None:
    add_model(db, scientist, "Summariser")
    with pytest.raises(Conflict, match="already registered"):
        add_model(db, scientist, "  summariser ")


def test_bad_model_input_names_the_field(db: Database, scientist: Actor) -> None:
    with pytest.raises(ValidationError, match="Kind: must be one of"):
        parse(ModelAssetCreate, {"name": "X", "kind": "magic"})
    with pytest.raises(ValidationError, match="tag 'bad key'"):
        parse(ModelAssetCreate, {"name": "X", "tags": {"bad key": "v"}})
    with pytest.raises(ValidationError, match="Owner team"):
        add_model(db, scientist, "Orphan", owner_team_id=999)
    with pytest.raises(NotFound):
        assets.register_version(db, actor=scientist, model_id=999, data=ModelVersionCreate())


def test_roles_that_may_not_register_are_refused(db: Database, admin: Actor) -> None:
    for role in (Role.APPROVER, Role.MANAGER, Role.ADMIN):
        actor = make_user(db, f"u-{role.value}".replace("_", ""), role)
        with pytest.raises(PermissionDenied):
            add_model(db, actor if role != Role.ADMIN else admin, f"M {role.value}")
    manager = make_user(db, "maria", Role.MANAGER)
    with pytest.raises(PermissionDenied):
        catalog.search_models(db, actor=manager, query=catalog.ModelQuery())
    approver = make_user(db, "priya", Role.APPROVER)
    assert catalog.search_models(db, actor=approver, query=catalog.ModelQuery()).total == 0


def test_search_filters_sorts_and_pages(db: Database, scientist: Actor, admin: Actor) -> None:
    payments = teams.create_team(db, actor=admin, data=TeamCreate(name="Payments"))
    for i in range(30):
        model_id = add_model(
            db,
            scientist,
            f"Model {i:02d}",
            kind="foundation" if i % 3 == 0 else "custom",
            provider="Anthropic" if i % 2 else "Meta",
            owner_team_id=payments.id if i < 5 else None,
            tags={"tier": "gold" if i % 5 == 0 else "silver"},
            base_model="claude-haiku" if i % 4 == 0 else None,
        )
        for _ in range(i % 3):
            assets.register_version(
                db, actor=scientist, model_id=model_id, data=ModelVersionCreate()
            )
        if i % 7 == 0 and i % 3:
            promote(db, model_id, 1, Stage.PRODUCTION)

    def search(**query: object) -> catalog.ModelPage:
        return catalog.search_models(
            db,
            actor=scientist,
            query=catalog.ModelQuery(**query),  # type: ignore[arg-type]
            page_size=10,
        )

    everything = search()
    assert everything.total == 30 and everything.pages == 3 and len(everything.rows) == 10
    assert [r.name for r in everything.rows][:2] == ["Model 00", "Model 01"]
    assert search(kinds=("foundation",)).total == 10
    assert search(providers=("Meta",), kinds=("custom",)).total == 10
    assert search(team_ids=(payments.id,)).total == 5
    assert search(tag="tier=gold").total == 6 and search(tag="tier").total == 30
    assert search(text="model 1").total == 10
    assert search(base_model="haiku").total == 8
    in_production = search(stages=("production",))
    assert {r.name for r in in_production.rows} == {"Model 07", "Model 14", "Model 28"}
    assert all(r.production_version == 1 for r in in_production.rows)
    by_versions = search(sort="versions")
    assert by_versions.rows[0].version_count == 2
    last_page = catalog.search_models(
        db, actor=scientist, query=catalog.ModelQuery(), page=99, page_size=10
    )
    assert last_page.page == 3 and len(last_page.rows) == 10
    options = catalog.filter_options(db, actor=scientist)
    assert options.providers == ["Anthropic", "Meta"] and options.tag_keys == ["tier"]
    assert options.teams == [(payments.id, "Payments")]


def test_production_timeline_says_which_version_was_live_when(
    db: Database, scientist: Actor
) -> None:
    model_id = add_model(db, scientist, "Router")
    for _ in range(3):
        assets.register_version(db, actor=scientist, model_id=model_id, data=ModelVersionCreate())
    promote(db, model_id, 1, Stage.PRODUCTION)
    promote(db, model_id, 1, Stage.ARCHIVED)
    promote(db, model_id, 2, Stage.PRODUCTION)
    promote(db, model_id, 3, Stage.STAGING)
    detail = cards.model_detail(db, actor=scientist, model_id=model_id)
    timeline = [(s.version, s.until is None) for s in detail.production_timeline]
    assert timeline == [(1, False), (2, True)]
    assert [v.number for v in detail.versions] == [3, 2, 1]


def test_compare_marks_what_differs(db: Database, scientist: Actor) -> None:
    model_id = add_model(db, scientist, "Classifier")
    assets.register_version(
        db,
        actor=scientist,
        model_id=model_id,
        data=ModelVersionCreate(
            params={"lr": "1e-4", "epochs": "3"}, metrics={"eval_loss": 1.2, "accuracy": 0.81}
        ),
    )
    assets.register_version(
        db,
        actor=scientist,
        model_id=model_id,
        data=ModelVersionCreate(params={"lr": "5e-5", "epochs": "3"}, metrics={"eval_loss": 1.0}),
    )
    rows = {
        (r.section, r.item): r
        for r in cards.compare_versions(db, actor=scientist, model_id=model_id, left=1, right=2)
    }
    assert rows[("Parameters", "lr")].differs and not rows[("Parameters", "epochs")].differs
    assert rows[("Metrics", "accuracy")].right == "—"
    assert rows[("Metrics", "eval_loss")].left == "1.2"


def test_lineage_links_run_version_and_stages(db: Database, scientist: Actor) -> None:
    model_id = add_model(db, scientist, "Lineage Demo")
    assets.register_version(
        db,
        actor=scientist,
        model_id=model_id,
        data=ModelVersionCreate(mlflow_run_id="r" * 32),
        job_ref="job-42",
    )
    promote(db, model_id, 1, Stage.STAGING, by="priya")
    graph = lineage.version_lineage(db, actor=scientist, model_id=model_id, number=1)
    kinds = [n.kind for n in graph.nodes]
    assert kinds == ["job", "run", "version", "stage"]
    assert ("job", "run", "logged") in graph.edges
    dot = graph.to_dot()
    assert f"/registry?model={model_id}&version=1" in dot and "/experiments?runs=" in dot
    assert "staging" in dot and "by priya" in dot


def test_a_hugging_face_model_keeps_its_id_as_reference(db: Database, scientist: Actor) -> None:
    model_id = add_model(
        db,
        scientist,
        "Mistral 7B",
        kind="foundation",
        provider="Hugging Face",
        reference="mistralai/Mistral-7B-v0.3",
    )
    detail = cards.model_detail(db, actor=scientist, model_id=model_id)
    assert detail.model.source_ref == "mistralai/Mistral-7B-v0.3"
    page = catalog.search_models(db, actor=scientist, query=catalog.ModelQuery(text="mistralai/"))
    assert page.total == 1
    with pytest.raises(Conflict, match="under this name or reference"):
        add_model(db, scientist, "Another name", reference="mistralai/Mistral-7B-v0.3")
