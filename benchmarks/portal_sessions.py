"""Browser-less portal sessions: a websocket client that speaks Streamlit's protocol
(protobuf ``BackMsg``/``ForwardMsg`` over ``/_stcore/stream``) to a real ``streamlit run``,
logged in by the portal's own signed cookie, and that times each script run the way a browser
waits for it: from the rerun request to the server's ``script_finished``.

What a browser does beyond this is not done: no widget values are sent back (each rerun asks
for the page by its URL path and query string, as a reload or a shared link does), and custom
components (the cookie manager) never answer, so they trigger no extra rerun."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

RUN_TIMEOUT_S = 120.0


def login_cookie(username: str, cookie_key: str, *, days: float = 1.0) -> str:
    """The re-authentication cookie streamlit-authenticator would have set after a login:
    an HS256 JWT of the username and expiry, signed with the portal's cookie key."""
    expires = (datetime.now() + timedelta(days=days)).timestamp()
    return jwt.encode({"username": username, "exp_date": expires}, cookie_key, algorithm="HS256")


@dataclass
class RunResult:
    """One script run as the client saw it."""

    seconds: float
    problems: list[str] = field(default_factory=list)
    reruns: int = 0  # runs the page itself restarted (st.rerun) before finishing
    # The script's own time in the server's thread, from its page profile: sent only when the
    # server gathers usage stats (STREAMLIT_BROWSER_GATHER_USAGE_STATS=true; the portal's
    # config turns it off), so None otherwise.
    server_seconds: float | None = None


class PortalSession:
    """One websocket session of one signed-in user."""

    def __init__(self, base_url: str, cookie_name: str, cookie: str) -> None:
        self.url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.headers = {"Cookie": f"{cookie_name}={cookie}"}
        self.ws: ClientConnection | None = None

    async def open(self) -> None:
        self.ws = await connect(
            self.url,
            subprotocols=[Subprotocol("streamlit")],
            additional_headers=self.headers,
            max_size=None,
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def run_page(self, page: str, query: str = "") -> RunResult:
        """Ask for ``page`` (its URL path, "" for Home) with ``query`` and wait for the run to
        end. Problems: a traceback or error box on the page, a page that is not the one asked
        for (e.g. the login page), a page not found, a compile error, a timeout, a lost
        connection."""
        assert self.ws is not None, "open() first"
        request = BackMsg()
        request.rerun_script.page_name = page
        request.rerun_script.query_string = query
        started = time.perf_counter()
        result = RunResult(0.0)
        try:
            await self.ws.send(request.SerializeToString())
            await self._receive_run(page, result, started)
        except TimeoutError:
            result.problems.append(f"no script_finished within {RUN_TIMEOUT_S:.0f} s")
        except Exception as error:  # a lost connection is a finding, not a crash
            result.problems.append(f"connection: {type(error).__name__}: {error}")
        result.seconds = time.perf_counter() - started
        return result

    async def _receive_run(self, page: str, result: RunResult, started: float) -> None:
        assert self.ws is not None
        navigated = False
        while True:
            left = RUN_TIMEOUT_S - (time.perf_counter() - started)
            if left <= 0:
                raise TimeoutError
            async with asyncio.timeout(left):
                raw = await self.ws.recv()
            message = ForwardMsg()
            message.ParseFromString(raw if isinstance(raw, bytes) else raw.encode())
            kind = message.WhichOneof("type")
            if kind == "delta":
                _check_delta(message, result)
            elif kind == "navigation":
                navigated = _check_navigation(message, page, result)
            elif kind == "page_profile":
                seconds = message.page_profile.exec_time / 1e6
                result.server_seconds = (result.server_seconds or 0.0) + seconds
            elif kind == "page_not_found":
                result.problems.append(f"page not found: {message.page_not_found.page_name!r}")
            elif kind == "script_finished":
                status = message.script_finished
                if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    result.reruns += 1
                    continue
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    result.problems.append("script finished with a compile error")
                if not navigated:
                    result.problems.append("the run never showed the navigation")
                return


def _check_delta(message: ForwardMsg, result: RunResult) -> None:
    if message.delta.WhichOneof("type") != "new_element":
        return
    element = message.delta.new_element
    kind = element.WhichOneof("type")
    if kind == "exception":
        result.problems.append(f"exception: {element.exception.message[:160]}")
    elif kind == "alert" and element.alert.format == element.alert.ERROR:
        result.problems.append(f"error box: {element.alert.body[:160]}")


def _check_navigation(message: ForwardMsg, page: str, result: RunResult) -> bool:
    """Whether this run shows ``page`` from the signed-in menu (not a login or refusal)."""
    navigation = message.navigation
    shown = [p for p in navigation.app_pages if p.page_script_hash == navigation.page_script_hash]
    if not shown or shown[0].url_pathname != page or shown[0].is_hidden:
        where = shown[0].url_pathname if shown else "?"
        hidden = " (hidden: a login or refusal page)" if shown and shown[0].is_hidden else ""
        result.problems.append(f"asked for {page!r}, shown {where!r}{hidden}")
        return True
    if navigation.position == navigation.HIDDEN:
        result.problems.append(f"{page!r} shown without the menu (not signed in)")
    return True
