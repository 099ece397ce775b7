"""Promotions in a real browser: a data scientist registers a version and requests its
promotion to production; the request shows its gates and refuses its author; two approvers
approve it in their own browsers; the model card shows the version in production with the
promotion in its stage history."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Portal
from tests.e2e.helpers import click, goto, login, logout_button, main_area, settle, shot

pytestmark = pytest.mark.e2e

PASSWORD = "promotion test passphrase 4"
SCIENTIST = Account("promo.scientist", "data_scientist", PASSWORD, "Promo Scientist")
FIRST = Account("promo.approver1", "approver", PASSWORD, "First Approver")
SECOND = Account("promo.approver2", "approver", PASSWORD, "Second Approver")
MODEL = "Release notes writer"


@pytest.fixture(scope="module")
def people(portal: Portal, admin: Account) -> None:
    portal.ensure_users([SCIENTIST, FIRST, SECOND])


def register_model_with_a_version(page: Page) -> None:
    click(page.get_by_test_id("stExpander").get_by_text("Register a model"))
    page.get_by_label("Name", exact=True).fill(MODEL)
    page.get_by_role("textbox", name="Provider").fill("In-house")
    click(page.get_by_role("button", name="Register model"))
    expect(page).to_have_url(re.compile(r"model=\d+"))
    click(page.get_by_test_id("stExpander").get_by_text("Register a version"))
    page.get_by_label("Metrics").fill("eval_loss=0.91, rouge_l=0.44")
    click(page.get_by_role("button", name="Register version"))
    expect(main_area(page).get_by_role("heading", name=re.compile("Version 1"))).to_be_visible()


def approve_as(page: Page, portal: Portal, who: Account, request_url: str, note: str) -> None:
    login(page, portal.url, who.username, who.password)
    page.goto(request_url)
    settle(page)
    page.get_by_label("Comment").fill(note)
    click(main_area(page).get_by_role("button", name="Approve"))


def test_request_two_approvals_and_the_model_card_shows_production(
    page: Page, second_page: Page, portal: Portal, people: None
) -> None:
    login(page, portal.url, SCIENTIST.username, SCIENTIST.password)
    goto(page, portal.url, "/registry")
    register_model_with_a_version(page)
    card_url = page.url
    click(main_area(page).get_by_role("link", name="Request promotion"))
    expect(page).to_have_url(re.compile(r"/promotions\?version=\d+"))
    form = main_area(page).get_by_test_id("stForm")
    click(form.get_by_text("Production", exact=True))
    form.get_by_label("Justification").fill(
        "Writes release notes the docs team accepts unchanged 9 times out of 10."
    )
    shot(page, "promotions-request-form")
    click(form.get_by_role("button", name="Request promotion"))
    expect(page).to_have_url(re.compile(r"request=\d+"))
    heading = main_area(page).get_by_role("heading", name=re.compile(f"{MODEL} v1 → production"))
    expect(heading).to_be_visible()
    expect(main_area(page).get_by_text("Policy revision 1")).to_be_visible()
    expect(main_area(page).get_by_text(re.compile("separation of duties"))).to_be_visible()
    expect(main_area(page).get_by_role("button", name="Approve")).to_have_count(0)
    request_url = page.url
    shot(page, "promotions-request-filed")

    approve_as(second_page, portal, FIRST, request_url, "Spot-checked twenty notes.")
    expect(main_area(second_page).get_by_text("1 of 2 approvals", exact=False)).to_be_visible()
    expect(main_area(second_page).get_by_text("You have already approved")).to_be_visible()
    shot(second_page, "promotions-first-approval")
    click(logout_button(second_page))

    approve_as(second_page, portal, SECOND, request_url, "Ship it.")
    expect(main_area(second_page).get_by_text("Approved", exact=True).first).to_be_visible()
    expect(main_area(second_page).get_by_text("2 of 2 approvals", exact=False)).to_be_visible()
    shot(second_page, "promotions-approved")

    page.goto(card_url)
    settle(page)
    version_heading = main_area(page).get_by_role("heading", name=re.compile("Version 1"))
    expect(version_heading).to_contain_text(re.compile("production", re.IGNORECASE))
    expect(main_area(page).get_by_text(re.compile(r"in production since"))).to_be_visible()
    click(main_area(page).get_by_role("tab", name="Stage history"))
    # The stage history table is drawn on a canvas; its CSV export holds the same rows.
    history = main_area(page).get_by_role("tabpanel", name="Stage history")
    expect(history.get_by_test_id("stDataFrame").first).to_be_visible()
    shot(page, "promotions-model-card-production")
