"""Finding runs: the experiments of the tracking store and a search across several of them with
MLflow's own filter syntax, paged through for thousands of runs, as plain frozen records.

MLflow is imported inside the functions: it takes seconds to import and most pages never need
it. Errors come out as the portal's own: a filter MLflow cannot parse is a ``ValidationError``
in plain words, a tracking server that does not answer an ``ExternalServiceError``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.access import Actor, require
from services.config import Settings, apply_process_defaults
from services.db import Database
from services.errors import ExternalServiceError, NotFound, ValidationError
from services.permissions import Permission

log = logging.getLogger(__name__)

PAGE = 1000  # runs per search request (MLflow's REST maximum)
MAX_RUNS = 5000
RUN_ID = re.compile(r"^[0-9a-f]{32}$")  # what MLflow's run ids look like
BY_ID = 100  # run ids per search when fetching runs by id
FILTER_EXAMPLE = "metrics.eval_loss < 1.2 and params.learning_rate = '1e-4'"


@dataclass(frozen=True)
class ExperimentInfo:
    id: str
    name: str
    last_update: datetime | None


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    name: str
    experiment_id: str
    experiment: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # the latest value of each
    tags: dict[str, str] = field(default_factory=dict)  # without MLflow's own mlflow.* tags

    @property
    def finished(self) -> bool:
        """A finished run logs nothing more: its histories can be cached for good."""
        return self.status in ("FINISHED", "FAILED", "KILLED") and self.end_time is not None


@dataclass(frozen=True)
class RunSearch:
    runs: list[RunRecord]
    truncated: bool  # more runs matched than were fetched


def _when(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)


UNREACHABLE_SIGNS = (
    "Max retries exceeded",
    "Failed to establish a new connection",
    "Read timed out",
    "Connection refused",
)
"""How MLflow's REST client words a server that is down or too slow."""


@contextmanager
def tracking_errors(settings: Settings, action: str) -> Iterator[None]:
    """MLflow's exceptions as the portal's: bad input in plain words, an unreachable server
    named with its URI."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        message = str(getattr(exc, "message", exc)).strip()
        if code == "INVALID_PARAMETER_VALUE":
            raise ValidationError(
                f"Filter: {message}. Example: {FILTER_EXAMPLE}", fields={"filter": message}
            ) from None
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(message) from None
        if any(sign in message for sign in UNREACHABLE_SIGNS):
            raise ExternalServiceError(
                f"The MLflow tracking server at {settings.resolved_tracking_uri} did not answer "
                f"(could not {action}); check that it is running.",
                code="Unreachable",
                detail=message,
            ) from exc
        raise ExternalServiceError(
            f"Could not {action} in MLflow at {settings.resolved_tracking_uri}: {message}",
            code=str(code) or None,
        ) from exc
    except (OSError, ConnectionError) as exc:
        raise ExternalServiceError(
            f"The MLflow tracking server at {settings.resolved_tracking_uri} did not answer "
            f"({type(exc).__name__}); showing nothing new until it does.",
            detail=repr(exc),
        ) from exc


def tracking_client(settings: Settings) -> Any:
    apply_process_defaults(settings)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=settings.resolved_tracking_uri)


def list_experiments(db: Database, settings: Settings, *, actor: Actor) -> list[ExperimentInfo]:
    """Every active experiment, most recently updated first."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_EXPERIMENTS)
    with tracking_errors(settings, "list experiments"):
        found = [
            ExperimentInfo(e.experiment_id, e.name, _when(e.last_update_time))
            for e in _all_experiments(tracking_client(settings))
        ]
    never = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda e: e.last_update or never, reverse=True)


def search_runs(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    experiment_ids: Sequence[str],
    filter_string: str = "",
    order_by: str | None = None,
    max_runs: int = MAX_RUNS,
    page_size: int = PAGE,
) -> RunSearch:
    """Runs of the chosen experiments matching ``filter_string`` (MLflow's search syntax), in
    ``order_by`` order (default newest first), at most ``max_runs``."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_EXPERIMENTS)
    if not experiment_ids:
        return RunSearch([], truncated=False)
    client = tracking_client(settings)
    names: dict[str, str] = {}
    runs: list[RunRecord] = []
    token = None
    with tracking_errors(settings, "search runs"):
        for experiment_id in experiment_ids:
            names[experiment_id] = client.get_experiment(experiment_id).name
        while len(runs) < max_runs:
            page = client.search_runs(
                list(experiment_ids),
                filter_string.strip(),
                max_results=min(page_size, max_runs - len(runs)),
                order_by=[order_by] if order_by else None,
                page_token=token,
            )
            runs += [_record(run, names) for run in page]
            token = page.token
            if not token:
                break
    return RunSearch(runs, truncated=bool(token))


def get_runs(
    db: Database, settings: Settings, *, actor: Actor, run_ids: Sequence[str]
) -> tuple[list[RunRecord], list[str]]:
    """The runs with these ids, in that order, and the ids no longer there (deleted, or never
    existed). One search per hundred ids, not one request per run."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_EXPERIMENTS)
    wanted = [r for r in dict.fromkeys(run_ids) if RUN_ID.match(r)]
    client = tracking_client(settings)
    found: dict[str, RunRecord] = {}
    with tracking_errors(settings, "read runs"):
        names = {e.experiment_id: e.name for e in _all_experiments(client)}
        experiments = list(names)
        for start in range(0, len(wanted), BY_ID):
            chunk = wanted[start : start + BY_ID]
            quoted = ", ".join(f"'{run_id}'" for run_id in chunk)
            page = client.search_runs(
                experiments, f"attributes.run_id IN ({quoted})", max_results=len(chunk)
            )
            found.update({run.info.run_id: _record(run, names) for run in page})
    missing = [r for r in dict.fromkeys(run_ids) if r not in found]
    return [found[r] for r in wanted if r in found], missing


def _all_experiments(client: Any) -> list[Any]:
    experiments: list[Any] = []
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        experiments += list(page)
        token = page.token
        if not token:
            return experiments


def _record(run: Any, names: dict[str, str]) -> RunRecord:
    info, data = run.info, run.data
    return RunRecord(
        run_id=info.run_id,
        name=info.run_name or info.run_id[:8],
        experiment_id=info.experiment_id,
        experiment=names.get(info.experiment_id, info.experiment_id),
        status=info.status,
        start_time=_when(info.start_time),
        end_time=_when(info.end_time),
        params=dict(data.params),
        metrics={k: float(v) for k, v in data.metrics.items()},
        tags={k: v for k, v in data.tags.items() if not k.startswith("mlflow.")},
    )
