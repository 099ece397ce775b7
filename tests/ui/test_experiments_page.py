"""The Experiments page through AppTest against a real MLflow store: the runs of the newest
experiment, a bad filter explained with the query kept, a shared comparison link (with a
deleted run in it), baseline deltas, the CSV export, every chart and one run's detail. Who
may open the page is tested for every role in test_pages.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from streamlit.testing.v1 import AppTest

from models.user import Role
from services.config import get_settings
from services.db import Database
from tests.conftest import make_user
from tests.ui.conftest import signed_in, texts

PAGE = "pages/views/experiments.py"


@pytest.fixture
def sweep(app_db: Database, tmp_path: Any) -> Iterator[dict[str, Any]]:
    make_user(app_db, "root.admin", Role.ADMIN)
    make_user(app_db, "dana", Role.DATA_SCIENTIST)
    client = MlflowClient(get_settings().resolved_tracking_uri)
    name = f"sweep-{uuid.uuid4().hex[:8]}"
    experiment = client.create_experiment(name, artifact_location=(tmp_path / "a").as_uri())
    ids = []
    for i, lr in enumerate(["1e-4", "3e-4", "1e-3"]):
        run = client.create_run(experiment, run_name=f"lr-{lr}")
        losses = [Metric("train_loss", 3.0 / (s + 1) + i * 0.1, 1_000 * s, s) for s in range(30)]
        client.log_batch(
            run.info.run_id,
            metrics=[
                *losses,
                Metric("eval_loss", 1.0 + i * 0.1, 0, 30),
                Metric("accuracy", 0.8 - i * 0.05, 0, 30),
            ],
            params=[Param("learning_rate", lr), Param("lora_r", "8")],
        )
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    yield {"experiment": experiment, "name": name, "runs": ids, "client": client}


def page(username: str, **params: str) -> AppTest:
    at = signed_in(username)
    at.run()
    for key, value in params.items():
        at.query_params[key] = value
    return at.switch_page(PAGE).run(timeout=60)


def widget(elements: Any, label: str) -> Any:
    matches = [e for e in elements if e.label == label]
    assert matches, f"no widget labelled {label!r}"
    return matches[0]


def test_the_newest_experiment_lists_its_runs(sweep: dict[str, Any]) -> None:
    at = page("dana")
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["Run"]) == {"lr-1e-4", "lr-3e-4", "lr-1e-3"}
    assert "Tick runs in the table to compare them" in texts(at)


def test_a_bad_filter_is_explained_and_kept(sweep: dict[str, Any]) -> None:
    at = page("dana", experiments=sweep["experiment"], q="metrics.eval_loss <")
    assert not at.exception
    assert "Filter: Invalid clause(s) in filter string" in texts(at)
    assert widget(at.text_input, "Filter").value == "metrics.eval_loss <"


def test_a_shared_link_reopens_the_comparison(sweep: dict[str, Any]) -> None:
    first, second, third = sweep["runs"]
    sweep["client"].delete_run(third)
    at = page(
        "dana",
        experiments=sweep["experiment"],
        runs=f"{first},{second},{third}",
        baseline=first,
        chart="final",
    )
    assert not at.exception
    assert "1 run(s) in this link no longer exist" in texts(at)
    assert "Comparing 2 runs" in texts(at)
    frame = next(d.value for d in at.dataframe if "Δ eval_loss" in d.value.columns)
    row = frame[frame["Run"] == "lr-3e-4"].iloc[0]
    assert row["Δ eval_loss"] == pytest.approx(0.1) and row["Δ accuracy"] == pytest.approx(-0.05)
    assert widget(at.selectbox, "Baseline").value == first
    assert at.get("download_button")


@pytest.mark.parametrize("chart", ["history", "scatter", "parallel", "final", "importance"])
def test_every_chart_draws_for_the_selected_runs(sweep: dict[str, Any], chart: str) -> None:
    runs = ",".join(sweep["runs"])
    at = page("dana", experiments=sweep["experiment"], runs=runs, chart=chart)
    assert not at.exception
    assert at.get("vega_lite_chart")


def test_one_run_in_detail(sweep: dict[str, Any]) -> None:
    at = page("dana", run=sweep["runs"][0])
    assert not at.exception
    assert "lr-1e-4" in texts(at)
    assert "This run logged no artifacts." in texts(at)
    assert "This run was not made by a portal job" in texts(at)


def test_a_deleted_run_link_says_so(sweep: dict[str, Any]) -> None:
    sweep["client"].delete_run(sweep["runs"][0])
    at = page("dana", run=sweep["runs"][0])
    assert "does not exist any more" in texts(at)


def test_when_the_mlflow_server_stops_the_last_good_view_stays_marked_stale(
    app_db: Database, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real ``mlflow server`` answers the first view, then stops; once the page's caches
    have expired, the next rerun shows the error and the last runs and curves, marked."""
    import streamlit as st

    from services.experiments import histories
    from tests.integration.experiments.conftest import running_mlflow_server

    make_user(app_db, "root.admin", Role.ADMIN)
    make_user(app_db, "dana", Role.DATA_SCIENTIST)
    with running_mlflow_server(tmp_path / "server", workers=1) as url:
        client = MlflowClient(url)
        experiment = client.create_experiment("outage")
        runs = []
        for i in range(2):
            run = client.create_run(experiment, run_name=f"run-{i}")
            losses = [Metric("train_loss", 2.0 / (s + 1) + i, 0, s) for s in range(10)]
            client.log_batch(run.info.run_id, metrics=losses)
            client.set_terminated(run.info.run_id)
            runs.append(run.info.run_id)
        monkeypatch.setenv("PORTAL_MLFLOW_TRACKING_URI", url)
        get_settings.cache_clear()
        at = page("dana", experiments=experiment, runs=",".join(runs), chart="history")
        assert at.get("vega_lite_chart") and not at.error
    st.cache_data.clear()  # as after the caches' 30 s
    histories.clear_cache()
    at.run(timeout=120)
    assert not at.exception
    assert [e.value for e in at.error if "did not answer" in e.value]  # the search says why
    warnings = " ".join(w.value for w in at.warning)
    assert "Comparing the runs as they were at" in warnings
    assert "Showing the curves as they were at" in warnings
    assert at.get("vega_lite_chart")  # the last good chart, not an empty page


def test_a_run_from_outside_the_portal_is_registered_from_its_page(
    sweep: dict[str, Any], app_db: Database
) -> None:
    run_id = sweep["runs"][1]
    at = page("dana", run=run_id)
    widget(at.text_input, "New model name").input("Sweep winner")
    next(b for b in at.button if b.label == "Register version").click().run(timeout=60)
    assert not at.exception and not at.error
    links = [link.proto.label for link in at.get("page_link")]
    assert "Sweep winner version 1 (development)" in links  # now in the run's lineage
    assert "Request promotion of Sweep winner version 1" in links
    make_user(app_db, "priya", Role.APPROVER)
    priya = page("priya", run=run_id)  # approvers compare runs but register nothing
    assert not priya.exception
    assert not [b for b in priya.button if b.label == "Register version"]
