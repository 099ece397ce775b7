"""The LiteLLM callback with the real ``litellm`` SDK, offline: ``mock_response`` requests
(sync and async, successes and failures) end up as usage events and rollups in the portal
database, once each, without the request waiting for the database."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from services.config import get_settings
from services.db import Database, upgrade_schema
from services.errors import DatabaseUnavailable
from tests.unit.gateway.support import events, litellm, rollups

if TYPE_CHECKING:
    from services.gateway.callback import PortalUsageLogger

ROOT = Path(__file__).resolve().parents[3]
KEY = {
    "user_api_key_hash": "88dc28d0f030c5",
    "user_api_key_alias": "payments-prod",
    "user_api_key_user_id": "alice",
    "user_api_key_team_id": "team-payments",
    "user_api_key_team_alias": "Payments",
    "tags": ["app:chatbot"],
}
MESSAGES = [{"role": "user", "content": "hello"}]


@dataclass(frozen=True)
class SDK:
    litellm: Any
    callback: ModuleType
    recording: type[PortalUsageLogger]


@pytest.fixture(scope="module")
def sdk() -> Iterator[SDK]:
    """litellm imported once for the module (about 4 s), with its bundled cost map."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm as sdk_module

        from services.gateway import callback
    sdk_module.suppress_debug_info = True

    class Recording(callback.PortalUsageLogger):
        """Counts hook calls, so a test can wait for LiteLLM's own logging threads."""

        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.calls, self._called = 0, threading.Condition()

        def enqueue(self, kwargs: Any) -> None:
            super().enqueue(kwargs)
            with self._called:
                self.calls += 1
                self._called.notify_all()

        def wait_for_calls(self, count: int) -> None:
            with self._called:
                assert self._called.wait_for(lambda: self.calls >= count, timeout=30), self.calls

    yield SDK(sdk_module, callback, Recording)
    sdk_module.logging_callback_manager._reset_all_callbacks()


@contextmanager
def registered(sdk: SDK, logger: Any) -> Iterator[Any]:
    """``logger`` in LiteLLM's callbacks, then out of every list LiteLLM copied it to, and
    closed (what it queued is stored)."""
    sdk.litellm.callbacks = [logger]
    try:
        yield logger
    finally:
        sdk.litellm.logging_callback_manager.remove_callback_from_all_lists(logger)
        logger.close()


