"""A LiteLLM proxy callback that writes every request's usage to the portal database.

Load it from the proxy's ``config.yaml``, with the portal's repository on ``PYTHONPATH`` and
the portal's ``PORTAL_DATABASE_URL`` (and ``PORTAL_REPORT_TZ``) in the proxy's environment::

    litellm_settings:
      callbacks: services.gateway.callback.portal_usage_logger

The hooks never touch the database: each parses ``kwargs["standard_logging_object"]`` into a
usage row (the same ``parse_litellm`` as ``usage ingest``) and puts it on a bounded queue. A
background thread prices and stores the rows in batches (every ``batch_size`` rows or
``flush_interval`` seconds), new request ids only, with their rollups, in one transaction:
a callback LiteLLM retries, or a request later ingested again from the ``s3`` logger's files,
counts once. When the database is down, the batch in hand is kept and retried with
exponential backoff while the queue fills; once the queue is full, new rows are refused and
counted in ``dropped`` with a warning (refusing the newest keeps the request path a plain
non-blocking ``put``). What was dropped can be recovered by ingesting the ``s3`` logger's
files. A clean shutdown (``atexit``, or ``close()``) stores what is queued.

Nothing happens at import: settings, database and thread are set up on the first request
(and again in a process forked after that, as the proxy's workers are). The feed records no
audit event per batch, as the file ingest does per run; it acts with the command line's
``ingest_usage`` permission.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any
from zoneinfo import ZoneInfo

from litellm.integrations.custom_logger import CustomLogger
from sqlmodel import select

from models.usage import PriceOverride
from services.access import Actor, require
from services.config import get_settings
from services.db import Database
from services.errors import DatabaseUnavailable
from services.gateway.batches import seal
from services.gateway.bulk import store_batch
from services.gateway.pricing import PriceBook
from services.gateway.records import FIELDS, RecordError, Row, parse_litellm
from services.gateway.storage import ConcurrentIngest
from services.gateway.writer import binder_for
from services.permissions import Permission

log = logging.getLogger(__name__)

PRICE_REFRESH_SECONDS = 60.0  # admins' price overrides are re-read at most this often


def store_rows(db: Database, rows: list[Row]) -> int:
    """Store priced LiteLLM usage rows not stored yet (by request id and time), and add them
    to the rollups, in one transaction, through the same batch path as a file ingest (a
    repeated record counts once); returns how many were new."""
    binder = binder_for(db)
    batch = seal([[row[name] for name in FIELDS] for row in rows], 0, [], binder)
    for attempt in range(1, 4):
        try:
            with db.transaction() as session:
                return store_batch(session.connection(), batch, binder)
        except ConcurrentIngest:
            if attempt == 3:
                raise
            log.info("another ingest stored part of a batch at the same time; trying again")
    raise AssertionError("unreachable")


def _answers(db: Database) -> bool:
    try:
        db.ping()
    except DatabaseUnavailable:
        return False
    return True


class PortalUsageLogger(CustomLogger):
    """Queues each logged request and stores them in batches from a background thread."""

    def __init__(
        self,
        *,
        max_queued: int = 100_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__()
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.max_backoff = max_backoff
        self.dropped = self.rejected = self.stored = self.duplicates = 0
        self._queue: queue.Queue[Row] = queue.Queue(maxsize=max_queued)
        self._pending: list[Row] = []  # taken from the queue, not stored yet (kept on failure)
        self._write_lock = threading.Lock()
        self._start_lock, self._count_lock = threading.Lock(), threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake, self._stop = threading.Event(), threading.Event()
        self._pid: int | None = None
        self._zone: ZoneInfo | None = None
        self._db: Database | None = None
        self._prices: tuple[float, PriceBook] | None = None

    # LiteLLM calls these by keyword: the parameter names are its own.
    def log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.enqueue(kwargs)

    def log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.enqueue(kwargs)

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.enqueue(kwargs)

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.enqueue(kwargs)

    def enqueue(self, kwargs: Mapping[str, Any]) -> None:
        """Queue the request's usage without waiting; never raises into the proxy."""
        try:
            self._ensure_started()
            assert self._zone is not None
            row = parse_litellm(kwargs.get("standard_logging_object"), self._zone)
        except Exception as exc:  # a logging callback must never fail the request
            with self._count_lock:
                self.rejected += 1
            log.warning(
                "LiteLLM usage record not stored: %s",
                exc,
                exc_info=not isinstance(exc, RecordError),
            )
            return
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            with self._count_lock:
                self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning(
                    "portal usage queue is full (%d rows; the database is slow or down): "
                    "%d records dropped so far, recover them with `usage ingest`",
                    self._queue.maxsize,
                    self.dropped,
                )
            return
        if self._queue.qsize() >= self.batch_size:
            self._wake.set()

    def flush(self) -> int:
        """Store everything queued now, in the calling thread; returns how many rows were new.
        Raises the database's error if it cannot (the rows stay queued for the next try)."""
        with self._write_lock:
            new = 0
            while True:
                if not self._pending:
                    self._pending = self._take(self.batch_size)
                    if not self._pending:
                        return new
                added = self._store_pending()
                self.stored += added
                self.duplicates += len(self._pending) - added
                new += added
                self._pending = []

    def close(self, timeout: float = 10.0) -> None:
        """Stop the background thread and store what is queued, retrying for up to
        ``timeout`` seconds if the database is unavailable."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._pid = None  # a later event starts a new thread
        atexit.unregister(self.close)
        deadline, delay = time.monotonic() + timeout, 0.2
        while True:
            try:
                self.flush()
                return
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    lost = len(self._pending) + self._queue.qsize()
                    log.error("portal usage: %d records not stored at shutdown: %s", lost, exc)
                    return
                time.sleep(delay)
                delay *= 2

    def _ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._zone = get_settings().zone
            self._db = None  # an engine must not cross a fork
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="portal-usage", daemon=True)
            self._thread.start()
            atexit.unregister(self.close)  # once, even in a forked worker that inherited it
            atexit.register(self.close)
            self._pid = os.getpid()

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            if delay:  # backing off: a full batch waiting must not cut the wait short
                self._stop.wait(delay)
            else:
                self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
                delay = 0.0
            except Exception as exc:
                delay = min(max(delay * 2, 0.5), self.max_backoff)
                log.warning("portal usage: cannot store a batch, retrying in %.1fs: %s", delay, exc)

    def _take(self, limit: int) -> list[Row]:
        rows: list[Row] = []
        with suppress(queue.Empty):
            while len(rows) < limit:
                rows.append(self._queue.get_nowait())
        return rows

    def _store_pending(self) -> int:
        try:
            return self._write(self._pending)
        except DatabaseUnavailable:
            if self._db is None or not _answers(self._db):
                raise
        # The database is up and refused the batch (say a NUL in a tag on PostgreSQL): store
        # the rows one by one, so one bad row cannot hold back the rest forever.
        added = 0
        for row in self._pending:
            try:
                added += self._write([row])
            except DatabaseUnavailable as exc:
                if not _answers(self._db):
                    raise
                with self._count_lock:
                    self.rejected += 1
                log.error("portal usage: request %s refused: %s", row["request_id"], exc)
        return added

    def _write(self, rows: list[Row]) -> int:
        if self._db is None:
            db = Database(get_settings().resolved_database_url)
            with db.read() as session:
                require(session, Actor.command_line(), Permission.INGEST_USAGE)
            self._db = db
        now = time.monotonic()
        if self._prices is None or now - self._prices[0] > PRICE_REFRESH_SECONDS:
            with self._db.read() as session:
                self._prices = (now, PriceBook(session.exec(select(PriceOverride)).all()))
        for row in rows:
            self._prices[1].price_row(row)
        return store_rows(self._db, rows)


portal_usage_logger = PortalUsageLogger()
"""The instance a LiteLLM proxy config names (``services.gateway.callback.portal_usage_logger``)."""
