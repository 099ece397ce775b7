"""Where the Experiments page's metric histories come from: a tracking server through its REST
API, or a local store through MLflow in-process. Each source reads whole histories in bulk,
sampled histories in bulk, one run's history, and whether a run exists; ``None`` from a bulk
read means "not here, or it met a run it does not know", and the caller then asks otherwise.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import orjson
import requests
from requests.adapters import HTTPAdapter

from services.errors import ExternalServiceError

log = logging.getLogger(__name__)

WHOLE_BULK_PATH = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
SAMPLED_BULK_PATH = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
HISTORY_PATH = "/api/2.0/mlflow/metrics/get-history"
RUN_PATH = "/api/2.0/mlflow/runs/get"
WHOLE_BULK_CAP = 25_000  # points in one whole bulk answer, all its runs together
PARALLEL_REQUESTS = 8  # `mlflow server` runs 4 workers by default

RawPoint = tuple[str, int, float, int]  # run id, step, value, timestamp ms
Result = TypeVar("Result")


class HistorySource(Protocol):
    """Where histories come from. ``None`` means "cannot do that here, or met an unknown run":
    the caller then asks differently. Other failures raise ``ExternalServiceError``."""

    parallel_requests: int

    def whole(self, run_ids: list[str], key: str) -> list[RawPoint] | None:
        """The runs' whole histories, sorted by run id, cut off after 25,000 points."""

    def sampled(self, run_ids: list[str], key: str, max_points: int) -> list[RawPoint] | None:
        """At most ``max_points`` evenly spaced points of each run's history."""

    def full(self, run_id: str, key: str) -> list[RawPoint]:
        """One run's whole history; empty for a run the store does not know."""

    def exists(self, run_id: str) -> bool:
        """Whether the store knows the run."""


def open_source(tracking_uri: str, timeout: float) -> HistorySource:
    """The source for a tracking URI; ``timeout`` bounds each request to a server."""
    if tracking_uri.startswith(("http://", "https://")):
        return ServerSource(tracking_uri, timeout)
    return StoreSource(tracking_uri)


