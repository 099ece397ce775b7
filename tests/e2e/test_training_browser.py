"""Fine-tuning in a real browser against ``streamlit run`` and the worker it starts: a data
scientist uploads a chat dataset, launches a local job on it from the form, watches the
progress bar and loss curve while a tiny model really trains, and finds the result registered
as a model version. (Named to run after the registry's browser test, which starts from an
empty catalog in the same portal.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from services.training.samples import sample_chat_records
from tests.e2e.conftest import Account, Portal
from tests.e2e.helpers import click, goto, login, main_area, settle, shot

pytestmark = pytest.mark.e2e

SCIENTIST = Account("ft.scientist", "data_scientist", "fine tuning passphrase 7", "FT Scientist")
TRAINING_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def people(portal: Portal, admin: Account) -> None:
    portal.ensure_users([SCIENTIST])


def test_launch_watch_and_register_a_local_job(
    page: Page, portal: Portal, people: None, tmp_path: Path
) -> None:
    data = tmp_path / "ft-chats.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sample_chat_records(160, seed=3)))
    login(page, portal.url, SCIENTIST.username, SCIENTIST.password)
    goto(page, portal.url, "/registry?view=datasets")
    click(page.get_by_test_id("stExpander").get_by_text("Register a dataset version"))
    page.get_by_label("Dataset name").fill("ft-chats")
    page.locator("input[type=file]").set_input_files(str(data))
    expect(main_area(page).get_by_text(data.name)).to_be_visible()
    settle(page)
    click(page.get_by_role("button", name="Check and register"))
    expect(page).to_have_url(re.compile(r"dataset=\d+"))

    goto(page, portal.url, "/fine-tuning")
    empty = main_area(page).get_by_text("You have not launched a fine-tuning job yet")
    expect(empty).to_be_visible()
    goto(page, portal.url, "/fine-tuning?view=launch")
    page.get_by_role("combobox", name="Dataset version").click()
    click(page.get_by_role("option", name=re.compile(r"^ft-chats v1")))
    max_steps = page.get_by_role("spinbutton", name="max_steps")
    max_steps.fill("40")
    max_steps.press("Tab")
    settle(page)
    click(page.get_by_text("Register the result as a model version when it succeeds"))
    page.get_by_label("Model to register into").fill("Helpdesk tiny")
    page.get_by_label("Model to register into").press("Tab")
    settle(page)
    expect(main_area(page).get_by_text("Estimated cost (at most)")).to_be_visible()
    shot(page, "fine-tuning-launch-form")
    click(page.get_by_role("button", name="Launch job"))
    expect(page).to_have_url(re.compile(r"job=\d+"))

    progress = main_area(page).get_by_text(re.compile(r"Step \d+ of 40"))
    expect(progress).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    shot(page, "fine-tuning-job-running")
    expect(main_area(page).get_by_text("Completed", exact=True)).to_be_visible(
        timeout=TRAINING_TIMEOUT_MS
    )
    expect(main_area(page).get_by_text("This job is registered as version 1")).to_be_visible(
        timeout=30_000
    )
    settle(page)
    expect(main_area(page).get_by_text("Step 40 of 40")).to_be_visible()
    chart = main_area(page).get_by_test_id("stVegaLiteChart")
    expect(chart.first).to_be_visible()
    shot(page, "fine-tuning-job-completed")
    click(main_area(page).get_by_role("tab", name="Log"))
    expect(main_area(page).get_by_text(re.compile(r"step 40/40 loss")).first).to_be_visible()

    click(main_area(page).get_by_role("link", name="Open its model card"))
    expect(main_area(page).get_by_role("heading", name="Helpdesk tiny")).to_be_visible()
    expect(main_area(page).get_by_role("link", name="ft-chats v1").first).to_be_visible()
    shot(page, "fine-tuning-registered-version")