@pytest.fixture
def portal_db(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The callback's settings point at the test database."""
    monkeypatch.setenv("PORTAL_DATABASE_URL", db_url)
    get_settings.cache_clear()
    return db


@pytest.fixture
def usage_logger(sdk: SDK, portal_db: Database) -> Iterator[Any]:
    """A logger registered with LiteLLM whose background thread only flushes when told."""
    with registered(sdk, sdk.recording(flush_interval=3600)) as logger:
        yield logger


def reply(sdk: SDK, prompt: int = 1200, completion: int = 300, response_id: str = "") -> Any:
    """A mock response with chosen token counts (a fresh id unless one is given)."""
    extra = {"id": response_id} if response_id else {}
    return sdk.litellm.ModelResponse(
        model="gpt-4o-mini",
        choices=[{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        usage={
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
        **extra,
    )


def test_sync_success_and_rate_limit_failure(sdk: SDK, usage_logger: Any, portal_db: Database):
    response = sdk.litellm.completion(
        model="gpt-4o-mini", messages=MESSAGES, mock_response=reply(sdk), metadata=KEY
    )
    with pytest.raises(sdk.litellm.RateLimitError):
        sdk.litellm.completion(
            model="gpt-4o-mini",
            messages=MESSAGES,
            mock_response="litellm.RateLimitError",
            metadata=KEY,
        )
    usage_logger.wait_for_calls(2)
    assert usage_logger.flush() == 2

    by_status = {event.status: event for event in events(portal_db)}
    ok, failed = by_status["success"], by_status["failure"]
    assert ok.request_id == response.id
    assert (ok.team, ok.user, ok.api_key_alias, ok.model, ok.provider, ok.tags) == (
        "Payments",
        "alice",
        "payments-prod",
        "gpt-4o-mini",
        "openai",
        ["app:chatbot"],
    )
    assert (ok.input_tokens, ok.output_tokens) == (1200, 300)
    litellm_cost = response._hidden_params["response_cost"]
    assert ok.cost == Decimal(repr(litellm_cost)).quantize(Decimal("1e-8")) > 0
    assert (failed.error, failed.input_tokens, failed.cost) == ("RateLimitError", 0, 0)
    assert (failed.team, failed.user) == ("Payments", "alice")
    (daily,) = rollups(portal_db)
    assert (daily.requests, daily.errors, daily.input_tokens, daily.output_tokens) == (
        2,
        1,
        1200,
        300,
    )
    assert daily.cost == ok.cost and daily.unpriced_requests == 0


def run_in_fresh_loop(coroutine: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright (sync API) keeps
    an event loop marked running in the main thread for the rest of the session."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coroutine())
        except BaseException as exc:  # re-raised in the test's own thread
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    if failures:
        raise failures[0]


def test_async_success_and_failure(sdk: SDK, usage_logger: Any, portal_db: Database):
    async def requests() -> None:
        await sdk.litellm.acompletion(
            model="gpt-4o-mini", messages=MESSAGES, mock_response=reply(sdk, 10, 5), metadata=KEY
        )
        with pytest.raises(sdk.litellm.InternalServerError):
            await sdk.litellm.acompletion(
                model="gpt-4o-mini", messages=MESSAGES, mock_response=Exception("boom")
            )
        # LiteLLM runs async hooks on its own worker in this loop: wait without blocking it.
        await asyncio.to_thread(usage_logger.wait_for_calls, 2)

    run_in_fresh_loop(requests)
    usage_logger.flush()

    stored = {event.status: event for event in events(portal_db)}
    assert (stored["success"].input_tokens, stored["success"].output_tokens) == (10, 5)
    assert stored["success"].team == "Payments"
    assert stored["failure"].error and stored["failure"].team == ""
    assert sum(r.requests for r in rollups(portal_db)) == 2


def test_the_same_record_logged_twice_counts_once(sdk: SDK, usage_logger: Any, portal_db: Database):
    record = {"standard_logging_object": litellm("chatcmpl-retried", time.time())}
    for _ in range(2):  # twice in one batch
        usage_logger.log_success_event(kwargs=record, response_obj=None, start_time=0, end_time=0)
    usage_logger.wait_for_calls(2)
    assert usage_logger.flush() == 1
    usage_logger.log_success_event(kwargs=record, response_obj=None, start_time=0, end_time=0)
    assert usage_logger.flush() == 0  # and again in a later batch

    assert [e.request_id for e in events(portal_db)] == ["chatcmpl-retried"]
    assert sum(r.requests for r in rollups(portal_db)) == 1
    assert (usage_logger.stored, usage_logger.duplicates) == (1, 2)


def test_two_requests_answered_with_the_same_response_id_both_count(
    sdk: SDK, usage_logger: Any, portal_db: Database
):
    same = reply(sdk, response_id="chatcmpl-fixed")  # some compatible servers reuse an id
    for _ in range(2):
        sdk.litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=same)
    usage_logger.wait_for_calls(2)
    assert usage_logger.flush() == 2

    assert [e.request_id for e in events(portal_db)] == ["chatcmpl-fixed"] * 2
    assert sum(r.requests for r in rollups(portal_db)) == 2


def test_requests_do_not_wait_for_a_slow_database(
    sdk: SDK, portal_db: Database, monkeypatch: pytest.MonkeyPatch
):
    writing, release = threading.Event(), threading.Event()
    store = sdk.callback.store_rows

    def slow_store(db: Database, rows: list[dict]) -> int:
        writing.set()
        release.wait(30)  # the database takes as long as the test wants
        return store(db, rows)

    monkeypatch.setattr(sdk.callback, "store_rows", slow_store)
    # The hooks run on the request's thread (a failure's sync hook before LiteLLM raises).
    with registered(sdk, sdk.recording(batch_size=1, flush_interval=0.01)) as logger:
        try:
            sdk.litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=reply(sdk))
            assert writing.wait(30)  # the background thread is stuck in the database
            started = time.perf_counter()
            for _ in range(3):
                with pytest.raises(sdk.litellm.RateLimitError):
                    sdk.litellm.completion(
                        model="gpt-4o-mini",
                        messages=MESSAGES,
                        mock_response="litellm.RateLimitError",
                    )
            logger.wait_for_calls(4)
            assert time.perf_counter() - started < 2
            assert len(events(portal_db)) == 0
        finally:
            release.set()
    assert len(events(portal_db)) == 4


def test_while_the_database_is_down_the_batch_is_kept_and_retried(
    sdk: SDK, portal_db: Database, monkeypatch: pytest.MonkeyPatch
):
    store, attempts, back = sdk.callback.store_rows, [], threading.Event()

    def down(db: Database) -> None:
        raise DatabaseUnavailable("Cannot use the portal database: connection refused")

    def down_three_times(db: Database, rows: list[dict]) -> int:
        attempts.append(len(rows))
        if len(attempts) <= 3:
            down(db)
        stored = store(db, rows)
        back.set()
        return stored

    monkeypatch.setattr(sdk.callback, "store_rows", down_three_times)
    monkeypatch.setattr(Database, "ping", down)  # the database is down, not the batch
    logger = sdk.recording(batch_size=3, flush_interval=0.01, max_backoff=0.05)
    for i in range(3):
        record = {"standard_logging_object": litellm(f"req-{i}", time.time())}
        logger.log_success_event(kwargs=record, response_obj=None, start_time=0, end_time=0)
    assert back.wait(30)  # the background thread kept trying
    logger.close()
    assert attempts == [3, 3, 3, 3]
    assert [e.request_id for e in events(portal_db)] == ["req-0", "req-1", "req-2"]


def test_a_row_the_database_refuses_does_not_hold_back_the_others(
    sdk: SDK, usage_logger: Any, portal_db: Database, monkeypatch: pytest.MonkeyPatch
):
    store = sdk.callback.store_rows

    def refuse_one(db: Database, rows: list[dict]) -> int:
        if any(row["request_id"] == "req-bad" for row in rows):
            raise DatabaseUnavailable("Cannot use the portal database: numeric field overflow")
        return store(db, rows)

    monkeypatch.setattr(sdk.callback, "store_rows", refuse_one)
    for request_id in ("req-0", "req-bad", "req-1"):
        record = {"standard_logging_object": litellm(request_id, time.time())}
        usage_logger.log_success_event(kwargs=record, response_obj=None, start_time=0, end_time=0)
    assert usage_logger.flush() == 2
    assert usage_logger.rejected == 1
    assert [e.request_id for e in events(portal_db)] == ["req-0", "req-1"]


def test_the_queue_is_bounded_and_counts_what_it_drops(
    sdk: SDK, portal_db: Database, caplog: pytest.LogCaptureFixture
):
    logger = sdk.recording(max_queued=3, flush_interval=3600)
    with caplog.at_level(logging.WARNING, logger=sdk.callback.__name__):
        for i in range(5):
            record = {"standard_logging_object": litellm(f"req-{i}", time.time())}
            logger.log_success_event(kwargs=record, response_obj=None, start_time=0, end_time=0)
        logger.log_success_event(kwargs={}, response_obj=None, start_time=0, end_time=0)
    assert (logger.dropped, logger.rejected) == (2, 1)
    assert "queue is full" in caplog.text and "not a JSON object" in caplog.text
    logger.close()
    assert [e.request_id for e in events(portal_db)] == ["req-0", "req-1", "req-2"]


SHUTDOWN_SCRIPT = """
import litellm
from services.gateway.callback import portal_usage_logger
assert portal_usage_logger._thread is None and portal_usage_logger._db is None
portal_usage_logger.flush_interval = 3600  # only the exit stores anything
litellm.suppress_debug_info = True
litellm.callbacks = [portal_usage_logger]
reply = litellm.ModelResponse(usage={"prompt_tokens": 7, "completion_tokens": 3})
litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                   mock_response=reply)
try:
    litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                       mock_response="litellm.RateLimitError")
except litellm.RateLimitError:
    pass
"""


def test_a_clean_shutdown_stores_what_is_queued(tmp_path: Path):
    """The instance a proxy config names, in its own process that exits without flushing
    (on SQLite only: a new process imports litellm again, and the database plays no part)."""
    db_url = f"sqlite:///{tmp_path / 'portal.db'}"
    portal_db = Database(db_url)
    upgrade_schema(portal_db)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "PORTAL_DATABASE_URL": db_url,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    done = subprocess.run(
        [sys.executable, "-c", SHUTDOWN_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stored = events(portal_db)
    assert sorted(e.status for e in stored) == ["failure", "success"]
    assert sum(e.input_tokens for e in stored) == 7
    portal_db.dispose()
