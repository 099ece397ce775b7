"""Ingesting gateway logs: read, parse, price, and store in batches, idempotently.

Each batch is one transaction holding its new events, the rollups they add to and the file's
progress in the ledger (``IngestedFile``). A run stopped half-way (a crash, a kill) leaves
whole batches behind; running it again re-reads the file, the unique (time, source, request
id) skips what is stored, and the rest completes, counted once. Bad records are listed with
file, line and reason, and never stop the rest of the file.

Batches are prepared (parsed, priced, summed: ``batches``) apart from being stored
(``bulk``); for a large local file, in forked worker processes (``parallel``), so that both
halves of the work run at once on two cores.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

from models.types import utcnow
from models.usage import IngestedFile, PriceOverride, UsageSource
from services import audit
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.errors import TransactionConflict
from services.gateway import parallel, storage, writer
from services.gateway.admin import team_resolver
from services.gateway.batches import (
    Collector,
    PreparedBatch,
    prepare_batches,
    prepare_blocks,
    prepare_chunks,
    seal,
)
from services.gateway.decoding import decoders_for
from services.gateway.pricing import PriceBook
from services.gateway.records import FIELDS, Row, Values, bedrock_values, litellm_values
from services.gateway.sources import SourceFile, in_blocks, is_gzip, list_files, read_lines
from services.permissions import Permission

log = logging.getLogger(__name__)

BLOCK_BYTES = 32 << 20
"""Bytes of a file of JSON lines a worker process prepares at a time (the unit that workers
and the storing process pass between them; several go into one transaction on SQLite)."""
CHUNK_LINES = 10_000
"""Lines a worker process prepares at a time from a gzip file (read whole by the worker)."""
BATCH_SIZE = 50_000
"""Records (at least) per transaction. A batch writes each index page it touches
once, and new events may land all over the indexes (records out of time order), so large
batches write far less; a batch is also what a crashed run redoes, about a second of work."""
MAX_LISTED_REJECTIONS = 1_000
COMMIT_ATTEMPTS = 6
"""Tries of one batch that meets another ingest (a deadlock PostgreSQL broke), with a
growing, jittered pause between them; then the ingest stops with a clear error."""


@dataclass(frozen=True)
class Rejection:
    uri: str
    line: int
    reason: str

    def describe(self) -> str:
        return f"{self.uri}:{self.line}: {self.reason}"


@dataclass
class IngestResult:
    """What one run did. ``rejections`` lists the first ``MAX_LISTED_REJECTIONS``."""

    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0
    files: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, uri: str, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_LISTED_REJECTIONS:
            self.rejections.append(Rejection(uri, line, reason))

    def summary(self) -> str:
        return f"ingested={self.ingested} duplicates={self.duplicates} rejected={self.rejected}"


_FileRun = writer.FileProgress


def ingest(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    location: str,
    source: UsageSource,
    batch_size: int = BATCH_SIZE,
) -> IngestResult:
    """Ingest every file under ``location`` (a path or ``s3://bucket/prefix``) written in
    ``source``'s log format, and record one audit event for the run."""
    with db.read() as session:
        require(session, actor, Permission.INGEST_USAGE)
        book = PriceBook(session.exec(select(PriceOverride)).all())
        resolve = team_resolver(session)
    zone = settings.zone
    parse: Callable[[Any], Values]
    if source is UsageSource.LITELLM:
        parse = lambda record: litellm_values(record, zone)  # noqa: E731
    else:
        parse = lambda record: bedrock_values(record, zone, resolve)  # noqa: E731
    result = IngestResult()
    decoders = decoders_for(source)
    for source_file in list_files(location, settings):
        result.files += 1
        ledger = _open_ledger(db, source, source_file)
        collector = Collector(decoders, parse, book, writer.binder_for(db))
        _ingest_file(db, source_file, ledger, collector, result, batch_size)
    with db.write() as session:
        audit.record(
            session,
            actor=actor.username,
            action="usage.ingest",
            entity_type="usage_source",
            entity_id=location[:200],
            summary=f"Ingested {source.value} usage from {location}: {result.summary()}",
            after={
                "files": result.files,
                "ingested": result.ingested,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
            },
        )
    log.info("ingested %s from %s: %s", source.value, location, result.summary())
    return result


def _ingest_file(
    db: Database,
    source_file: SourceFile,
    ledger: int,
    collector: Collector,
    result: IngestResult,
    batch_size: int,
) -> None:
    run = _FileRun(ledger)
    batches, in_workers = _prepared(source_file, collector, batch_size)
    with closing(batches), parallel.paused_gc():
        if db.is_sqlite and in_workers:
            # one transaction for several of the workers' batches: see BATCH_SIZE
            reject = functools.partial(result.reject, source_file.uri)
            while True:
                before = run.ingested, run.duplicates
                last = writer.commit(db, run, batches, at_least=batch_size, reject=reject)
                result.ingested += run.ingested - before[0]
                result.duplicates += run.duplicates - before[1]
                if last.last:
                    return
        for batch in batches:
            for line, reason in batch.rejections:
                run.rejected += 1
                result.reject(source_file.uri, line, reason)
            commit_batch(db, run, batch, batch.line_no, result, finished=batch.last)


def _prepared(
    source_file: SourceFile, collector: Collector, batch_size: int
) -> tuple[Generator[PreparedBatch], bool]:
    """The file's batches in order, and whether forked workers prepare them (a large local
    file; read in blocks when it is JSON lines: see ``parallel``)."""
    workers = 0
    if source_file.local and source_file.size >= parallel.MIN_PARALLEL_BYTES:
        workers = parallel.worker_count(gzipped=is_gzip(source_file))
    if workers and in_blocks(source_file):
        blocks = max(1, -(-source_file.size // BLOCK_BYTES))

        def produce_blocks(worker: int, workers: int) -> Iterator[PreparedBatch]:
            with source_file.open() as stream:
                yield from prepare_blocks(stream, collector, BLOCK_BYTES, blocks, worker, workers)

        return _in_file_order(parallel.in_workers(produce_blocks, workers)), True
    if workers:

        def produce_chunks(worker: int, workers: int) -> Iterator[PreparedBatch]:
            with source_file.open() as stream:
                lines = read_lines(stream)
                yield from prepare_chunks(lines, collector, CHUNK_LINES, worker, workers)

        return parallel.in_workers(produce_chunks, workers), True

    def produce() -> Generator[PreparedBatch]:
        with source_file.open() as stream:
            yield from prepare_batches(read_lines(stream), collector, batch_size)

    return produce(), False


def _in_file_order(batches: Generator[PreparedBatch]) -> Generator[PreparedBatch]:
    """Workers' batches with the file's line numbers (a block's count from its start)."""
    lines = 0
    with closing(batches):
        for batch in batches:
            if batch.lines:
                base, lines = lines, lines + batch.lines
                batch.line_no = lines
                batch.rejections = [(base + line, reason) for line, reason in batch.rejections]
            yield batch


def _open_ledger(db: Database, source: UsageSource, source_file: SourceFile) -> int:
    with db.transaction() as session:
        ledger = session.exec(
            select(IngestedFile).where(
                IngestedFile.source == source.value, IngestedFile.uri == source_file.uri[:1000]
            )
        ).one_or_none()
        ledger = ledger or IngestedFile(source=source.value, uri=source_file.uri[:1000])
        ledger.fingerprint = source_file.fingerprint[:200]
        ledger.lines_committed = ledger.ingested = ledger.duplicates = ledger.rejected = 0
        ledger.started_at, ledger.finished_at = utcnow(), None
        session.add(ledger)
        session.flush()
        assert ledger.id is not None
        return ledger.id


def commit_batch(
    db: Database,
    run: _FileRun,
    batch: PreparedBatch | list[Row],
    line_no: int,
    result: IngestResult,
    *,
    finished: bool,
) -> None:
    """Store one batch: new events, their rollups and the file's progress, in one transaction.
    ``batch`` is prepared (``batches``; its rejections already counted) or priced rows
    (``records``), in file order."""
    if isinstance(batch, list):
        values = [[row[name] for name in FIELDS] for row in batch]
        batch = seal(values, line_no, [], writer.binder_for(db))
    batch = dataclasses.replace(batch, line_no=line_no, last=finished, rejections=[])
    before = run.ingested, run.duplicates
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            writer.commit(db, run, iter([batch]), at_least=0, reject=_counted)
            break
        except (storage.ConcurrentIngest, TransactionConflict) as exc:
            if attempt == COMMIT_ATTEMPTS:
                raise TransactionConflict(
                    f"Another ingest kept storing the same requests at the same time; stopped "
                    f"after {attempt} attempts at line {line_no}. Nothing of this batch was "
                    "saved, and running the ingest again completes it."
                ) from exc
            delay = random.uniform(0.05, 0.2) * 2**attempt  # noqa: S311 (jitter, not a secret)
            log.info("a batch met another ingest (%s); trying again in %.2f s", exc, delay)
            time.sleep(delay)
    result.ingested += run.ingested - before[0]
    result.duplicates += run.duplicates - before[1]


def _counted(line: int, reason: str) -> None:
    """For batches whose rejections the caller has counted already."""
