"""Acceptance: the authorization matrix of issue #8.

Every service function that checks a permission is driven once per role (data scientist,
approver, manager, admin) and, where it acts on someone's request, job or dataset, by that
owner too. ``MATRIX`` is the one table of expected outcomes; it mirrors the roles table of
ARCHITECTURE.md as refined in ``services/permissions.py``. A refused attempt must raise
``PermissionDenied``; an allowed one must succeed on data set up just for it. A guard scans
``services/`` so that a new checked function cannot escape the table. Then every page URL is
opened by every role under AppTest: the page's title, or the refusal.
"""

from __future__ import annotations

import ast
import io
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from moto import mock_aws
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from models.dataset import DatasetCreate
from models.promotion import PolicyUpdate
from models.registry import ModelAssetCreate, ModelVersionCardUpdate, ModelVersionCreate
from models.team import TeamCreate, TeamUpdate
from models.training import Backend, JobStatus
from models.usage import PriceUnit, UsageSource
from models.user import Role, UserCreate, UserUpdate
from pages.components.navigation import PAGE_SPECS
from services import attention, audit, aws, promotions, teams, users
from services.access import Actor
from services.config import Settings, get_settings
from services.db import Database
from services.errors import PermissionDenied
from services.experiments import curves, detail, register, runs
from services.gateway import (
    admin as gateway_admin,
)
from services.gateway import (
    billing,
    budget_admin,
    budget_alerts,
    ingest,
    model_usage,
    reprice,
    retention,
    scope,
)
from services.promotions import policies, queries, side_effects
from services.registry import (
    assets,
    cards,
    catalog,
    dataset_catalog,
    datasets,
    lineage,
    sync,
)
from services.registry.dataset_files import DatasetSource
from services.registry.formats import DatasetFormat
from services.registry.sources.base import ExternalModel
from services.system import system_status
from services.training import catalog as training_catalog
from services.training import jobs, launch, pricing, registration
from tests.conftest import PASSWORD, make_user
from tests.promotion_support import file_request
from tests.training_support import launch_local, register_chat_dataset
from tests.ui.conftest import signed_in, texts
from tests.unit.gateway.support import litellm, write_lines

ROOT = Path(__file__).resolve().parents[2]
DS, AP, MG, AD = "data_scientist", "approver", "manager", "admin"
OWNER = "owner"  # filed the request / launched the job / registered the dataset (DS+approver)
ROLES = (DS, AP, MG, AD)


@dataclass(frozen=True)
class Row:
    """Which service function an action drives, who may do it, and whether it acts on a
    subject with an owner (then the owner is tried as well)."""

    area: str
    functions: tuple[str, ...]  # path under services/ and function name, as the guard finds them
    allowed: frozenset[str]
    owned: bool = False


def row(area: str, functions: str, *allowed: str, owned: bool = False) -> Row:
    """``functions``: one or more ``path:function``, separated by spaces."""
    return Row(area, tuple(functions.split()), frozenset(allowed), owned)


