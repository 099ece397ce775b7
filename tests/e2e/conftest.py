"""A real ``streamlit run app.py`` on a free port with its own PORTAL_HOME, and a headless
Chromium driven through Playwright. Both live for the whole session; each test gets a fresh
browser context (no cookies shared between tests)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, expect, sync_playwright

from tests.conftest import require_or_skip
from tests.e2e.helpers import ARTIFACTS, COMPONENT_TRACKER, ROOT, goto
from tests.processes import free_port, stop_group, streamlit_healthy

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 60
expect.set_options(timeout=15_000)  # a Streamlit run plus the cookie component's rerun
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}

ADMIN_USERNAME = "root.admin"
ADMIN_NAME = "Root Admin"
ADMIN_PASSWORD = "first admin passphrase 42"


@dataclass
class Portal:
    """The running portal: where to reach it, its environment and its process."""

    url: str
    home: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]
    created: set[str] = field(default_factory=set)

    def check_alive(self) -> None:
        """Fail clearly, with the server's last words, when streamlit is gone."""
        if self.process.poll() is not None:
            pytest.fail(
                f"the portal's streamlit process exited (code {self.process.returncode}); "
                f"last lines of {self.log}:\n{_tail(self.log)}"
            )

    def ensure_users(self, accounts: list[Account]) -> None:
        """Create, with the command line, those of ``accounts`` that do not exist yet.

        One Python process runs ``services.cli`` once per user (with the password on its
        standard input, as ``--password-stdin`` expects): a process per user would cost ~2 s
        each."""
        missing = [a for a in accounts if a.username not in self.created]
        if not missing:
            return
        result = subprocess.run(
            [sys.executable, "-c", _ENSURE_USERS],
            cwd=ROOT,
            env=self.env,
            input=json.dumps([a.__dict__ for a in missing]),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"creating test users failed:\n{result.stdout}{result.stderr}")
        self.created.update(a.username for a in missing)


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    password: str
    display_name: str


# Runs in a subprocess against the portal's PORTAL_HOME: `users list --json`, then
# `users add NAME --name ... --role ROLE --password-stdin` for each account not listed.
_ENSURE_USERS = """
import contextlib, io, json, sys
from services.cli import main

wanted = json.load(sys.stdin)
listing = io.StringIO()
with contextlib.redirect_stdout(listing):
    if main(["users", "list", "--json"]) != 0:
        sys.exit("users list failed")
existing = {user["username"] for user in json.loads(listing.getvalue())}
for account in wanted:
    if account["username"] in existing:
        continue
    sys.stdin = io.StringIO(account["password"] + "\\n")
    argv = ["users", "add", account["username"], "--name", account["display_name"],
            "--role", account["role"], "--password-stdin"]
    if main(argv) != 0:
        sys.exit(f"users add {account['username']} failed")
"""


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _portal_env(home: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PORTAL_") or name.startswith("PORTAL_TEST_")
    }
    env["PORTAL_HOME"] = str(home)
    env["PORTAL_BCRYPT_ROUNDS"] = "4"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/e2e, emptied of the screenshots and logs of an earlier run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.log")]:
        old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        require_or_skip("browser", f"{CHROMIUM} is not installed")
    chromium = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@contextlib.contextmanager
def start_portal(
    env_overrides: Mapping[str, str] | None = None,
    *,
    browser: Browser,
    home: Path,
    log: Path,
) -> Iterator[Portal]:
    """``streamlit run app.py`` on a free port with PORTAL_HOME ``home`` (the test process's
    own ``PORTAL_*`` settings left out) plus ``env_overrides``, its output in ``log``, warmed
    up by a first visit to "/"; stopped with its whole process group on leaving."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**_portal_env(home), **(env_overrides or {})}
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole at the end
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not streamlit_healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with {process.returncode}"
                    if process.poll() is not None
                    else f"not healthy after {STARTUP_TIMEOUT_S} s"
                )
                print(f"--- streamlit {state}; last lines of {log}:\n{_tail(log)}")
                pytest.fail(f"the portal did not start: streamlit {state} (log: {log})")
            time.sleep(0.25)
        # The first page a fresh server serves must be "/": a deep link as the very first
        # request gets Streamlit's "Page not found" dialog.
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(COMPONENT_TRACKER)
        try:
            goto(context.new_page(), url, "/")
        finally:
            context.close()
        yield Portal(url=url, home=home, env=env, log=log, process=process)
    finally:
        stop_group(process)


@pytest.fixture(scope="session")
def portal(
    browser: Browser, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    """``streamlit run app.py`` with a fresh PORTAL_HOME, warmed up by a first visit to "/"."""
    home = tmp_path_factory.mktemp("e2e") / "portal-home"
    log = artifacts / "streamlit-server.log"
    with start_portal(browser=browser, home=home, log=log) as running:
        yield running


ADMIN = Account(ADMIN_USERNAME, "admin", ADMIN_PASSWORD, ADMIN_NAME)


@pytest.fixture(scope="session")
def admin(portal: Portal) -> Account:
    """The first administrator. ``test_first_run_asks_for_an_administrator`` creates it
    through the browser; when that test did not run first, the command line creates it."""
    portal.ensure_users([ADMIN])
    return ADMIN


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so fixtures can tell whether it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@contextlib.contextmanager
def browser_page(browser: Browser, request: pytest.FixtureRequest, name: str) -> Iterator[Page]:
    """A page in a browser context of its own (no cookies shared). When the test fails, its last
    state is saved as FAILED-<test>-<name>.png; errors thrown in the page go to
    browser-errors.log."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    context.add_init_script(COMPONENT_TRACKER)
    errors: list[str] = []
    new_page = context.new_page()
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield new_page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            test = re.sub(r"[^\w.-]+", "_", request.node.name)
            with contextlib.suppress(Exception):
                new_page.screenshot(path=ARTIFACTS / f"FAILED-{test}-{name}.png")
        context.close()
        if errors:
            with (ARTIFACTS / "browser-errors.log").open("a") as out:
                out.write("".join(f"{request.node.name}: {e}\n" for e in errors))


@pytest.fixture
def page(browser: Browser, portal: Portal, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a browser context of its own, so no login cookie leaks between tests. When
    the test fails, its last state is saved as FAILED-<test>-page.png."""
    portal.check_alive()
    with browser_page(browser, request, "page") as new_page:
        yield new_page


@pytest.fixture
def second_page(browser: Browser, portal: Portal, request: pytest.FixtureRequest) -> Iterator[Page]:
    """Another browser, for a second person (e.g. the admin) acting at the same time."""
    with browser_page(browser, request, "second_page") as new_page:
        yield new_page
