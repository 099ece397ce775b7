"""End to end: a real Chromium against ``streamlit run app.py``, asserting what a user sees.

The tests share one server (and so one database); each one logs in with accounts of its own.
The first test must run first, on the fresh server, because it creates the first
administrator through the set-up form (run alone, any other test gets the administrator from
the command line instead). Screenshots of every step land in test-artifacts/e2e/.

"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import ADMIN, Account, Portal
from tests.e2e.helpers import (
    LOCKED,
    REFUSAL,
    choose,
    click,
    goto,
    login,
    login_cookie,
    login_form,
    logout,
    logout_button,
    main_area,
    menu,
    open_menu_entry,
    session_cookie,
    settle,
    shot,
    submit_login,
    wait_for_cookie,
)

pytestmark = pytest.mark.e2e

PASSWORD = "browser test passphrase 7"
WRONG_PASSWORD = "not the right passphrase"
MODEL_MENU = ["Home", "Registry", "Fine-tuning", "Experiments", "Promotions", "Usage & costs"]
MENUS = {
    "data_scientist": MODEL_MENU,
    "approver": MODEL_MENU,
    "manager": ["Home", "Usage & costs"],
    "admin": ["Home", "Registry", "Fine-tuning", "Usage & costs", "Admin"],
}


def _account(username: str, role: str) -> Account:
    return Account(username, role, PASSWORD, username.replace(".", " ").replace("-", " ").title())


# Every test has accounts of its own, so that a lockout or a logout cannot leak into another.
ACCOUNTS = {
    "menu-data_scientist": _account("menu.scientist", "data_scientist"),
    "menu-approver": _account("menu.approver", "approver"),
    "menu-manager": _account("menu.manager", "manager"),
    "refused-data_scientist": _account("refused.scientist", "data_scientist"),
    "refused-manager": _account("refused.manager", "manager"),
    "reload": _account("reload.scientist", "data_scientist"),
    "lockout": _account("locked.scientist", "data_scientist"),
    "logout": _account("logout.approver", "approver"),
    "stale-cookie": _account("stale.scientist", "data_scientist"),
}


@pytest.fixture(scope="module")
def accounts(portal: Portal, admin: Account) -> dict[str, Account]:
    """The tests' users, created with the command line once the administrator exists."""
    portal.ensure_users(list(ACCOUNTS.values()))
    return ACCOUNTS


def heading(page: Page, text: str) -> Locator:
    title = main_area(page).get_by_role("heading", name=text, exact=True)
    expect(title).to_be_visible()
    return title


def test_first_run_asks_for_an_administrator(page: Page, portal: Portal) -> None:
    goto(page, portal.url, "/")
    heading(page, "Set up the AI Ops Portal")
    expect(page.get_by_text("No administrator exists yet.")).to_be_visible()
    expect(page.get_by_role("button", name="Create administrator")).to_be_visible()
    expect(login_form(page)).to_have_count(0)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    shot(page, "first-admin-form")

    page.get_by_label("Username", exact=True).fill(ADMIN.username)
    page.get_by_label("Full name", exact=True).fill(ADMIN.display_name)
    page.get_by_label("Email (optional)", exact=True).fill("root.admin@example.com")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Repeat the password", exact=True).fill("short")
    click(page.get_by_role("button", name="Create administrator"))
    expect(page.get_by_text("Password: must be at least 12 characters")).to_be_visible()
    expect(page.get_by_label("Username", exact=True)).to_have_value(ADMIN.username)
    expect(page.get_by_label("Full name", exact=True)).to_have_value(ADMIN.display_name)
    expect(login_form(page)).to_have_count(0)
    shot(page, "first-admin-weak-password")

    page.get_by_label("Password", exact=True).fill(ADMIN.password)
    page.get_by_label("Repeat the password", exact=True).fill(ADMIN.password + "!")
    click(page.get_by_role("button", name="Create administrator"))
    expect(page.get_by_text("The two passwords do not match.")).to_be_visible()
    expect(page.get_by_label("Username", exact=True)).to_have_value(ADMIN.username)
    shot(page, "first-admin-passwords-differ")

    page.get_by_label("Password", exact=True).fill(ADMIN.password)
    page.get_by_label("Repeat the password", exact=True).fill(ADMIN.password)
    click(page.get_by_role("button", name="Create administrator"))
    expect(login_form(page)).to_be_visible()
    heading(page, "AI Ops Portal")
    expect(page.get_by_role("button", name="Create administrator")).to_have_count(0)
    notice = page.get_by_test_id("stAlertContentSuccess").filter(
        has_text=f"Administrator {ADMIN.username} created"
    )
    expect(notice.locator("strong", has_text=ADMIN.username)).to_be_visible()
    assert _stays_visible(notice), "the set-up notice vanished from the login page"
    shot(page, "login-after-first-admin")

    # The set-up form is never offered again, not even to a new visitor.
    goto(page, portal.url, "/")
    expect(login_form(page)).to_be_visible()
    expect(page.get_by_role("button", name="Create administrator")).to_have_count(0)

    submit_login(page, ADMIN.username, ADMIN.password)
    expect(logout_button(page)).to_be_visible()
    heading(page, "Home")
    expect(main_area(page).get_by_text(f"Welcome, {ADMIN.display_name}")).to_be_visible()
    shot(page, "first-admin-home")