# The one table of expectations. Owner = the user (data scientist + approver) who filed the
# request, launched the job or registered the dataset the action is about.
MATRIX: dict[str, Row] = {
    # users, teams, audit, system (admin)
    "create user": row("people", "users.py:create_user", AD),
    "list users": row("people", "users.py:list_users", AD),
    "get user": row("people", "users.py:get_user", AD),
    "update user roles": row("people", "users.py:update_user", AD),
    "disable user": row("people", "users.py:set_disabled", AD),
    "reset password": row("people", "users.py:reset_password", AD),
    "unlock user": row("people", "users.py:unlock", AD),
    "create team": row("people", "teams.py:create_team", AD),
    "update team": row("people", "teams.py:update_team", AD),
    "browse audit log": row("people", "audit.py:search_events", AD),
    "audit filter choices": row("people", "audit.py:filter_choices", AD),
    "verify audit chain": row("people", "audit.py:verify_chain", AD),
    "admin overview": row("people", "attention.py:admin_overview", AD),
    "system status": row("people", "system.py:system_status", AD),
    # registry: models, versions, datasets, PII exceptions, sync
    "register model": row("registry", "registry/assets.py:register_model", DS),
    "register model version": row("registry", "registry/assets.py:register_version", DS),
    "edit model card": row("registry", "registry/assets.py:update_card", DS),
    "register dataset version": row(
        "registry", "registry/datasets.py:register_version registry/datasets.py:_record", DS
    ),
    "except dataset PII": row("registry", "registry/datasets.py:except_pii", AP, AD, owned=True),
    "sync registry source": row("registry", "registry/sync.py:sync_source", DS, AD),
    "link gateway model": row("registry", "gateway/model_usage.py:link_gateway_model", DS),
    "search models": row("registry", "registry/catalog.py:search_models", DS, AP, AD),
    "catalog filter options": row("registry", "registry/catalog.py:filter_options", DS, AP, AD),
    "model detail": row("registry", "registry/cards.py:model_detail", DS, AP, AD),
    "version card": row("registry", "registry/cards.py:version_card", DS, AP, AD),
    "compare versions": row("registry", "registry/cards.py:compare_versions", DS, AP, AD),
    "version lineage": row("registry", "registry/lineage.py:version_lineage", DS, AP, AD),
    "list datasets": row("registry", "registry/dataset_catalog.py:list_datasets", DS, AP, AD),
    "dataset detail": row("registry", "registry/dataset_catalog.py:dataset_detail", DS, AP, AD),
    "dataset choices": row("registry", "registry/dataset_catalog.py:version_choices", DS, AP, AD),
    "sync status": row("registry", "registry/sync.py:sync_status", DS, AP, AD),
    "version gateway usage": row("registry", "gateway/model_usage.py:version_usage", DS, AP, AD),
    "registry attention": row("registry", "attention.py:registry_items", DS, AP, AD),
    # training
    "launch job": row("training", "training/launch.py:_create", DS),
    "preview launch cost": row("training", "training/launch.py:preview_cost", DS),
    "backend choices": row("training", "training/catalog.py:backend_choices", DS),
    "launch options": row("training", "training/catalog.py:launch_options", DS),
    "stop job": row("training", "training/jobs.py:stop_job", AD, OWNER, owned=True),
    "register job result": row(
        "training", "training/registration.py:register_job_result", DS, OWNER, owned=True
    ),
    "list jobs": row("training", "training/jobs.py:list_jobs", DS, AP, AD),
    "job detail": row("training", "training/jobs.py:job_detail", DS, AP, AD),
    "job logs": row("training", "training/jobs.py:job_logs", DS, AP, AD),
    "job metric history": row("training", "training/jobs.py:metric_history", DS, AP, AD),
    "job attention": row("training", "attention.py:job_items", DS),
    "list training prices": row("training", "training/pricing.py:list_prices", AD),
    "set training price": row("training", "training/pricing.py:set_price", AD),
    "clear training price": row("training", "training/pricing.py:clear_override", AD),
    # experiments (MLflow)
    "register run as version": row("experiments", "experiments/register.py:register_run", DS),
    "registrable models": row("experiments", "experiments/register.py:registrable_models", DS),
    "list experiments": row("experiments", "experiments/runs.py:list_experiments", DS, AP),
    "search runs": row("experiments", "experiments/runs.py:search_runs", DS, AP),
    "get runs": row("experiments", "experiments/runs.py:get_runs", DS, AP),
    "run curves": row("experiments", "experiments/curves.py:run_curves", DS, AP),
    "download artifact": row("experiments", "experiments/detail.py:download_artifact", DS, AP),
    # promotions
    "request promotion": row("promotions", "promotions/requests.py:request_promotion", DS),
    "approve promotion": row("promotions", "promotions/decisions.py:_decide", AP, owned=True),
    "reject promotion": row("promotions", "promotions/decisions.py:_decide", AP, owned=True),
    "withdraw request": row("promotions", "promotions/requests.py:withdraw", OWNER, owned=True),
    "retry side effects": row(
        "promotions", "promotions/side_effects.py:retry", DS, AP, OWNER, owned=True
    ),
    "save policy": row("promotions", "promotions/policies.py:save_policy", AD),
    "policy history": row("promotions", "promotions/policies.py:policy_history", AD),
    "current policies": row("promotions", "promotions/policies.py:current_policies", DS, AP, AD),
    "list requests": row("promotions", "promotions/queries.py:list_requests", DS, AP),
    "approval queue": row("promotions", "promotions/queries.py:approval_queue", DS, AP),
    "request detail": row("promotions", "promotions/queries.py:request_detail", DS, AP),
    "requests of a version": row(
        "promotions", "promotions/queries.py:requests_of_version", DS, AP, AD
    ),
    "requestable versions": row("promotions", "promotions/queries.py:requestable_versions", DS),
    # gateway usage and costs
    "set gateway price override": row("gateway", "gateway/admin.py:set_price_override", AD),
    "remove gateway price override": row("gateway", "gateway/admin.py:remove_price_override", AD),
    "list gateway price overrides": row("gateway", "gateway/admin.py:list_price_overrides", AD),
    "set identity mapping": row("gateway", "gateway/admin.py:set_identity_mapping", AD),
    "remove identity mapping": row("gateway", "gateway/admin.py:remove_identity_mapping", AD),
    "list identity mappings": row("gateway", "gateway/admin.py:list_identity_mappings", AD),
    "set monthly budget": row("gateway", "gateway/budget_admin.py:set_monthly_budget", MG),
    "add budget": row("gateway", "gateway/budget_admin.py:add_budget", MG),
    "ingest usage logs": row("gateway", "gateway/ingest.py:ingest", AD),
    "reprice unpriced usage": row("gateway", "gateway/reprice.py:reprice_unpriced", AD),
    "prune usage events": row("gateway", "gateway/retention.py:prune_events", AD),
    "check budget alerts": row("gateway", "gateway/budget_alerts.py:check_alerts", AD),
    "list budget alerts": row("gateway", "gateway/budget_alerts.py:recent_alerts", MG, AD),
    "reconcile with the bill": row("gateway", "gateway/billing.py:reconcile", MG, AD),
    "see usage": row("gateway", "gateway/scope.py:usage_viewer", DS, AP, MG, AD),
}

