"""Driving the portal in Chromium: waiting for Streamlit, logging in, reading the menu, taking
the step screenshots. Shared by ``conftest.py`` and ``test_browser.py``."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from playwright.sync_api import BrowserContext, Cookie, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
COOKIE_NAME = "aiops_portal_session"  # Settings.cookie_name's default
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
REFUSAL = "You do not have access to this page. It needs one of these roles:"
LOCKED = "locked after too many failed logins"

_step = itertools.count(1)


# Installed in every page before Streamlit loads (``BrowserContext.add_init_script``): notes
# when a custom component (here only the login cookie manager) last talked to the app, and
# which component frames have said they are ready.
COMPONENT_TRACKER = """(() => {
  const tracker = {lastMessage: -1e9, ready: new WeakSet(), pendingSince: null};
  window.__e2eComponents = tracker;
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (!data || !data.isStreamlitMessage) return;
    tracker.lastMessage = performance.now();
    if (data.type === "streamlit:componentReady" && event.source) tracker.ready.add(event.source);
  });
})();"""

# True when no script runs, no component frame is still loading (for at most 5 s) and no
# component has sent anything for ``quietMs``: a component's value triggers another run.
_QUIET = """(quietMs) => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  const tracker = window.__e2eComponents;
  if (!tracker) return true;
  const now = performance.now();
  const loading = [...document.querySelectorAll("iframe")].some((frame) =>
    frame.src.includes("/component/") && frame.contentWindow
      && !tracker.ready.has(frame.contentWindow));
  if (!loading) tracker.pendingSince = null;
  else if (tracker.pendingSince === null) tracker.pendingSince = now;
  if (loading && now - tracker.pendingSince < 5000) return false;
  return now - tracker.lastMessage >= quietMs;
}"""


def settle(page: Page, *, timeout_ms: float = 30_000) -> None:
    """Wait until Streamlit has finished every run that a click or a navigation set off.

    One action often means several runs: on a page load the login cookie component loads
    (up to a second after the first run), reports the cookies, and that reruns the script;
    setting or deleting the cookie does the same. So: wait ~400 ms, then until the app is
    idle with the component quiet, then ~300 ms more and check that it still is."""
    page.wait_for_timeout(400)
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        remaining = max(1.0, (deadline - time.monotonic()) * 1000)
        page.wait_for_selector(IDLE, timeout=remaining)
        page.wait_for_function(_QUIET, arg=500, polling=100, timeout=remaining)
        page.wait_for_timeout(300)
        if page.evaluate(_QUIET, 500):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Streamlit did not settle within {timeout_ms / 1000:.0f} s")


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot of this step, numbered in the order the steps ran.

    Streamlit scrolls inside its main area, not the document, so Playwright's full-page mode
    alone stops at the window's edge: the window is made as tall as the content first."""
    path = ARTIFACTS / f"{next(_step):02d}-{name}.png"
    viewport = page.viewport_size
    needed = page.evaluate(
        """() => Math.max(0, ...["stMain", "stSidebarContent"].map((id) => {
            const el = document.querySelector(`[data-testid='${id}']`);
            return el ? el.scrollHeight : 0;
        }))"""
    )
    if viewport is not None and needed > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": int(needed)})
        page.wait_for_timeout(250)
        page.screenshot(path=path, full_page=True)
        page.set_viewport_size(viewport)
    else:
        page.screenshot(path=path, full_page=True)
    return path


def goto(page: Page, base_url: str, path: str = "/") -> None:
    page.goto(base_url + path)
    settle(page)


def click(target: Locator) -> None:
    target.click()
    settle(target.page)


def login_form(page: Page) -> Locator:
    return page.get_by_role("button", name="Log in", exact=True)


def logout_button(page: Page) -> Locator:
    return page.get_by_test_id("stSidebar").get_by_role("button", name="Log out")


def submit_login(page: Page, username: str, password: str) -> None:
    """Fill the login form on the current page and press "Log in"."""
    expect(login_form(page)).to_be_visible()
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    click(login_form(page))


def login(page: Page, base_url: str, username: str, password: str) -> None:
    """Log in from the front page and wait for the menu."""
    goto(page, base_url, "/")
    submit_login(page, username, password)
    expect(logout_button(page)).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_contain_text(username)


def logout(page: Page) -> None:
    """Log out and wait until the login cookie is gone: a component in the page deletes it a
    moment after the run, and a page opened before that logs the same user straight back in."""
    click(logout_button(page))
    expect(login_form(page)).to_be_visible()
    wait_for_cookie(page.context, present=False)


def menu(page: Page) -> list[str]:
    """The titles of the menu entries in the sidebar, top to bottom."""
    links = page.get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink")
    expect(links.first).to_be_visible()
    return [link.get_by_test_id("stMarkdownContainer").inner_text().strip() for link in links.all()]


def open_menu_entry(page: Page, title: str) -> None:
    links = page.get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink")
    click(links.filter(has=page.get_by_text(title, exact=True)))


def login_cookie(context: BrowserContext) -> Cookie | None:
    """The login cookie as the browser keeps it (name, value, flags, expiry)."""
    for cookie in context.cookies():
        if cookie.get("name") == COOKIE_NAME:
            return cookie
    return None


def session_cookie(context: BrowserContext) -> str | None:
    cookie = login_cookie(context)
    return None if cookie is None else cookie.get("value")


def wait_for_cookie(
    context: BrowserContext, *, present: bool, replacing: str | None = None, timeout_s: float = 10
) -> None:
    """The cookie is written and deleted by a component in the page, a moment after the run.
    With ``replacing``, wait for a cookie whose value is a new one."""
    deadline = time.monotonic() + timeout_s

    def waiting() -> bool:
        value = session_cookie(context)
        if not present:
            return value is not None
        return value is None or value == replacing

    while waiting():
        if time.monotonic() > deadline:
            state = ("replaced" if replacing else "set") if present else "deleted"
            raise AssertionError(f"the {COOKIE_NAME} cookie was not {state} within {timeout_s} s")
        time.sleep(0.1)


def main_area(page: Page) -> Locator:
    return page.get_by_test_id("stMain")


def choose(page: Page, widget: Locator, option: str) -> None:
    """Pick ``option`` in a Streamlit selectbox or multiselect (a BaseWeb combobox). A list
    opened while the page redraws can close again at once, so open it up to three times."""
    choice = page.get_by_role("option", name=option, exact=True)
    for attempt in range(3):
        widget.get_by_role("combobox").click()
        try:
            choice.click(timeout=3_000)
            break
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
            if attempt == 2:
                raise
    page.keyboard.press("Escape")


def upload_dataset(page: Page, base_url: str, name: str, file: Path) -> None:
    """From the Registry's datasets, name a dataset, upload ``file`` and press "Check and
    register"; the caller checks what the page then says."""
    goto(page, base_url, "/registry?view=datasets")
    click(page.get_by_test_id("stExpander").get_by_text("Register a dataset version"))
    page.get_by_label("Dataset name").fill(name)
    page.locator("input[type=file]").set_input_files(str(file))
    expect(main_area(page).get_by_text(file.name)).to_be_visible()
    settle(page)
    click(page.get_by_role("button", name="Check and register"))