@pytest.mark.parametrize("role", list(MENUS))
def test_each_role_sees_its_own_menu(
    page: Page, portal: Portal, accounts: dict[str, Account], role: str
) -> None:
    user = ADMIN if role == "admin" else accounts[f"menu-{role}"]
    login(page, portal.url, user.username, user.password)
    heading(page, "Home")
    assert menu(page) == MENUS[role]
    label = role.replace("_", " ").capitalize()
    expect(page.get_by_test_id("stSidebar").get_by_text(f"{label} · no team")).to_be_visible()
    shot(page, f"menu-{role}")


@pytest.mark.parametrize(
    ("role", "path", "title", "hidden_text"),
    [
        ("data_scientist", "/admin", "Admin", "Create a user"),
        ("manager", "/registry", "Registry", "Models, versions, datasets"),
    ],
)
def test_a_refused_url_shows_the_reason_and_nothing_else(
    page: Page,
    portal: Portal,
    accounts: dict[str, Account],
    role: str,
    path: str,
    title: str,
    hidden_text: str,
) -> None:
    user = accounts[f"refused-{role}"]
    login(page, portal.url, user.username, user.password)
    goto(page, portal.url, path)
    expect(page).to_have_url(re.compile(f"{re.escape(path)}$"))
    heading(page, title)
    refusal = main_area(page).get_by_text(REFUSAL)
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text(f"You have: {role.replace('_', ' ')}")
    expect(main_area(page).get_by_text(hidden_text)).to_have_count(0)
    expect(main_area(page).get_by_role("tab")).to_have_count(0)
    assert title not in menu(page)
    expect(logout_button(page)).to_be_visible()
    shot(page, f"refused-{role}-{path.strip('/')}")

    click(main_area(page).get_by_role("link", name="Back to Home"))
    heading(page, "Home")


def test_reload_keeps_the_page_and_the_login(
    page: Page, portal: Portal, accounts: dict[str, Account]
) -> None:
    user = accounts["reload"]
    login(page, portal.url, user.username, user.password)
    wait_for_cookie(page.context, present=True)
    # The login cookie as the browser keeps it: never sent by other sites' requests, and gone
    # after PORTAL_COOKIE_EXPIRY_DAYS (1). A cookie written by JavaScript cannot be HttpOnly,
    # and Secure is the HTTPS proxy's to add (README, Configuration).
    cookie = login_cookie(page.context)
    assert cookie is not None
    assert cookie.get("sameSite") == "Strict" and cookie.get("path") == "/", cookie
    lifetime = cookie.get("expires", 0) - time.time()
    assert 23 * 3600 < lifetime <= 24 * 3600 + 60, lifetime

    open_menu_entry(page, "Usage & costs")
    expect(page).to_have_url(re.compile(r"/usage$"))
    heading(page, "Usage & costs")
    shot(page, "reload-usage-before")
    page.reload()
    settle(page)
    expect(page).to_have_url(re.compile(r"/usage$"))
    heading(page, "Usage & costs")
    expect(logout_button(page)).to_be_visible()
    expect(login_form(page)).to_have_count(0)
    assert session_cookie(page.context) is not None
    shot(page, "reload-usage-after")

    # A link straight to another page opens it, still logged in, and survives a reload too.
    goto(page, portal.url, "/registry")
    heading(page, "Registry")
    page.reload()
    settle(page)
    expect(page).to_have_url(re.compile(r"/registry$"))
    heading(page, "Registry")
    expect(page.get_by_test_id("stSidebar")).to_contain_text(user.username)
    shot(page, "reload-registry-after")