# Functions that check a permission but never for a person: the LiteLLM callback stores usage
# as the command line (tests/integration/gateway/test_callback.py drives it).
NOT_PER_ROLE = {"gateway/callback.py:_write": "runs inside the LiteLLM proxy as the command line"}


@dataclass
class World:
    """The people and just enough data; each attempt makes its own subject."""

    db: Database
    settings: Settings
    tmp: Path
    admin: Actor
    owner: Actor
    people: dict[str, Actor]
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def n(self) -> int:
        return next(self.counter)

    @cached_property
    def team_id(self) -> int:
        team = teams.create_team(self.db, actor=self.admin, data=TeamCreate(name="Payments"))
        return team.id

    @cached_property
    def model(self) -> tuple[int, int]:
        """(model id, version id) owned by the owner."""
        model = assets.register_model(
            self.db, actor=self.owner, data=ModelAssetCreate(name="Support Assistant")
        )
        assert model.id is not None
        return model.id, self.new_version(model.id)

    def new_version(self, model_id: int | None = None) -> int:
        version = assets.register_version(
            self.db,
            actor=self.owner,
            model_id=model_id or self.model[0],
            data=ModelVersionCreate(metrics={"eval_loss": 1.0 + self.n() / 100}),
        )
        assert version.id is not None
        return version.id

    def request(self) -> int:
        return file_request(self.db, self.owner, self.new_version())

    @cached_property
    def dataset_version(self) -> int:
        return register_chat_dataset(self.db, self.owner, count=40)

    def flagged_dataset(self) -> int:
        n = self.n()
        lines = [
            {"messages": [{"role": "user", "content": f"Mail me at jane{i}.{n}@example.com"},
                          {"role": "assistant", "content": "Done."}]}
            for i in range(20)
        ]  # fmt: skip
        body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        result = datasets.register_version(
            self.db,
            self.settings,
            actor=self.owner,
            source=DatasetSource.upload(io.BytesIO(body), f"pii{n}.jsonl"),
            fmt=DatasetFormat.CHAT,
            new_dataset=DatasetCreate(name=f"pii-{n}"),
        )
        assert result.version.pii_status == "flagged" and result.version.id is not None
        return result.version.id

    def job(self) -> int:
        job = launch_local(self.db, self.owner, self.dataset_version).job
        assert job.id is not None
        return job.id

    def completed_job(self) -> int:
        job_id = self.job()
        launch.record_transition(self.db, job_id, JobStatus.COMPLETED, "done")
        return job_id

    @cached_property
    def run_id(self) -> str:
        client = MlflowClient(self.settings.resolved_tracking_uri)
        experiment = client.create_experiment(f"matrix-{self.tmp.name}-{id(self)}")
        run = client.create_run(experiment, run_name="notebook")
        client.log_metric(run.info.run_id, "eval_loss", 0.9, step=1)
        note = self.tmp / "notes.txt"
        note.write_text("hello")
        client.log_artifact(run.info.run_id, str(note))
        client.set_terminated(run.info.run_id)
        return str(run.info.run_id)

    def price_override(self) -> str:
        model = f"inhouse-{self.n()}"
        gateway_admin.set_price_override(
            self.db, actor=self.admin, model=model, unit=PriceUnit.PER_1M,
            input_price=Decimal(1), output_price=Decimal(2),
        )  # fmt: skip
        return model

    def identity_mapping(self) -> str:
        arn = f"arn:aws:iam::123456789012:role/app-{self.n()}"
        gateway_admin.set_identity_mapping(self.db, actor=self.admin, arn=arn, team="Payments")
        return arn


