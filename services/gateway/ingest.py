"""Ingesting gateway logs: read, parse, price, and store in batches, idempotently.

Each batch is one transaction holding its new events, the rollups they add to and the file's
progress in the ledger (``IngestedFile``). A run stopped half-way (a crash, a kill) leaves
whole batches behind; running it again re-reads the file, the unique (source, request id)
skips what is stored, and the rest completes, counted once. Bad records are listed with
file, line and reason, and never stop the rest of the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import update
from sqlmodel import select

from models.types import utcnow
from models.usage import IngestedFile, PriceOverride, UsageSource
from services import audit
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.gateway import storage
from services.gateway.admin import team_resolver
from services.gateway.pricing import PriceBook
from services.gateway.records import RecordError, Row, parse_bedrock, parse_litellm
from services.gateway.sources import SourceFile, TruncatedFile, list_files, read_lines
from services.permissions import Permission

log = logging.getLogger(__name__)

BATCH_SIZE = 5_000
MAX_LISTED_REJECTIONS = 1_000


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


@dataclass
class _FileRun:
    ledger_id: int
    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0


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
    parse: Callable[[Any], Row]
    if source is UsageSource.LITELLM:
        parse = lambda record: parse_litellm(record, zone)  # noqa: E731
    else:
        parse = lambda record: parse_bedrock(record, zone, resolve)  # noqa: E731
    result = IngestResult()
    for source_file in list_files(location, settings):
        result.files += 1
        _ingest_file(db, source, source_file, parse, book, result, batch_size)
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
    source: UsageSource,
    source_file: SourceFile,
    parse: Callable[[Any], Row],
    book: PriceBook,
    result: IngestResult,
    batch_size: int,
) -> None:
    run = _FileRun(_open_ledger(db, source, source_file))
    uri, batch, line_no = source_file.uri, [], 0

    def reject(line: int, reason: str) -> None:
        run.rejected += 1
        result.reject(uri, line, reason)

    try:
        with source_file.open() as stream:
            for line_no, line in read_lines(stream):
                try:
                    document = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    reject(line_no, f"not valid JSON ({exc})")
                    continue
                for record in document if isinstance(document, list) else (document,):
                    try:
                        row = parse(record)
                    except RecordError as exc:
                        reject(line_no, str(exc))
                        continue
                    book.price_row(row)
                    batch.append(row)
                if len(batch) >= batch_size:
                    commit_batch(db, run, batch, line_no, result, finished=False)
                    batch = []
    except TruncatedFile as exc:
        reject(exc.lines_read + 1, str(exc))
    commit_batch(db, run, batch, line_no, result, finished=True)


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
    batch: list[Row],
    line_no: int,
    result: IngestResult,
    *,
    finished: bool,
) -> None:
    """Store one batch: new events, their rollups and the file's progress, in one transaction."""
    unique: dict[str, Row] = {}
    for row in batch:
        unique.setdefault(row["request_id"], row)
    for attempt in range(1, 4):
        try:
            new = _store(db, run, list(unique.values()), len(batch), line_no, finished)
            break
        except storage.ConcurrentIngest:
            if attempt == 3:
                raise
            log.info("another ingest stored part of a batch at the same time; trying again")
    run.ingested += len(new)
    run.duplicates += len(batch) - len(new)
    result.ingested += len(new)
    result.duplicates += len(batch) - len(new)


def _store(
    db: Database, run: _FileRun, rows: list[Row], read: int, line_no: int, finished: bool
) -> list[Row]:
    with db.transaction() as session:
        new = storage.insert_new_events(session, rows)
        storage.add_to_rollups(session, storage.aggregate(new))
        session.execute(
            update(IngestedFile)
            .where(IngestedFile.id == run.ledger_id)  # type: ignore[arg-type]
            .values(
                lines_committed=line_no,
                ingested=run.ingested + len(new),
                duplicates=run.duplicates + read - len(new),
                rejected=run.rejected,
                finished_at=utcnow() if finished else None,
            )
        )
    return new
