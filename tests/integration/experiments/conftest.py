"""A real ``mlflow server`` for the Experiments integration tests (and the metric history
benchmark): SQLite store and artifacts in a temporary folder, a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.processes import free_port, stop_group


@contextmanager
def running_mlflow_server(
    folder: Path, *, workers: int = 2, startup_timeout: float = 120.0
) -> Iterator[str]:
    """Start ``mlflow server`` on ``folder/mlflow.db`` and yield its base URL once ``/health``
    answers; stop it and its workers on the way out. Its output goes to ``folder/server.log``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", str(workers),
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--default-artifact-root", (folder / "artifacts").as_uri(),
    ]  # fmt: skip
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job consumer processes
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(server, url, startup_timeout, log_path)
        yield url
    finally:
        stop_group(server, grace=15)


def _wait_until_healthy(
    server: subprocess.Popen[bytes], url: str, timeout: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"mlflow server not healthy after {timeout:g} s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def mlflow_server_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's server keeps its store (``mlflow.db``), artifacts and log."""
    return tmp_path_factory.mktemp("mlflow-server")


@pytest.fixture(scope="module")
def mlflow_server(mlflow_server_folder: Path) -> Iterator[str]:
    """The base URL of a real ``mlflow server`` with an empty SQLite store, for one module."""
    with running_mlflow_server(mlflow_server_folder) as url:
        yield url