Run = Callable[[World, Actor], object]
RUNS: dict[str, Run] = {}


def drives(action: str) -> Callable[[Run], Run]:
    def add(run: Run) -> Run:
        RUNS[action] = run
        return run

    return add


def _target(w: World) -> int:
    user = make_user(w.db, f"target{w.n()}", Role.DATA_SCIENTIST)
    assert user.user_id is not None
    return user.user_id


# people ------------------------------------------------------------------------------------
RUNS["create user"] = lambda w, a: users.create_user(
    w.db, actor=a,
    data=UserCreate(username=f"new{w.n()}", display_name="N", password=PASSWORD, roles=[MG]),
)  # fmt: skip
RUNS["list users"] = lambda w, a: users.list_users(w.db, actor=a)
RUNS["get user"] = lambda w, a: users.get_user(w.db, actor=a, username="root.admin")
RUNS["update user roles"] = lambda w, a: users.update_user(
    w.db, actor=a, user_id=_target(w), changes=UserUpdate(roles=[AD]), expected_version=1
)
RUNS["disable user"] = lambda w, a: users.set_disabled(
    w.db, actor=a, user_id=_target(w), disabled=True
)
RUNS["reset password"] = lambda w, a: users.reset_password(
    w.db, actor=a, user_id=_target(w), new_password="a whole new secret"
)
RUNS["unlock user"] = lambda w, a: users.unlock(w.db, actor=a, user_id=_target(w))
RUNS["create team"] = lambda w, a: teams.create_team(
    w.db, actor=a, data=TeamCreate(name=f"Team {w.n()}")
)


@drives("update team")
def _update_team(w: World, a: Actor) -> object:
    team = teams.create_team(w.db, actor=w.admin, data=TeamCreate(name=f"Team {w.n()}"))
    changes = TeamUpdate(name=f"Renamed {w.n()}", monthly_budget=Decimal(1))
    return teams.update_team(w.db, actor=a, team_id=team.id, data=changes, expected_version=1)


RUNS["browse audit log"] = lambda w, a: audit.search_events(
    w.db, actor=a, query=audit.AuditFilter(), limit=5, offset=0
)
RUNS["audit filter choices"] = lambda w, a: audit.filter_choices(w.db, actor=a)
RUNS["verify audit chain"] = lambda w, a: audit.verify_chain(w.db, actor=a)
RUNS["admin overview"] = lambda w, a: attention.admin_overview(w.db, actor=a)
RUNS["system status"] = lambda w, a: system_status(w.db, w.settings, actor=a)

# registry ----------------------------------------------------------------------------------
RUNS["register model"] = lambda w, a: assets.register_model(
    w.db, actor=a, data=ModelAssetCreate(name=f"Model {w.n()}")
)
RUNS["register model version"] = lambda w, a: assets.register_version(
    w.db, actor=a, model_id=w.model[0], data=ModelVersionCreate(metrics={"eval_loss": 1.0})
)
RUNS["edit model card"] = lambda w, a: assets.update_card(
    w.db, actor=a, version_id=(v := w.new_version()),
    card=ModelVersionCardUpdate(description=f"Card of version {v}"), expected_version=1,
)  # fmt: skip
RUNS["register dataset version"] = lambda w, a: register_chat_dataset(
    w.db, a, count=20, name=f"chat-{w.n()}", seed=w.n()
)
RUNS["except dataset PII"] = lambda w, a: datasets.except_pii(
    w.db, actor=a, version_id=w.flagged_dataset(), reason="synthetic addresses, ticket DPO-12"
)


@dataclass
class EmptySource:
    """A registry source with nothing new (the adapters have their own tests)."""

    name: str = "mlflow"
    label: str = "MLflow"

    def unavailable_reason(self) -> str | None:
        return None

    def fetch(self) -> list[ExternalModel]:
        return []