def test_lockout_after_five_failures_until_an_admin_unlocks(
    page: Page, second_page: Page, portal: Portal, accounts: dict[str, Account]
) -> None:
    user = accounts["lockout"]
    goto(page, portal.url, "/")
    for _ in range(4):
        submit_login(page, user.username, WRONG_PASSWORD)
        expect(main_area(page).get_by_text("Username or password is incorrect.")).to_be_visible()
        expect(main_area(page).get_by_text(LOCKED)).to_have_count(0)
    shot(page, "lockout-fourth-failure")
    submit_login(page, user.username, WRONG_PASSWORD)
    expect(main_area(page).get_by_text(LOCKED)).to_be_visible()
    shot(page, "lockout-fifth-failure-locked")
    submit_login(page, user.username, user.password)
    expect(main_area(page).get_by_text(LOCKED)).to_be_visible()
    expect(logout_button(page)).to_have_count(0)
    shot(page, "lockout-right-password-still-locked")

    # The administrator finds the account in the Users tab, selects it and unlocks it.
    admin_page = second_page
    login(admin_page, portal.url, ADMIN.username, ADMIN.password)
    open_menu_entry(admin_page, "Admin")
    heading(admin_page, "Admin")
    _search_users(admin_page, user.username)
    _select_first_row(admin_page, "users-table")
    heading(admin_page, f"{user.display_name} ({user.username})")
    expect(admin_page.get_by_text("5 failed login(s) in a row.")).to_be_visible()
    expect(admin_page.get_by_text(re.compile(r"Status: Locked until"))).to_be_visible()
    shot(admin_page, "lockout-admin-sees-locked-user")
    click(admin_page.get_by_role("button", name="Unlock account"))
    expect(admin_page.get_by_text(f"Unlocked {user.username}.")).to_be_visible()
    expect(admin_page.get_by_text(re.compile(r"^Status: Active"))).to_be_visible()
    expect(admin_page.get_by_role("button", name="Unlock account")).to_have_count(0)
    shot(admin_page, "lockout-admin-unlocked")

    submit_login(page, user.username, user.password)
    expect(logout_button(page)).to_be_visible()
    heading(page, "Home")
    shot(page, "lockout-login-after-unlock")


def test_logout_ends_the_session(page: Page, portal: Portal, accounts: dict[str, Account]) -> None:
    user = accounts["logout"]
    login(page, portal.url, user.username, user.password)
    wait_for_cookie(page.context, present=True)
    open_menu_entry(page, "Promotions")
    heading(page, "Promotions")
    shot(page, "logout-before")

    click(logout_button(page))
    expect(login_form(page)).to_be_visible()
    notice = page.get_by_test_id("stAlertContentSuccess").filter(has_text="You have logged out.")
    expect(notice).to_be_visible()
    assert _stays_visible(notice), "the logout notice vanished from the login page"
    expect(logout_button(page)).to_have_count(0)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    wait_for_cookie(page.context, present=False)
    shot(page, "logout-after")

    page.reload()
    settle(page)
    expect(login_form(page)).to_be_visible()
    expect(logout_button(page)).to_have_count(0)
    assert session_cookie(page.context) is None
    shot(page, "logout-after-reload")

    goto(page, portal.url, "/promotions")
    expect(login_form(page)).to_be_visible()
    expect(main_area(page).get_by_text("Request, review and approve")).to_have_count(0)


def test_a_cookie_from_before_the_logout_no_longer_logs_in(
    page: Page, portal: Portal, accounts: dict[str, Account]
) -> None:
    """What a browser that has not deleted the cookie yet, or a copy of it, would send."""
    user = accounts["stale-cookie"]
    login(page, portal.url, user.username, user.password)
    wait_for_cookie(page.context, present=True)
    cookie = login_cookie(page.context)
    assert cookie is not None
    logout(page)

    page.context.add_cookies([cookie])  # type: ignore[list-item]
    goto(page, portal.url, "/promotions")
    expect(login_form(page)).to_be_visible()
    expect(page.get_by_text("This session has ended: you logged out.")).to_be_visible()
    expect(logout_button(page)).to_have_count(0)
    shot(page, "logout-stale-cookie-refused")
    page.context.add_cookies([cookie])  # type: ignore[list-item]
    goto(page, portal.url, "/")  # refused every time, not only once
    expect(login_form(page)).to_be_visible()
    expect(logout_button(page)).to_have_count(0)

    login(page, portal.url, user.username, user.password)  # a new login works as before
    heading(page, "Home")
    wait_for_cookie(page.context, present=True, replacing=cookie.get("value"))  # a new one


