"""The Registry in a real browser: a data scientist uploads a dataset (a bad file first, then
a good one with personal data in it), an approver accepts the PII findings, and a model with
a version trained on that dataset shows its card and lineage graph."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Portal
from tests.e2e.helpers import click, goto, login, main_area, settle, shot

pytestmark = pytest.mark.e2e

PASSWORD = "registry test passphrase 9"
SCIENTIST = Account("reg.scientist", "data_scientist", PASSWORD, "Reg Scientist")
APPROVER = Account("reg.approver", "approver", PASSWORD, "Reg Approver")


def chat_file(folder: Path, name: str, *, bad_line: int | None = None, emails: int = 0) -> Path:
    lines = []
    for i in range(1, 201):
        question = f"How do I change my plan, case {i}?"
        if i <= emails:
            question += f" Write to customer{i}@example.com"
        record = {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": "Open Billing, then Plans."},
            ]
        }
        lines.append('{"messages": [' if i == bad_line else json.dumps(record))
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def people(portal: Portal, admin: Account) -> None:
    portal.ensure_users([SCIENTIST, APPROVER])


def open_dataset_form(page: Page) -> None:
    click(page.get_by_test_id("stExpander").get_by_text("Register a dataset version"))
    expect(page.get_by_label("Dataset name")).to_be_visible()


def upload_and_register(page: Page, name: str, file: Path) -> None:
    page.get_by_label("Dataset name").fill(name)
    page.locator("input[type=file]").set_input_files(str(file))
    expect(main_area(page).get_by_text(file.name)).to_be_visible()
    settle(page)
    click(page.get_by_role("button", name="Check and register"))


def test_dataset_upload_pii_exception_and_model_lineage(
    page: Page, second_page: Page, portal: Portal, people: None, tmp_path: Path
) -> None:
    login(page, portal.url, SCIENTIST.username, SCIENTIST.password)
    goto(page, portal.url, "/registry?view=datasets")
    expect(main_area(page).get_by_text("No datasets yet")).to_be_visible()
    open_dataset_form(page)
    upload_and_register(page, "care-chats", chat_file(tmp_path, "broken.jsonl", bad_line=137))
    rejection = main_area(page).get_by_text(re.compile(r"1 bad line\(s\) among 200\. Nothing"))
    expect(rejection).to_be_visible()
    expect(main_area(page).get_by_text("200 records checked")).to_be_visible()
    expect(page.get_by_label("Dataset name")).to_have_value("care-chats")  # input kept
    shot(page, "registry-dataset-rejected")

    upload_and_register(page, "care-chats", chat_file(tmp_path, "care.jsonl", emails=3))
    expect(page).to_have_url(re.compile(r"dataset=\d+"))
    expect(main_area(page).get_by_text("flagged for PII")).to_be_visible()
    expect(main_area(page).get_by_text("Fine-tuning refuses this version")).to_be_visible()
    dataset_url = page.url
    shot(page, "registry-dataset-flagged")

    login(second_page, portal.url, APPROVER.username, APPROVER.password)
    second_page.goto(dataset_url)
    settle(second_page)
    second_page.get_by_label("Why these findings are acceptable").fill(
        "Addresses are test fixtures from the support sandbox"
    )
    click(second_page.get_by_role("button", name="Record exception"))
    expect(main_area(second_page).get_by_text("Accepted by reg.approver")).to_be_visible()
    shot(second_page, "registry-dataset-excepted")

    goto(page, portal.url, "/registry")
    click(page.get_by_test_id("stExpander").get_by_text("Register a model"))
    page.get_by_label("Name", exact=True).fill("Plan helper")
    page.get_by_role("textbox", name="Provider").fill("In-house")
    click(page.get_by_role("button", name="Register model"))
    expect(page).to_have_url(re.compile(r"model=\d+"))
    click(page.get_by_test_id("stExpander").get_by_text("Register a version"))
    page.get_by_label("MLflow run id").fill("a" * 32)
    page.get_by_role("combobox", name="Training data").click()
    click(page.get_by_role("option", name=re.compile(r"^care-chats v1")))
    page.get_by_label("Metrics").fill("eval_loss=1.05, accuracy=0.83")
    click(page.get_by_role("button", name="Register version"))
    expect(main_area(page).get_by_role("heading", name=re.compile("Version 1"))).to_be_visible()
    expect(main_area(page).get_by_role("link", name="care-chats v1")).to_be_visible()
    shot(page, "registry-model-card")
    click(main_area(page).get_by_role("tab", name="Lineage"))
    graph = main_area(page).locator("svg").filter(has_text="care-chats")
    expect(graph.first).to_be_visible()
    shot(page, "registry-lineage")