RUNS["sync registry source"] = lambda w, a: sync.sync_source(w.db, actor=a, source=EmptySource())
RUNS["link gateway model"] = lambda w, a: model_usage.link_gateway_model(
    w.db, actor=a, version_id=w.model[1], gateway_model=f"support-{w.n()}"
)
RUNS["search models"] = lambda w, a: catalog.search_models(
    w.db, actor=a, query=catalog.ModelQuery()
)
RUNS["catalog filter options"] = lambda w, a: catalog.filter_options(w.db, actor=a)
RUNS["model detail"] = lambda w, a: cards.model_detail(w.db, actor=a, model_id=w.model[0])
RUNS["version card"] = lambda w, a: cards.version_card(w.db, actor=a, model_id=w.model[0], number=1)
RUNS["compare versions"] = lambda w, a: cards.compare_versions(
    w.db, actor=a, model_id=w.model[0], left=1, right=1
)
RUNS["version lineage"] = lambda w, a: lineage.version_lineage(
    w.db, actor=a, model_id=w.model[0], number=1
)
RUNS["list datasets"] = lambda w, a: dataset_catalog.list_datasets(w.db, actor=a)


@drives("dataset detail")
def _dataset_detail(w: World, a: Actor) -> object:
    with w.db.read() as session:
        from models.dataset import DatasetVersion

        version = session.get(DatasetVersion, w.dataset_version)
        assert version is not None
    return dataset_catalog.dataset_detail(w.db, actor=a, dataset_id=version.dataset_id)


RUNS["dataset choices"] = lambda w, a: dataset_catalog.version_choices(w.db, actor=a)
RUNS["sync status"] = lambda w, a: sync.sync_status(w.db, actor=a)
RUNS["version gateway usage"] = lambda w, a: model_usage.version_usage(
    w.db, actor=a, version_id=w.model[1], end=date(2026, 11, 30)
)
RUNS["registry attention"] = lambda w, a: attention.registry_items(w.db, actor=a)

# training ----------------------------------------------------------------------------------
RUNS["launch job"] = lambda w, a: launch_local(w.db, a, w.dataset_version)
RUNS["preview launch cost"] = lambda w, a: launch.preview_cost(
    w.db, actor=a, data={"backend": "local", "base_model": "tiny-llama",
                         "dataset_version_id": w.dataset_version, "idempotency_key": "x" * 16},
)  # fmt: skip
RUNS["backend choices"] = lambda w, a: training_catalog.backend_choices(
    w.db, w.settings, actor=a, backend=Backend.LOCAL
)
RUNS["launch options"] = lambda w, a: training_catalog.launch_options(
    w.db, actor=a, backend=Backend.LOCAL, base_model="tiny-llama", customization_type=None
)
RUNS["stop job"] = lambda w, a: jobs.stop_job(w.db, w.settings, actor=a, job_id=w.job())
RUNS["register job result"] = lambda w, a: registration.register_job_result(
    w.db, w.settings, actor=a, job_id=w.completed_job(), new_model_name=f"Tuned {w.n()}"
)
RUNS["list jobs"] = lambda w, a: jobs.list_jobs(w.db, actor=a, query=jobs.JobQuery(scope="all"))
RUNS["job detail"] = lambda w, a: jobs.job_detail(w.db, actor=a, job_id=w.job())
RUNS["job logs"] = lambda w, a: jobs.job_logs(w.db, w.settings, actor=a, job_id=w.job())
RUNS["job metric history"] = lambda w, a: jobs.metric_history(
    w.db, w.settings, actor=a, job_id=w.job()
)
RUNS["job attention"] = lambda w, a: attention.job_items(w.db, actor=a)
RUNS["list training prices"] = lambda w, a: pricing.list_prices(w.db, actor=a)
RUNS["set training price"] = lambda w, a: pricing.set_price(
    w.db, actor=a, backend="sagemaker", item=f"ml.g{w.n()}.xlarge", price="$1.00",
    source="Enterprise discount agreement 2026",
)  # fmt: skip


@drives("clear training price")
def _clear_price(w: World, a: Actor) -> object:
    item = f"ml.g{w.n()}.xlarge"
    pricing.set_price(
        w.db, actor=w.admin, backend="sagemaker", item=item, price="$1.00",
        source="Enterprise discount agreement 2026",
    )  # fmt: skip
    pricing.clear_override(w.db, actor=a, backend="sagemaker", item=item)
    return item


