"""A shared comparison link in a real browser: runs logged to the portal's own MLflow store,
opened from a copied URL (experiment, runs, baseline, chart), show the comparison with its
baseline deltas and the metric-history chart."""

from __future__ import annotations

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Portal
from tests.e2e.helpers import goto, login, main_area, shot

pytestmark = pytest.mark.e2e

ANALYST = Account("exp.scientist", "data_scientist", "experiments passphrase 3", "Exp Scientist")


@pytest.fixture(scope="module")
def people(portal: Portal, admin: Account) -> None:
    portal.ensure_users([ANALYST])


def log_sweep(portal: Portal) -> tuple[str, list[str]]:
    """Three runs of a learning-rate sweep, logged as a training script would."""
    client = MlflowClient(f"sqlite:///{portal.home / 'mlflow.db'}")
    experiment = client.create_experiment(
        "browser-sweep", artifact_location=(portal.home / "mlartifacts" / "sweep").as_uri()
    )
    ids = []
    for i, lr in enumerate(["1e-4", "3e-4", "1e-3"]):
        run = client.create_run(experiment, run_name=f"lr-{lr}")
        curve = [Metric("train_loss", 2.5 / (s + 1) + 0.2 * i, 1000 * s, s) for s in range(50)]
        client.log_batch(
            run.info.run_id,
            metrics=[*curve, Metric("eval_loss", 0.9 + 0.1 * i, 0, 50)],
            params=[Param("learning_rate", lr)],
        )
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    return experiment, ids


def test_a_shared_comparison_link_shows_its_chart(page: Page, portal: Portal, people: None) -> None:
    experiment, ids = log_sweep(portal)
    login(page, portal.url, ANALYST.username, ANALYST.password)
    link = (
        f"/experiments?experiments={experiment}&runs={','.join(ids)}&baseline={ids[0]}"
        "&chart=history&metrics=train_loss"
    )
    goto(page, portal.url, link)
    expect(main_area(page).get_by_text("Comparing 3 runs")).to_be_visible()
    expect(main_area(page).get_by_text("compared against lr-1e-4")).to_be_visible()
    chart = main_area(page).get_by_test_id("stVegaLiteChart")
    expect(chart.first).to_be_visible()
    expect(chart.first.locator("canvas, svg").first).to_be_visible()
    shot(page, "experiments-shared-comparison")
