"""The whole journey in one real browser session, on a portal of its own (fresh PORTAL_HOME,
embedded default: SQLite, a local MLflow store and the local training worker).

An admin sets up the first account, a team with a budget, users of each role, a production
gate and a gateway price. A data scientist uploads a chat dataset and sees it validated,
launches a local fine-tuning job on it, watches its progress bar and loss curve until it
finishes, compares its run with two earlier runs, registers the result as a model version,
links the gateway's name for it and requests promotion to production. The request shows its
gate; its author cannot approve it; two approvers do. The model card shows the version in
production, its lineage graph and its stage history. Requests for that model go through the
LiteLLM callback (a separate process, as the proxy would run it); a manager sees them in the
team's report and exports the CSV; the admin verifies the audit chain.

Every step saves a screenshot in test-artifacts/e2e/ (numbered, prefixed ``journey-``)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from playwright.sync_api import Browser, Page, expect

from services.training.samples import sample_chat_records
from services.training.specs import EXPERIMENT_NAME
from tests.e2e.conftest import ADMIN, Account, Portal, browser_page, start_portal
from tests.e2e.helpers import (
    ROOT,
    choose,
    click,
    goto,
    login,
    logout,
    main_area,
    settle,
    shot,
    upload_dataset,
)

pytestmark = pytest.mark.e2e

PASSWORD = "journey passphrase 2026"
TEAM, BUDGET = "Journey Lab", "300"
SCIENTIST = Account("jo.scientist", "data_scientist", PASSWORD, "Jo Scientist")
FIRST = Account("ann.approver", "approver", PASSWORD, "Ann Approver")
SECOND = Account("bo.approver", "approver", PASSWORD, "Bo Approver")
MANAGER = Account("max.manager", "manager", PASSWORD, "Max Manager")
ROLE_LABELS = {"data_scientist": "Data scientist", "approver": "Approver", "manager": "Manager"}
MODEL, GATEWAY_MODEL = "Journey assistant", "journey-assistant"
GATE = ("eval_loss", "<=", "50")  # a tiny model's loss after 40 steps is far below 50
GATE_SHOWN = re.compile(r"eval_loss (<=|≤) 50")  # Markdown shows <= as ≤
TRAINING_TIMEOUT_MS = 240_000
REQUESTS = 12  # through the LiteLLM callback, 900 input and 150 output tokens each


@pytest.fixture(scope="module")
def journey_portal(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[Portal]:
    """A portal of the journey's own: nothing exists yet, not even an administrator."""
    home = tmp_path_factory.mktemp("journey") / "portal-home"
    with start_portal(browser=browser, home=home, log=artifacts / "journey-server.log") as portal:
        yield portal


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """The main user's browser (the admin, then the data scientist)."""
    with browser_page(browser, request, "page") as new_page:
        yield new_page