# experiments -------------------------------------------------------------------------------
RUNS["register run as version"] = lambda w, a: register.register_run(
    w.db, w.settings, actor=a, run_id=w.run_id, new_model_name=f"Notebook {w.n()}"
)
RUNS["registrable models"] = lambda w, a: register.registrable_models(w.db, actor=a)
RUNS["list experiments"] = lambda w, a: runs.list_experiments(w.db, w.settings, actor=a)


@drives("search runs")
def _search_runs(w: World, a: Actor) -> object:
    experiment = MlflowClient(w.settings.resolved_tracking_uri).get_run(w.run_id)
    return runs.search_runs(
        w.db, w.settings, actor=a, experiment_ids=[experiment.info.experiment_id]
    )


RUNS["get runs"] = lambda w, a: runs.get_runs(w.db, w.settings, actor=a, run_ids=[w.run_id])


@drives("run curves")
def _run_curves(w: World, a: Actor) -> object:
    records, _ = runs.get_runs(w.db, w.settings, actor=w.owner, run_ids=[w.run_id])
    return curves.run_curves(w.db, w.settings, actor=a, runs=records, keys=["eval_loss"])


RUNS["download artifact"] = lambda w, a: detail.download_artifact(
    w.db, w.settings, actor=a, run_id=w.run_id, path="notes.txt", size=5
)

# promotions --------------------------------------------------------------------------------
RUNS["request promotion"] = lambda w, a: file_request(w.db, a, w.new_version())
RUNS["approve promotion"] = lambda w, a: promotions.approve(
    w.db, w.settings, actor=a, request_id=w.request(), comment="Looks good to me."
)
RUNS["reject promotion"] = lambda w, a: promotions.reject(
    w.db, w.settings, actor=a, request_id=w.request(), comment="Not on this data, sorry."
)
RUNS["withdraw request"] = lambda w, a: promotions.withdraw(w.db, actor=a, request_id=w.request())
RUNS["retry side effects"] = lambda w, a: side_effects.retry(
    w.db, w.settings, actor=a, request_id=w.request()
)
RUNS["save policy"] = lambda w, a: policies.save_policy(
    w.db, actor=a, target_stage="staging", update=PolicyUpdate(required_approvals=2)
)
RUNS["policy history"] = lambda w, a: policies.policy_history(
    w.db, actor=a, target_stage="production"
)
RUNS["current policies"] = lambda w, a: policies.current_policies(w.db, actor=a)
RUNS["list requests"] = lambda w, a: queries.list_requests(
    w.db, actor=a, query=queries.RequestFilter()
)
RUNS["approval queue"] = lambda w, a: queries.approval_queue(w.db, actor=a)
RUNS["request detail"] = lambda w, a: queries.request_detail(w.db, actor=a, request_id=w.request())
RUNS["requests of a version"] = lambda w, a: queries.requests_of_version(
    w.db, actor=a, version_id=w.model[1]
)
RUNS["requestable versions"] = lambda w, a: queries.requestable_versions(w.db, actor=a)

# gateway -----------------------------------------------------------------------------------
RUNS["set gateway price override"] = lambda w, a: gateway_admin.set_price_override(
    w.db, actor=a, model=f"inhouse-{w.n()}", unit=PriceUnit.PER_1M,
    input_price=Decimal(1), output_price=Decimal(2),
)  # fmt: skip
RUNS["remove gateway price override"] = lambda w, a: gateway_admin.remove_price_override(
    w.db, actor=a, model=w.price_override()
)
RUNS["list gateway price overrides"] = lambda w, a: gateway_admin.list_price_overrides(
    w.db, actor=a
)
RUNS["set identity mapping"] = lambda w, a: gateway_admin.set_identity_mapping(
    w.db, actor=a, arn=f"arn:aws:iam::123456789012:role/app-{w.n()}", team="Payments"
)
RUNS["remove identity mapping"] = lambda w, a: gateway_admin.remove_identity_mapping(
    w.db, actor=a, arn=w.identity_mapping()
)
RUNS["list identity mappings"] = lambda w, a: gateway_admin.list_identity_mappings(w.db, actor=a)
RUNS["set monthly budget"] = lambda w, a: budget_admin.set_monthly_budget(
    w.db, actor=a, team_id=w.team_id, amount="250"
)
RUNS["add budget"] = lambda w, a: budget_admin.add_budget(
    w.db, actor=a, team_id=w.team_id, name=f"Q{w.n()}", start=date(2026, 10, 1),
    end=date(2026, 12, 31), amount="1000",
)  # fmt: skip


