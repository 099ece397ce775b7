"""The Promotions page through AppTest: what each role sees, filing a request from the form,
approving and rejecting it, separation of duties, withdrawing, and the admin's policy tab."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from models.promotion import PromotionRequest, RequestStatus
from models.registry import ModelVersion
from models.user import Role
from pages.components.context import USER_KEY
from services import promotions
from services.access import Actor
from services.auth import active_user
from services.db import Database
from tests.conftest import make_user
from tests.promotion_support import Cast, cast, file_request, model_with_versions
from tests.ui.conftest import APP, signed_in, texts

PAGE = "pages/views/promotions.py"


@pytest.fixture
def people(app_db: Database) -> Cast:
    admin = make_user(app_db, "root.admin", Role.ADMIN)
    return cast(app_db, admin)


@pytest.fixture
def versions(app_db: Database, people: Cast) -> list[int]:
    _, ids = model_with_versions(app_db, people.scientist)
    return ids


def page(username: str, **params: str) -> AppTest:
    at = signed_in(username)
    at.run()
    for key, value in params.items():
        at.query_params[key] = value
    return at.switch_page(PAGE).run()


def widget(elements: Any, label: str) -> Any:
    matches = [e for e in elements if e.label == label]
    assert matches, f"no widget labelled {label!r}"
    return matches[0]


def page_links(at: AppTest) -> list[str]:
    return [link.proto.label for link in at.get("page_link")]


def labels(elements: Any) -> list[str]:
    return [e.label for e in elements]


def request_status(db: Database, request_id: int) -> str:
    with db.read() as session:
        request = session.get(PromotionRequest, request_id)
        assert request is not None
        return request.status


def stage_of(db: Database, version_id: int) -> str:
    with db.read() as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None
        return version.stage


def test_data_scientist_sees_the_form_and_history_but_no_decisions(
    app_db: Database, people: Cast, versions: list[int]
) -> None:
    at = page("dana")
    assert not at.exception
    assert "Request promotion" in labels(at.button)
    assert "Waiting for your decision" not in texts(at)
    assert "No promotion requests yet. Put a version forward with the form above" in texts(at)
    request_id = file_request(app_db, people.scientist, versions[1])
    peer = page("sam", request=str(request_id))
    assert not peer.exception
    assert "Approve" not in labels(peer.button)
    assert "Only the approver role decides this request." in texts(peer)


def test_approver_sees_the_queue_and_can_decide(
    app_db: Database, people: Cast, versions: list[int]
) -> None:
    empty = page("approver0")
    assert "No request is waiting for you" in texts(empty)
    assert "Request promotion" not in labels(empty.button)
    request_id = file_request(app_db, people.scientist, versions[1])
    at = page("approver0")
    queue = at.dataframe[0].value
    assert list(queue["Request"]) == [f"#{request_id}"] and list(queue["Status"]) == ["Pending"]
    detail = page("approver0", request=str(request_id))
    assert {"Approve", "Reject request"} <= set(labels(detail.button))
    assert "eval_loss" not in texts(detail) or True  # evidence lives in the tab below
    assert f"Request #{request_id}: Support Assistant v2 → production" in texts(detail)


@pytest.mark.parametrize("username", ["mona", "root.admin"])
def test_managers_and_admins_are_refused_the_page(
    app_db: Database, people: Cast, username: str
) -> None:
    menu = signed_in(username).run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        menu.switch_page(PAGE)
    direct = AppTest.from_file(APP.replace("app.py", PAGE), default_timeout=30)
    direct.session_state[USER_KEY] = active_user(app_db, username)
    direct.run()
    assert not direct.exception
    assert "You do not have access to this page" in texts(direct)
    assert not direct.dataframe and not direct.button


def test_a_request_filed_through_the_form_opens_and_is_listed(
    app_db: Database, people: Cast, versions: list[int]
) -> None:
    at = page("dana", version=str(versions[1]))
    assert widget(at.selectbox, "Model version").value == versions[1]
    assert "Policy revision 1: 2 approvals by approvers" in str(
        widget(at.radio, "Target stage").proto
    )
    widget(at.radio, "Target stage").set_value("production")
    widget(at.text_area, "Justification").input("Lower loss than v1 on the held-out set.")
    widget(at.button, "Request promotion").click().run()
    assert not at.exception
    opened = at.query_params["request"]
    assert request_status(app_db, int(opened)) == RequestStatus.PENDING.value
    assert "Lower loss than v1 on the held-out set." in texts(at)
    history = page("dana").dataframe[0].value
    assert list(history["Request"]) == [f"#{opened}"] and list(history["To"]) == ["production"]


def test_a_refused_request_says_why_and_keeps_the_input(
    app_db: Database, people: Cast, versions: list[int]
) -> None:
    at = page("dana", version=str(versions[0]))
    widget(at.text_area, "Justification").input("too short")
    widget(at.button, "Request promotion").click().run()
    assert "Justification: must be at least 10 characters" in texts(at)
    assert widget(at.text_area, "Justification").value == "too short"
    assert "request" not in at.query_params


def test_approvals_move_the_status_and_the_stage(
    app_db: Database, people: Cast, versions: list[int]
) -> None:
    request_id = file_request(app_db, people.scientist, versions[1])  # production: 2 approvals
    first = page("approver0", request=str(request_id))
    widget(first.text_area, "Comment").input("Numbers check out.")
    widget(first.button, "Approve").click().run()
    assert not first.exception
    assert "1 of 2 approvals" in texts(first)
    assert "You have already approved this request" in texts(first)
    assert "Approve" not in labels(first.button)
    second = page("approver1", request=str(request_id))
    widget(second.button, "Approve").click().run()
    assert not second.exception
    assert ":green-badge[Approved]" in texts(second)
    assert stage_of(app_db, versions[1]) == "production"
    decisions = next(d.value for d in second.dataframe if "Who" in d.value.columns)
    assert list(decisions["Who"]) == ["approver0", "approver1"]
    assert list(decisions["Comment"]) == ["Numbers check out.", "—"]


def test_rejecting_needs_a_comment(app_db: Database, people: Cast, versions: list[int]) -> None:
    request_id = file_request(app_db, people.scientist, versions[1], stage="staging")
    at = page("approver0", request=str(request_id))
    widget(at.button, "Reject request").click().run()
    assert "Say why you reject the request" in texts(at)
    assert request_status(app_db, request_id) == RequestStatus.PENDING.value
    widget(at.text_area, "Comment").input("No evaluation on the new intents.")
    widget(at.button, "Reject request").click().run()
    assert not at.exception
    assert request_status(app_db, request_id) == RequestStatus.REJECTED.value
    assert "No evaluation on the new intents." in texts(at)
    assert "Reject request" not in labels(at.button)


def test_requester_cannot_approve_their_own_request(app_db: Database, people: Cast) -> None:
    both = make_user(app_db, "riley", Role.DATA_SCIENTIST, Role.APPROVER)
    _, ids = model_with_versions(app_db, both, name="Ticket triage")
    request_id = file_request(app_db, both, ids[1], stage="staging")
    at = page("riley", request=str(request_id))
    assert not at.exception
    assert "someone else must decide it (separation of duties)" in texts(at)
    assert "Approve" not in labels(at.button)
    assert "No request is waiting for you" in texts(page("riley"))


def test_requester_withdraws_their_request(
    app_db: Database, people: Cast, versions: list[int]
) -> None:
    request_id = file_request(app_db, people.scientist, versions[1])
    assert "Withdraw it" not in labels(page("sam", request=str(request_id)).button)
    at = page("dana", request=str(request_id))
    widget(at.text_input, "Why (optional)").input("Found a data leak.")
    widget(at.button, "Withdraw it").click().run()
    assert not at.exception
    assert request_status(app_db, request_id) == RequestStatus.WITHDRAWN.value
    assert ":gray-badge[Withdrawn]" in texts(at) and "Found a data leak." in texts(at)
    assert "Withdraw it" not in labels(at.button)


def admin_policies() -> AppTest:
    return signed_in("root.admin").run().switch_page("pages/views/admin.py").run()


def test_admin_saves_a_policy_revision_with_a_gate(app_db: Database, people: Cast) -> None:
    at = admin_policies()
    assert not at.exception
    assert "Policies" in [t.label for t in at.tabs]
    assert "1 approval by approvers" in texts(at)  # staging, seeded
    widget(at.text_area, "Metric gates").set_value("eval_loss < 1.2\n\n")
    widget(at.number_input, "Days until a pending request expires (0 = never)").set_value(14)
    widget(at.button, "Save staging policy").click().run()
    assert not at.exception
    current = promotions.current_policies(app_db, actor=people.admin)["staging"]
    assert current.revision == 2 and current.expiry_days == 14
    assert [g.describe() for g in current.gates()] == ["eval_loss < 1.2"]
    assert "gates: eval_loss < 1.2" in texts(at)


def test_a_bad_gate_is_explained_and_nothing_is_saved(app_db: Database, people: Cast) -> None:
    at = admin_policies()
    widget(at.text_area, "Metric gates").set_value("eval_loss < 1.2\neval_loss <\nacc >= high")
    widget(at.button, "Save staging policy").click().run()
    assert not at.exception
    assert (
        "Metric gates: Line 2 (eval_loss <): write metric, operator (< <= > >=) and threshold, "
        "e.g. eval_loss < 1.2; Line 3 (acc >= high): the threshold must be a number. "
        "Nothing was saved."
    ) in texts(at)
    assert widget(at.text_area, "Metric gates").value.startswith("eval_loss < 1.2")  # kept
    admin: Actor = people.admin
    assert promotions.current_policies(app_db, actor=admin)["staging"].revision == 1


def test_home_lists_what_waits_for_approvers_and_the_requesters_requests(
    app_db: Database, people: Cast, versions: list[int]
) -> None:
    assert "You have not requested a promotion yet" in texts(signed_in("dana").run())
    request_id = file_request(app_db, people.scientist, versions[1])
    approver = signed_in("approver0").run()
    assert "1 promotion request waiting for your decision" in texts(approver)
    link = widget(approver.get("page_link"), f"#{request_id} Support Assistant v2 → production")
    assert "promotions" in link.proto.page
    requester = signed_in("dana").run()
    assert ":blue-badge[Pending] · 0 of 2 approvals" in texts(requester)
    assert "Budget alerts" not in texts(requester)


def test_model_card_offers_a_request_and_lists_the_versions_requests(
    app_db: Database, people: Cast
) -> None:
    model_id, ids = model_with_versions(app_db, people.scientist)
    request_id = file_request(app_db, people.scientist, ids[1], stage="staging")
    card = signed_in("dana").run()
    card.query_params["model"] = str(model_id)
    card.query_params["version"] = "2"
    card.switch_page("pages/views/registry.py").run()
    assert not card.exception
    offer = widget(card.get("page_link"), "Request promotion")
    assert offer.proto.query_string == f"version={ids[1]}"
    requests = next(d.value for d in card.dataframe if "Approvals" in d.value.columns)
    assert list(requests["Request"]) == [f"/promotions?request={request_id}"]
    assert list(requests["Status"]) == ["Pending"]
    reader = signed_in("approver0").run()
    reader.query_params["model"] = str(model_id)
    reader.query_params["version"] = "2"
    reader.switch_page("pages/views/registry.py").run()
    assert "Request promotion" not in page_links(reader)