@pytest.fixture
def person(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A second browser, for whoever acts beside the main user (approvers, the manager)."""
    with browser_page(browser, request, "person") as new_page:
        yield new_page


@pytest.mark.timeout(900)  # one test for the whole journey, a real training run included
def test_the_whole_journey(
    page: Page, person: Page, journey_portal: Portal, tmp_path: Path
) -> None:
    portal = journey_portal
    set_up_the_organisation(page, portal)
    job_url = fine_tune_on_a_new_dataset(page, portal, tmp_path)
    compare_with_earlier_runs(page, portal)
    card_url = register_and_link(page, job_url)
    request_url = request_production(page)
    approve_twice(person, portal, request_url)
    check_the_model_card(page, card_url)
    send_gateway_traffic(portal)
    the_manager_exports_the_team_report(person, portal, tmp_path)
    the_audit_log_verifies(page, portal)


def set_up_the_organisation(page: Page, portal: Portal) -> None:
    goto(page, portal.url, "/")
    expect(page.get_by_text("No administrator exists yet.")).to_be_visible()
    page.get_by_label("Username", exact=True).fill(ADMIN.username)
    page.get_by_label("Full name", exact=True).fill(ADMIN.display_name)
    page.get_by_label("Password", exact=True).fill(ADMIN.password)
    page.get_by_label("Repeat the password", exact=True).fill(ADMIN.password)
    step(page, "first-admin")
    click(page.get_by_role("button", name="Create administrator"))
    expect(page.get_by_text(f"Administrator {ADMIN.username} created")).to_be_visible()
    login(page, portal.url, ADMIN.username, ADMIN.password)

    goto(page, portal.url, "/admin")
    page.get_by_role("tab", name="Teams").click()
    team_form = page.get_by_test_id("stExpander").filter(has_text="Create a team")
    team_form.get_by_text("Create a team").click()
    team_form.get_by_label("Name", exact=True).fill(TEAM)
    team_form.get_by_label("Monthly budget (USD)", exact=True).fill(BUDGET)
    click(team_form.get_by_role("button", name="Create team"))
    expect(page.get_by_text(f"Created team {TEAM}.")).to_be_visible()
    step(page, "team-created")

    for account in (SCIENTIST, FIRST, SECOND, MANAGER):
        create_user(page, account)
    step(page, "users-created")

    page.get_by_role("tab", name="Policies").click()
    main_area(page).get_by_role("tab", name="Production").click()
    gates = main_area(page).get_by_role("textbox", name="Metric gates").filter(visible=True)
    gates.fill(" ".join(GATE))
    click(main_area(page).get_by_role("button", name="Save production policy"))
    expect(page.get_by_text(GATE_SHOWN).first).to_be_visible()
    step(page, "production-gate")

    page.get_by_role("tab", name="Gateway").click()
    form = page.get_by_test_id("stForm").filter(has_text="Save model price")
    form.get_by_label("Model", exact=True).fill(GATEWAY_MODEL)
    form.get_by_label("Input price (USD)").fill("3.00")
    form.get_by_label("Output price (USD)").fill("15.00")
    form.get_by_label("Note").fill("In-house serving, internal rate card")
    click(form.get_by_role("button", name="Save model price"))
    expect(page.get_by_text(re.compile(rf"{GATEWAY_MODEL}"))).not_to_have_count(0)
    step(page, "gateway-price")
    logout(page)


def create_user(page: Page, account: Account) -> None:
    page.get_by_role("tab", name="Users").click()
    form = page.get_by_test_id("stExpander").filter(has_text="Create a user")
    username = form.get_by_label("Username", exact=True)
    if not username.is_visible():  # the expander stays as the last run left it
        form.get_by_text("Create a user").click()
    expect(username).to_be_visible()
    form.get_by_label("Username", exact=True).fill(account.username)
    form.get_by_label("Full name", exact=True).fill(account.display_name)
    choose(page, form.get_by_test_id("stSelectbox"), TEAM)
    roles = form.get_by_test_id("stMultiSelect")
    if account.role != "data_scientist":  # the form starts with Data scientist chosen
        roles.get_by_role("combobox").click()
        page.keyboard.press("Backspace")
        choose(page, roles, ROLE_LABELS[account.role])
    form.get_by_label("Initial password", exact=True).fill(account.password)
    form.get_by_label("Repeat the password", exact=True).fill(account.password)
    click(form.get_by_role("button", name="Create user"))
    expect(page.get_by_text(f"Created user {account.username}.")).to_be_visible()


def fine_tune_on_a_new_dataset(page: Page, portal: Portal, folder: Path) -> str:
    data = folder / "journey-chats.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sample_chat_records(160, seed=11)))
    login(page, portal.url, SCIENTIST.username, SCIENTIST.password)
    upload_dataset(page, portal.url, "journey-chats", data)
    expect(page).to_have_url(re.compile(r"dataset=\d+"))
    expect(main_area(page).get_by_text(f"Owner: {TEAM}")).to_be_visible()
    records = main_area(page).get_by_test_id("stMetric").filter(has_text="Records")
    expect(records).to_contain_text("160")
    expect(main_area(page).get_by_text(re.compile(r"^Nothing found: no e-mail"))).to_be_visible()
    expect(main_area(page).get_by_text("flagged for PII")).to_have_count(0)
    step(page, "dataset-validated")

    goto(page, portal.url, "/fine-tuning?view=launch")
    page.get_by_role("combobox", name="Dataset version").click()
    click(page.get_by_role("option", name=re.compile(r"^journey-chats v1")))
    max_steps = page.get_by_role("spinbutton", name="max_steps")
    max_steps.fill("40")
    max_steps.press("Tab")
    settle(page)
    expect(main_area(page).get_by_text("Estimated cost (at most)")).to_be_visible()
    step(page, "launch-form")
    click(page.get_by_role("button", name="Launch job"))
    expect(page).to_have_url(re.compile(r"job=\d+"))
    job_url = page.url

    progress = main_area(page).get_by_test_id("stProgress")
    expect(main_area(page).get_by_text(re.compile(r"Step \d+ of 40"))).to_be_visible(
        timeout=TRAINING_TIMEOUT_MS
    )
    expect(progress.first).to_be_visible()
    step(page, "job-running")
    expect(main_area(page).get_by_text("Completed", exact=True)).to_be_visible(
        timeout=TRAINING_TIMEOUT_MS
    )
    settle(page)
    expect(main_area(page).get_by_text("Step 40 of 40")).to_be_visible()
    expect(main_area(page).get_by_test_id("stVegaLiteChart").first).to_be_visible()
    step(page, "job-completed")
    click(main_area(page).get_by_role("tab", name="Log"))
    expect(main_area(page).get_by_text(re.compile(r"step 40/40 loss")).first).to_be_visible()
    return job_url


def compare_with_earlier_runs(page: Page, portal: Portal) -> None:
    """Two earlier runs of the same experiment (logged as earlier jobs would have logged
    them), then the new run beside them on the Experiments page."""
    client = MlflowClient(f"sqlite:///{portal.home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    assert experiment is not None, "the job logged no MLflow experiment"
    for i, rate in enumerate(["1e-4", "3e-4"]):
        run = client.create_run(experiment.experiment_id, run_name=f"earlier-lr-{rate}")
        curve = [Metric("train_loss", 9.0 / (s + 1) + 1 + i, 1000 * s, s) for s in range(40)]
        client.log_batch(
            run.info.run_id,
            metrics=[*curve, Metric("eval_loss", 2.5 + i, 0, 40)],
            params=[Param("learning_rate", rate), Param("lora_r", "8")],
        )
        client.set_terminated(run.info.run_id)

    goto(page, portal.url, f"/experiments?experiments={experiment.experiment_id}")
    click(main_area(page).get_by_role("button", name="Compare the first 3"))
    expect(main_area(page).get_by_text("Comparing 3 runs")).to_be_visible()
    chart = main_area(page).get_by_test_id("stVegaLiteChart")
    expect(chart.first).to_be_visible()
    step(page, "runs-compared")


def register_and_link(page: Page, job_url: str) -> str:
    page.goto(job_url)
    settle(page)
    form = main_area(page).get_by_test_id("stExpander").filter(has_text="Register as model")
    form.get_by_label("New model name").fill(MODEL)
    form.get_by_label("New model name").press("Tab")
    settle(page)
    click(form.get_by_role("button", name="Register", exact=True))
    expect(main_area(page).get_by_role("heading", name=MODEL)).to_be_visible()
    expect(main_area(page).get_by_role("link", name="journey-chats v1").first).to_be_visible()
    card_url = page.url
    step(page, "version-registered")

    click(main_area(page).get_by_role("tab", name="Gateway usage"))
    click(main_area(page).get_by_role("button", name="Link a gateway model name"))
    page.get_by_role("textbox", name="Gateway model name").fill(GATEWAY_MODEL)
    click(page.get_by_role("button", name="Link", exact=True))
    expect(page.get_by_text(f"Linked {GATEWAY_MODEL!r} to this version.")).to_be_visible()
    step(page, "gateway-name-linked")
    return card_url


def request_production(page: Page) -> str:
    click(main_area(page).get_by_role("link", name="Request promotion"))
    form = main_area(page).get_by_test_id("stForm")
    click(form.get_by_text("Production", exact=True))
    form.get_by_label("Justification").fill(
        "Answers the journey's chat prompts better than both earlier runs."
    )
    click(form.get_by_role("button", name="Request promotion"))
    expect(page).to_have_url(re.compile(r"request=\d+"))
    heading = main_area(page).get_by_role("heading", name=re.compile(f"{MODEL} v1 → production"))
    expect(heading).to_be_visible()
    expect(main_area(page).get_by_text("Policy revision 2")).to_be_visible()
    expect(main_area(page).get_by_text(GATE_SHOWN).first).to_be_visible()
    # Its author cannot approve it: no button, and the page says why.
    expect(main_area(page).get_by_role("button", name="Approve")).to_have_count(0)
    expect(main_area(page).get_by_text(re.compile("separation of duties"))).to_be_visible()
    step(page, "promotion-requested")
    return page.url


def approve_twice(person: Page, portal: Portal, request_url: str) -> None:
    for number, approver in enumerate((FIRST, SECOND), start=1):
        login(person, portal.url, approver.username, approver.password)
        person.goto(request_url)
        settle(person)
        person.get_by_label("Comment").fill(f"Checked the evidence ({approver.display_name}).")
        click(main_area(person).get_by_role("button", name="Approve"))
        expect(main_area(person).get_by_text(f"{number} of 2 approvals")).to_be_visible()
        step(person, f"approval-{number}")
        logout(person)


def check_the_model_card(page: Page, card_url: str) -> None:
    page.goto(card_url)
    settle(page)
    version = main_area(page).get_by_role("heading", name=re.compile("Version 1"))
    expect(version).to_contain_text(re.compile("production", re.IGNORECASE))
    expect(main_area(page).get_by_text(re.compile("in production since"))).to_be_visible()
    step(page, "card-in-production")
    click(main_area(page).get_by_role("tab", name="Lineage"))
    expect(main_area(page).locator("svg").filter(has_text="journey-chats").first).to_be_visible()
    step(page, "card-lineage")
    click(main_area(page).get_by_role("tab", name="Stage history"))
    history = main_area(page).get_by_role("tabpanel", name="Stage history")
    expect(history.get_by_test_id("stDataFrame").first).to_be_visible()
    step(page, "card-stage-history")


# The proxy's side: LiteLLM with the portal's callback, in a process of its own, offline.
CALLBACK_SCRIPT = """
import json, sys
import litellm
from services.gateway.callback import portal_usage_logger
litellm.suppress_debug_info = True
litellm.callbacks = [portal_usage_logger]
key = json.loads(sys.argv[1])
for _ in range(int(sys.argv[2])):
    reply = litellm.ModelResponse(usage={"prompt_tokens": 900, "completion_tokens": 150})
    litellm.completion(model="openai/journey-assistant", mock_response=reply, metadata=key,
                       messages=[{"role": "user", "content": "Where is my order?"}])
"""


def send_gateway_traffic(portal: Portal) -> None:
    key = {
        "user_api_key_alias": "journey-app",
        "user_api_key_hash": "5e1f0c2a9b",
        "user_api_key_user_id": SCIENTIST.username,
        "user_api_key_team_alias": TEAM,
    }
    done = subprocess.run(
        [sys.executable, "-c", CALLBACK_SCRIPT, json.dumps(key), str(REQUESTS)],
        cwd=ROOT,
        env={**portal.env, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def the_manager_exports_the_team_report(person: Page, portal: Portal, folder: Path) -> None:
    login(person, portal.url, MANAGER.username, MANAGER.password)
    goto(person, portal.url, f"/usage?team={TEAM}&group=model")
    requests = main_area(person).get_by_test_id("stMetric").filter(has_text="Requests")
    expect(requests.first).to_contain_text(str(REQUESTS))
    expect(main_area(person).get_by_test_id("stMetric").filter(has_text="Spend")).to_contain_text(
        "$0.06"
    )
    step(person, "manager-team-report")
    button = main_area(person).locator(".st-key-csv-grouped").get_by_role("button")
    with person.expect_download() as download:
        button.click()
    saved = folder / "team-report.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    mine = [r for r in rows if r["model"] == GATEWAY_MODEL]
    assert mine, rows
    # 12 requests × (900 × $3 + 150 × $15) per million tokens = $0.0594
    assert int(mine[0]["requests"]) == REQUESTS, mine
    assert abs(float(mine[0]["cost_usd"]) - 0.0594) < 1e-6, mine
    print(f"manager's CSV: {mine[0]}")


def the_audit_log_verifies(page: Page, portal: Portal) -> None:
    logout(page)
    login(page, portal.url, ADMIN.username, ADMIN.password)
    goto(page, portal.url, "/admin")
    page.get_by_role("tab", name="Audit log").click()
    click(page.get_by_role("button", name="Verify chain"))
    expect(page.get_by_text("Audit chain verified")).to_be_visible()
    step(page, "audit-verified")


def step(page: Page, name: str) -> None:
    shot(page, f"journey-{name}")