@drives("ingest usage logs")
def _ingest(w: World, a: Actor) -> object:
    n = w.n()
    logs = w.tmp / f"logs{n}"
    logs.mkdir()
    write_lines(logs / "a.jsonl", [litellm(f"req-{n}", "2026-11-02T09:00:00Z")])
    result = ingest.ingest(
        w.db, w.settings, actor=a, location=str(logs), source=UsageSource.LITELLM
    )
    assert result.files == 1
    return result


RUNS["reprice unpriced usage"] = lambda w, a: reprice.reprice_unpriced(
    w.db, actor=a, model="inhouse-7b"
)
RUNS["prune usage events"] = lambda w, a: retention.prune_events(
    w.db, actor=a, keep_days=30, today=date(2026, 11, 10)
)
RUNS["check budget alerts"] = lambda w, a: budget_alerts.check_alerts(
    w.db, w.settings, actor=a, today=date(2026, 11, 10)
)
RUNS["list budget alerts"] = lambda w, a: budget_alerts.recent_alerts(w.db, actor=a)


@drives("reconcile with the bill")
def _reconcile(w: World, a: Actor) -> object:
    with mock_aws():  # Cost Explorer answers from moto; nothing reaches AWS
        aws._client.cache_clear()
        return billing.reconcile(
            w.db, w.settings, actor=a, start=date(2026, 11, 1), end=date(2026, 11, 2)
        )


@drives("see usage")
def _see_usage(w: World, a: Actor) -> object:
    with w.db.read() as session:
        return scope.usage_viewer(session, a)


