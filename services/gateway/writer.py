"""One ingest transaction: prepared batches stored (``bulk``) and the file's progress in the
ledger (``IngestedFile``) updated with them, so a crash leaves whole transactions behind.

On SQLite the ingesting connection gets ``SQLITE_BULK_PRAGMAS`` and ``synchronous=NORMAL``
while a file is stored; they are put back to SQLite's defaults when the file is finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, update

from models.types import utcnow
from models.usage import IngestedFile
from services.db import Database
from services.gateway import bulk, storage
from services.gateway.batches import PreparedBatch
from services.gateway.binding import Binder

SQLITE_BULK_PRAGMAS = {"cache_size": -262_144, "wal_autocheckpoint": 10_000}
"""Set on the ingesting SQLite connection while a file is stored: a page cache of up to
256 MiB (the indexes stay in memory from one transaction to the next) and a write-ahead log
checkpointed at 40 MB instead of 4 MB (pages that several transactions write are copied into
the database once)."""
SQLITE_DEFAULT_PRAGMAS = {"cache_size": -2_000, "wal_autocheckpoint": 1_000}
SQLITE_BULK_SYNCHRONOUS, SQLITE_DEFAULT_SYNCHRONOUS = 1, 2
"""``synchronous`` while a file is stored: NORMAL, where a commit does not wait for the
write-ahead log to reach the disk (only checkpoints do). The database stays consistent
whatever happens; a power cut (not a crash of the process) may undo the last transactions,
which the ledger then shows unfinished and the next run stores again. FULL (SQLite's
default) is put back once the file is finished."""


@dataclass
class FileProgress:
    """What the ledger row of the file being ingested says so far."""

    ledger_id: int
    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0


_BINDERS: dict[str, Binder] = {}


def binder_for(db: Database) -> Binder:
    """The value converter for ``db``'s dialect (one per process and dialect)."""
    dialect = db.engine.dialect
    if dialect.name not in _BINDERS:
        _BINDERS[dialect.name] = Binder(dialect, storage.EVENTS)
    return _BINDERS[dialect.name]


def commit(
    db: Database,
    run: FileProgress,
    batches: Iterator[PreparedBatch],
    *,
    at_least: int,
    reject: Callable[[int, str], None],
) -> PreparedBatch:
    """Store batches taken from ``batches`` in one transaction, up to ``at_least`` records
    read or the ``last`` batch, with the file's progress as of the last one taken; ``reject``
    hears of each batch's rejections first. Returns that last batch; ``run`` is updated once
    the transaction has committed. Raises ``storage.ConcurrentIngest`` (nothing committed)."""
    binder = binder_for(db)
    new = read = 0
    team_model = bulk.TeamModelSums()
    with db.transaction() as session:
        connection = session.connection()
        if db.is_sqlite:
            _pragmas(connection, SQLITE_BULK_PRAGMAS)
            _synchronous(connection, SQLITE_BULK_SYNCHRONOUS, begin=True)
        for batch in batches:
            for line, reason in batch.rejections:
                run.rejected += 1
                reject(line, reason)
            new += bulk.store_batch(connection, batch, binder, team_model)
            read += batch.read
            if read >= at_least or batch.last:
                break
        else:
            raise RuntimeError("the batches ended before the last one")
        team_model.store(connection)
        connection.execute(
            update(IngestedFile)
            .where(IngestedFile.id == run.ledger_id)  # type: ignore[arg-type]
            .values(
                lines_committed=batch.line_no,
                ingested=run.ingested + new,
                duplicates=run.duplicates + read - new,
                rejected=run.rejected,
                finished_at=utcnow() if batch.last else None,
            )
        )
        if db.is_sqlite and batch.last:
            _pragmas(connection, SQLITE_DEFAULT_PRAGMAS)
            _synchronous(connection, SQLITE_DEFAULT_SYNCHRONOUS, begin=False)
    run.ingested += new
    run.duplicates += read - new
    return batch


def _pragmas(connection: Connection, pragmas: dict[str, int]) -> None:
    for name, value in pragmas.items():
        connection.exec_driver_sql(f"PRAGMA {name}={int(value)}")


def _synchronous(connection: Connection, level: int, *, begin: bool) -> None:
    """Set ``synchronous``, which SQLite refuses to change inside a transaction: the one in
    progress is committed first (at the start of an ingest transaction nothing is written
    yet), then the write lock is taken again if ``begin``, for the caller's transaction."""
    raw = connection.connection.driver_connection
    assert raw is not None
    if raw.execute("PRAGMA synchronous").fetchone()[0] == level:
        return
    raw.execute("COMMIT")
    raw.execute(f"PRAGMA synchronous={int(level)}")
    if begin:
        raw.execute("BEGIN IMMEDIATE")