class ServerSource:
    """A tracking server, through its REST API."""

    parallel_requests = PARALLEL_REQUESTS

    def __init__(self, tracking_uri: str, timeout: float) -> None:
        self.uri = tracking_uri.rstrip("/")
        self.timeout = timeout
        self.session = _session(self.uri)
        self.missing_endpoints: set[str] = set()

    def whole(self, run_ids: list[str], key: str) -> list[RawPoint] | None:
        params = {"run_id": run_ids, "metric_key": key, "max_results": WHOLE_BULK_CAP}
        return self._metrics(WHOLE_BULK_PATH, params)

    def sampled(self, run_ids: list[str], key: str, max_points: int) -> list[RawPoint] | None:
        params = {"run_ids": run_ids, "metric_key": key, "max_results": max_points}
        return self._metrics(SAMPLED_BULK_PATH, params)

    def full(self, run_id: str, key: str) -> list[RawPoint]:
        points: list[RawPoint] = []
        params = {"run_id": run_id, "metric_key": key, "max_results": WHOLE_BULK_CAP}
        while (answer := self._get(HISTORY_PATH, params)) is not None:
            points += [_point(run_id, m) for m in answer.get("metrics", ())]
            if not answer.get("next_page_token"):
                break
            params["page_token"] = answer["next_page_token"]
        return points

    def exists(self, run_id: str) -> bool:
        return self._get(RUN_PATH, {"run_id": run_id}) is not None

    def _metrics(self, path: str, params: Mapping[str, Any]) -> list[RawPoint] | None:
        answer = self._get(path, params)
        if answer is None:
            return None
        return [_point(m["run_id"], m) for m in answer.get("metrics", ())]

    def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The JSON answer; ``None`` for an unknown run or a missing bulk endpoint."""
        if path in self.missing_endpoints:
            return None
        try:
            response = self.session.get(self.uri + path, params=params, timeout=self.timeout)
        except requests.Timeout as exc:
            raise ExternalServiceError(
                f"The MLflow tracking server at {self.uri} did not answer within "
                f"{self.timeout:g} s.",
                detail=repr(exc),
            ) from exc
        except requests.RequestException as exc:
            raise ExternalServiceError(
                f"The MLflow tracking server at {self.uri} cannot be reached. Check that it "
                "is running and that the tracking URI is right.",
                detail=repr(exc),
            ) from exc
        code, message = _mlflow_error(response)
        if response.status_code == 404 and code == "RESOURCE_DOES_NOT_EXIST":
            return None
        if response.status_code == 404 and path.startswith("/ajax-api/"):
            log.info("%s has no %s; reading histories another way", self.uri, path)
            self.missing_endpoints.add(path)
            return None
        if response.status_code in (401, 403):
            raise ExternalServiceError(
                f"The MLflow tracking server at {self.uri} refused the portal's credentials "
                f"(HTTP {response.status_code}). Set MLFLOW_TRACKING_TOKEN, or "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.",
                code=code or str(response.status_code),
            )
        if not response.ok:
            raise ExternalServiceError(
                f"The MLflow tracking server at {self.uri} could not read metric histories "
                f"(HTTP {response.status_code}): {message}",
                code=code or str(response.status_code),
            )
        return _json(response.content)


def _json(content: bytes) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = orjson.loads(content)
    except orjson.JSONDecodeError:  # Flask answers write NaN and ±inf bare, as JavaScript does
        answer = json.loads(content)
    return answer


def _point(run_id: str, metric: Mapping[str, Any]) -> RawPoint:
    # protobuf's JSON writes NaN and ±inf as the strings "NaN", "Infinity" and "-Infinity"
    value = float(metric.get("value", 0.0))
    return run_id, int(metric.get("step", 0)), value, int(metric.get("timestamp", 0))


def _mlflow_error(response: requests.Response) -> tuple[str, str]:
    """MLflow's error code and message in a failed answer; ("", text) when it has none."""
    if response.ok:
        return "", ""
    try:
        body = orjson.loads(response.content)
        return str(body.get("error_code", "")), str(body.get("message", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return "", response.text[:200]


@lru_cache(maxsize=8)
def _session(tracking_uri: str) -> requests.Session:
    """One pooled session per server, signed in as MLflow's own client would be."""
    from mlflow.utils.credentials import get_default_host_creds

    creds = get_default_host_creds(tracking_uri)  # MLFLOW_TRACKING_* or ~/.mlflow/credentials
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=PARALLEL_REQUESTS)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if creds.username and creds.password:
        session.auth = (creds.username, creds.password)
    elif creds.token:
        session.headers["Authorization"] = f"Bearer {creds.token}"
    session.verify = creds.verify
    if creds.client_cert_path:
        session.cert = creds.client_cert_path
    return session


class StoreSource:
    """A local tracking store (SQL database or folder), read in-process through MLflow."""

    parallel_requests = 4  # overlaps a database server's latency; SQLite gains little

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.tracking._tracking_service.utils import _get_store  # cached per URI

        self.uri = tracking_uri
        self.store: Any = self._call(_get_store, tracking_uri)
        self.plain_sql = type(self.store) is SqlAlchemyStore  # not a workspace-scoped one

    def whole(self, run_ids: list[str], key: str) -> list[RawPoint] | None:
        if not self.plain_sql:  # a folder store, or one split into workspaces
            return None
        return self._call(self._whole_from_metrics_table, run_ids, key)

    def _whole_from_metrics_table(self, run_ids: list[str], key: str) -> list[RawPoint]:
        """What the store's ``get_metric_history_bulk`` returns, read as rows rather than ORM
        objects (ten times faster), through MLflow's own table definition and engine."""
        from mlflow.store.tracking.dbmodels.models import SqlMetric
        from sqlalchemy import select

        columns = (SqlMetric.run_uuid, SqlMetric.step, SqlMetric.value, SqlMetric.timestamp)
        query: Any = (
            select(*columns, SqlMetric.is_nan)
            .where(SqlMetric.key == key, SqlMetric.run_uuid.in_(run_ids))
            .order_by(SqlMetric.run_uuid, SqlMetric.timestamp, SqlMetric.step, SqlMetric.value)
            .limit(WHOLE_BULK_CAP)
        )
        with self.store.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            (run_id, int(step), math.nan if is_nan else float(value), int(timestamp))
            for run_id, step, value, timestamp, is_nan in rows
        ]

    def sampled(self, run_ids: list[str], key: str, max_points: int) -> list[RawPoint] | None:
        bulk = self.store.get_metric_history_bulk_interval
        metrics = self._call(bulk, run_ids, key, max_points, None, None)
        return None if metrics is None else [_store_point(m.run_id, m) for m in metrics]

    def full(self, run_id: str, key: str) -> list[RawPoint]:
        metrics = self._call(self.store.get_metric_history, run_id, key)
        return [_store_point(run_id, m) for m in metrics or ()]

    def exists(self, run_id: str) -> bool:
        return self._call(self.store.get_run, run_id) is not None

    def _call(self, method: Callable[..., Result], *args: Any) -> Result | None:
        """The method's result; ``None`` when the store does not know the run."""
        from mlflow.exceptions import MlflowException

        try:
            return method(*args)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            cause, code = exc.message, exc.error_code
        except Exception as exc:  # database drivers raise their own types; users need one line
            cause, code = str(exc), None
        raise ExternalServiceError(
            f"The MLflow tracking store at {self.uri} cannot be read: {cause}", code=code
        )


def _store_point(run_id: str, metric: Any) -> RawPoint:
    return run_id, int(metric.step), float(metric.value), int(metric.timestamp)