# the matrix --------------------------------------------------------------------------------
@pytest.fixture
def world(
    db: Database, admin: Actor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PORTAL_AWS_REGION", "us-east-1")
    get_settings.cache_clear()
    people = {role: make_user(db, f"as.{role}", Role(role)) for role in ROLES}
    people[OWNER] = make_user(db, "owner.rita", Role.DATA_SCIENTIST, Role.APPROVER)
    world = World(db, get_settings(), tmp_path, admin, people[OWNER], people)
    yield world
    aws._client.cache_clear()


def attempt(w: World, action: str) -> tuple[list[str], list[str], list[str]]:
    """Drive ``action`` as each role; returns (allowed, refused, wrong outcomes)."""
    expected = MATRIX[action]
    who = [*ROLES, OWNER] if expected.owned else list(ROLES)
    allowed, refused, wrong = [], [], []
    for person in who:
        try:
            RUNS[action](w, w.people[person])
        except PermissionDenied as error:
            refused.append(person)
            if person in expected.allowed:
                wrong.append(f"{action}: {person} was refused ({error})")
            continue
        allowed.append(person)
        if person not in expected.allowed:
            wrong.append(f"{action}: {person} was allowed")
    return allowed, refused, wrong


@pytest.mark.parametrize("area", sorted({r.area for r in MATRIX.values()}))
def test_each_action_is_allowed_exactly_where_the_roles_table_says(world: World, area: str) -> None:
    """Every action of the area, for each role (and the owner of the subject)."""
    wrong = []
    for action in sorted(a for a, r in MATRIX.items() if r.area == area):
        allowed, refused, mistakes = attempt(world, action)
        print(
            f"{action}: allowed {', '.join(allowed) or 'nobody'}; "
            f"refused {', '.join(refused) or 'nobody'}"
        )
        wrong += mistakes
    assert not wrong, "\n".join(wrong)


def test_every_role_but_admin_together_is_still_refused_admin_actions(world: World) -> None:
    """Separation of duties: no combination of the other roles adds up to an administrator."""
    everyone_else = make_user(
        world.db, "all.but.admin", Role.DATA_SCIENTIST, Role.APPROVER, Role.MANAGER
    )
    admin_only = sorted(a for a, r in MATRIX.items() if r.allowed == {AD})
    for action in admin_only:
        with pytest.raises(PermissionDenied, match="admin role"):
            RUNS[action](world, everyone_else)
    print(f"data_scientist+approver+manager: refused all {len(admin_only)} admin-only actions")


def test_holding_several_roles_grants_their_union_and_no_more(db: Database, admin: Actor) -> None:
    """A data scientist who is also a manager may launch nothing new by being a manager, may
    set budgets, and may still not administer users."""
    both = make_user(db, "ds.manager", Role.DATA_SCIENTIST, Role.MANAGER)
    target = make_user(db, "target", Role.DATA_SCIENTIST)
    team = teams.create_team(db, actor=admin, data=TeamCreate(name="Search"))
    assert team.id is not None and target.user_id is not None
    budget_admin.set_monthly_budget(db, actor=both, team_id=team.id, amount="10")
    assets.register_model(db, actor=both, data=ModelAssetCreate(name="Both"))
    with pytest.raises(PermissionDenied, match="admin role"):
        users.set_disabled(db, actor=both, user_id=target.user_id, disabled=True)
    print("data_scientist+manager: budgets and registry allowed; disabling a user refused")


def test_a_demoted_user_loses_the_right_at_once(db: Database, admin: Actor) -> None:
    """Roles are read from the database at each call, not from the signed-in session."""
    manager = make_user(db, "mona", Role.MANAGER, Role.ADMIN)
    assert manager.user_id is not None
    users.list_users(db, actor=manager)
    users.update_user(
        db, actor=admin, user_id=manager.user_id, changes=UserUpdate(roles=[MG]),
        expected_version=1,
    )  # fmt: skip
    with pytest.raises(PermissionDenied, match="admin role"):
        users.list_users(db, actor=manager)  # the same Actor, still claiming admin
    print("list users: allowed before the demotion, refused after it")


# the guard ---------------------------------------------------------------------------------
def checked_functions() -> dict[str, set[str]]:
    """Every function under services/ that calls require() or require_any(), with the
    permissions it names."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "services").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if node.name in {"require", "require_any"}:
                continue
            for call in ast.walk(node):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id in {"require", "require_any"}
                ):
                    key = f"{path.relative_to(ROOT / 'services').as_posix()}:{node.name}"
                    found.setdefault(key, set()).update(ast.unparse(a) for a in call.args[2:])
    return found


def test_the_matrix_covers_every_permission_check_in_services() -> None:
    found = set(checked_functions())
    covered = {f for r in MATRIX.values() for f in r.functions} | set(NOT_PER_ROLE)
    assert found - covered == set(), "add these to MATRIX (and RUNS)"
    assert covered - found == set(), "these no longer check a permission; update MATRIX"
    assert set(RUNS) == set(MATRIX), "every row of MATRIX needs its way to drive it, and back"
    print(f"{len(found)} checked service functions, {len(MATRIX)} actions in the matrix")


# pages -------------------------------------------------------------------------------------
EXPECTED_PAGES = {
    DS: {"home", "registry", "fine-tuning", "experiments", "promotions", "usage"},
    AP: {"home", "registry", "fine-tuning", "experiments", "promotions", "usage"},
    MG: {"home", "usage"},
    AD: {"home", "registry", "fine-tuning", "usage", "admin"},
}


def open_url(at: AppTest, url_path: str) -> AppTest:
    """Open ``/url_path`` as a browser would (AppTest's switch_page takes files, and a
    refused page is not a file); Streamlit names a navigation page by the hash of its URL."""
    at._page_hash = calc_hash(url_path)
    return at.run()


@pytest.mark.parametrize("role", ROLES)
def test_every_page_url_opens_or_refuses_for_each_role(app_db: Database, role: str) -> None:
    make_user(app_db, "root.admin", Role.ADMIN)
    make_user(app_db, "person", Role(role))
    at = signed_in("person").run()
    assert not at.exception and at.title[0].value == "Home"
    opened, refused = ["home"], []
    for spec in PAGE_SPECS[1:]:
        open_url(at, spec.url_path)
        assert not at.exception, (spec.key, at.exception)
        assert at.title[0].value == spec.title, spec.key
        shown = texts(at)
        if "You do not have access to this page" in shown:
            refused.append(spec.key)
            assert not at.dataframe, f"{spec.key} showed data to {role}"
        else:
            opened.append(spec.key)
    print(f"{role}: opens {', '.join(opened)}; refused {', '.join(refused) or 'nothing'}")
    assert set(opened) == EXPECTED_PAGES[role]
    assert set(refused) == {s.key for s in PAGE_SPECS} - EXPECTED_PAGES[role]


def test_several_roles_open_the_union_of_their_pages() -> None:
    from services.permissions import PAGES

    roles = [Role.MANAGER, Role.ADMIN]
    assert {k for k, p in PAGES.items() if p.allows(roles)} == EXPECTED_PAGES[MG] | EXPECTED_PAGES[
        AD
    ]
