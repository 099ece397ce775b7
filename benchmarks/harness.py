"""What the page benchmarks share: a throwaway portal home, an AppTest signed in as a user on
a page with query parameters, and warm reruns timed the way a user's click costs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

from benchmarks import figures
from benchmarks.figures import Figure

ROOT = Path(__file__).resolve().parents[1]
FLOOR_PAGE = """
import numpy as np
import pandas as pd
import streamlit as st

@st.cache_data
def table() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"model": [f"model-{i}" for i in range(10_000)],
                         "version": rng.integers(1, 20, 10_000),
                         "stage": rng.choice(["development", "staging", "production"], 10_000),
                         "eval_loss": rng.random(10_000)})

st.title("Floor")
st.dataframe(table())
"""
"""The framework's floor: a page that only shows a 10,000-row table."""


def use_portal_home(home: str) -> None:
    """Point the portal at a temporary home (SQLite, MLflow store) with no worker."""
    os.environ.update(
        {
            "PORTAL_HOME": home,
            "PORTAL_BCRYPT_ROUNDS": "4",
            "PORTAL_START_WORKER": "false",
            "PORTAL_MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
        }
    )


def signed_in_page(username: str, page: str, params: dict[str, str]) -> AppTest:
    """The app, logged in as ``username`` (as after a cookie login), on ``page``."""
    from models.types import utcnow
    from pages.components.auth_views import SESSION_STARTED_KEY

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["logout"] = None
    at.session_state[SESSION_STARTED_KEY] = utcnow()
    at.run()
    at.switch_page(page)
    for key, value in params.items():
        at.query_params[key] = value
    return at


def floor_app(home: str) -> AppTest:
    path = Path(home) / "floor.py"
    path.write_text(FLOOR_PAGE)
    return AppTest.from_file(str(path), default_timeout=120)


def warm_reruns(
    at: AppTest, runs: int, *, before_each: Callable[[], None] | None = None
) -> list[float]:
    at.run()  # cold: imports, caches, first queries
    assert not at.exception, at.exception
    samples = []
    for _ in range(runs):
        if before_each is not None:
            before_each()
        started = time.perf_counter()
        at.run()
        samples.append(time.perf_counter() - started)
        assert not at.exception, at.exception
    return samples


def report_page_rerun(
    benchmark: str, measure: str, warm_ms: float, uncached_ms: float, floor_ms: float
) -> None:
    """The figures line of a page benchmark: the warm rerun against its 150 ms target and the
    floor, the same with the query cache cleared, and the floor."""
    figures.report(
        benchmark,
        [
            Figure(
                measure,
                warm_ms,
                "ms",
                "< 150 ms",
                warm_ms < 150,
                f"{warm_ms / floor_ms:.1f}x the floor",
            ),
            Figure(
                "same, query cache cleared",
                uncached_ms,
                "ms",
                ratio=f"{uncached_ms / warm_ms:.2f}x cached",
            ),
            Figure("floor: page with only a 10,000-row table", floor_ms, "ms"),
        ],
    )
