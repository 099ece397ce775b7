"""The Registry page through AppTest on the demo catalog: browsing, filters from the URL,
deep links to a version and a dataset, the sources view, and the forms people use."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from models.user import Role
from services import demo
from services.access import Actor
from services.auth import active_user
from services.db import Database
from services.registry import catalog
from tests.conftest import make_user
from tests.ui.conftest import signed_in, texts

PAGE = "pages/views/registry.py"


@pytest.fixture
def catalog_db(app_db: Database) -> Database:
    make_user(app_db, "root.admin", Role.ADMIN)
    demo.seed(app_db)
    return app_db


def registry(username: str, **params: str) -> AppTest:
    at = signed_in(username)
    at.run()
    for key, value in params.items():
        at.query_params[key] = value
    return at.switch_page(PAGE).run()


def model_id(db: Database, name: str) -> int:
    user = active_user(db, "dana")
    assert user is not None
    page = catalog.search_models(db, actor=Actor.of(user), query=catalog.ModelQuery(text=name))
    return page.rows[0].id


def widget(elements: Any, label: str) -> Any:
    return next(e for e in elements if e.label == label)


def test_catalog_lists_the_demo_models(catalog_db: Database) -> None:
    at = registry("dana")
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 15 and "Support assistant" in set(table["Model"])
    assert "15 models · page 1 of 1" in texts(at)


def test_filters_come_from_the_url(catalog_db: Database) -> None:
    at = registry("dana", provider="Amazon", kind="foundation")
    table = at.dataframe[0].value
    assert set(table["Provider"]) == {"Amazon"} and len(table) == 5
    empty = registry("priya", q="no such model anywhere")
    assert "No model matches these filters" in texts(empty)


def test_deep_link_opens_a_versions_model_card(catalog_db: Database) -> None:
    at = registry("priya", model=str(model_id(catalog_db, "Support assistant")), version="2")
    assert not at.exception
    assert any("Version 2" in m.value for m in at.markdown)
    shown = texts(at)
    assert "1,200 records · PII clean" in shown and "In production over time" in shown
    assert not [b for b in at.button if b.label == "Save model card"]  # approvers only read


def test_datasets_view_and_the_pii_exception(catalog_db: Database) -> None:
    at = registry("dana", view="datasets")
    assert set(at.dataframe[0].value["Dataset"]) == {"support-conversations", "payment-disputes"}
    flagged = registry("priya", dataset="2")
    assert "Fine-tuning refuses this version" in texts(flagged)
    widget(flagged.text_area, "Why these findings are acceptable").input(
        "Synthetic customers generated for the demo"
    )
    widget(flagged.button, "Record exception").click().run()
    assert not flagged.exception
    assert "Accepted by priya" in texts(flagged)


def test_scientist_cannot_except_pii(catalog_db: Database) -> None:
    at = registry("dana", dataset="2")
    assert not [b for b in at.button if b.label == "Record exception"]


def test_sources_view_says_what_is_not_configured(catalog_db: Database) -> None:
    at = registry("dana", view="sources")
    assert not at.exception
    assert "AWS is not configured: set PORTAL_AWS_REGION" in texts(at)
    assert widget(at.button, "Sync now")


def test_register_a_model_from_the_form(catalog_db: Database) -> None:
    at = registry("dana")
    widget(at.text_input, "Name").input("Ticket triage")
    widget(at.text_input, "Provider").input("In-house")
    widget(at.text_input, "Tags").input("use-case=triage")
    widget(at.button, "Register model").click().run()
    assert not at.exception
    assert at.query_params["model"] == str(model_id(catalog_db, "Ticket triage"))
    bad = registry("dana")
    widget(bad.text_input, "Name").input("Bad tags")
    widget(bad.text_input, "Tags").input("not a key=x")
    widget(bad.button, "Register model").click().run()
    assert "Tags: tag 'not a key' must be" in texts(bad)
    assert widget(bad.text_input, "Name").value == "Bad tags"


def test_home_shows_flagged_datasets_to_who_must_act(catalog_db: Database) -> None:
    approver = signed_in("priya").run()
    assert "1 dataset version(s) flagged for personal data" in texts(approver)
    assert "payment-disputes v1" in texts(approver)
    owner = signed_in("dana").run()
    assert "1 of your dataset version(s) flagged for personal data" in texts(owner)
    someone_else = signed_in("sam").run()
    assert "flagged for personal data" not in texts(someone_else)
    assert "Needs your attention" not in texts(someone_else)