def test_admin_creates_a_team_and_a_user_and_verifies_the_audit_chain(
    page: Page, second_page: Page, portal: Portal, admin: Account
) -> None:
    team, cost_center, budget = "Vision Lab", "CC-4242", "2500"
    new_user = _account("new.hire", "data_scientist")
    login(page, portal.url, admin.username, admin.password)
    goto(page, portal.url, "/admin")
    heading(page, "Admin")

    # Tabs and expanders open in the browser alone: no script run to wait for.
    page.get_by_role("tab", name="Teams").click()
    team_form = page.get_by_test_id("stExpander").filter(has_text="Create a team")
    team_form.get_by_text("Create a team").click()
    team_form.get_by_label("Name", exact=True).fill(team)
    team_form.get_by_label("Cost center", exact=True).fill(cost_center)
    team_form.get_by_label("Monthly budget (USD)", exact=True).fill(budget)
    shot(page, "admin-team-form")
    click(team_form.get_by_role("button", name="Create team"))
    expect(page.get_by_text(f"Created team {team}.")).to_be_visible()
    page.get_by_role("tab", name="Teams").click()
    expect(page.get_by_text("No teams yet.")).to_have_count(0)
    expect(page.get_by_text("Select a team to change")).to_be_visible()
    shot(page, "admin-team-created")

    page.get_by_role("tab", name="Users").click()
    user_form = page.get_by_test_id("stExpander").filter(has_text="Create a user")
    user_form.get_by_text("Create a user").click()
    user_form.get_by_label("Username", exact=True).fill(new_user.username)
    user_form.get_by_label("Full name", exact=True).fill(new_user.display_name)
    user_form.get_by_label("Email (optional)", exact=True).fill("new.hire@example.com")
    choose(page, user_form.get_by_test_id("stSelectbox"), team)
    choose(page, user_form.get_by_test_id("stMultiSelect"), "Approver")
    user_form.get_by_label("Initial password", exact=True).fill(new_user.password)
    user_form.get_by_label("Repeat the password", exact=True).fill(new_user.password)
    shot(page, "admin-user-form")
    click(user_form.get_by_role("button", name="Create user"))
    expect(page.get_by_text(f"Created user {new_user.username}.")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"user={re.escape(new_user.username)}"))
    details = main_area(page).get_by_role(
        "heading", name=f"{new_user.display_name} ({new_user.username})"
    )
    expect(details).to_be_visible()  # the new user is selected and their details are open
    shot(page, "admin-user-created")

    # The new user is in the table with their team: find them and open their details.
    _search_users(page, new_user.username)
    _select_first_row(page, "users-table")
    expect(details).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Status: Active"))).to_be_visible()
    profile = page.get_by_test_id("stForm").filter(has_text="Profile, roles and team")
    expect(profile.get_by_role("combobox", name="Team")).to_have_value(team)
    expect(profile).to_contain_text("Approver")
    shot(page, "admin-user-details")

    page.get_by_role("tab", name="Audit log").click()
    click(page.get_by_role("button", name="Verify chain"))
    expect(page.get_by_text("Audit chain verified")).to_be_visible()
    expect(page.get_by_text("Audit chain BROKEN")).to_have_count(0)
    shot(page, "admin-audit-verified")

    # A link to the user (the page keeps ?user= in its URL) opens their details directly.
    goto(page, portal.url, f"/admin?user={new_user.username}")
    expect(details).to_be_visible()

    # The new user logs in with the initial password and gets both roles' pages and the team.
    login(second_page, portal.url, new_user.username, new_user.password)
    assert menu(second_page) == MODEL_MENU
    expect(
        second_page.get_by_test_id("stSidebar").get_by_text(f"Data scientist, Approver · {team}")
    ).to_be_visible()
    shot(second_page, "admin-new-user-logged-in")


def _stays_visible(target: Locator, seconds: float = 2) -> bool:
    """Whether ``target`` is still on screen ``seconds`` later (returns early once it is gone)."""
    try:
        expect(target).to_be_hidden(timeout=seconds * 1000)
    except AssertionError:
        return True
    return False


def _search_users(page: Page, text: str) -> None:
    search = page.get_by_placeholder("Username, name or email")
    search.fill(text)
    search.press("Enter")
    settle(page)


def _select_first_row(page: Page, table_key: str) -> None:
    """Tick the first row of a selectable ``st.dataframe`` whose key starts with ``table_key``.
    The grid is drawn on a canvas, so this clicks where the first row's tick box is (below the
    35 px header row)."""
    grid = page.locator(f"[class*='st-key-{table_key}'] [data-testid='stDataFrame']")
    expect(grid).to_be_visible()
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    grid.hover()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    settle(page)
