"""A large file of JSON lines is read in blocks by forked worker processes, decoding only the
fields the portal reads: what it stores, counts and rejects (file, line and reason) must be
exactly what reading it line by line in one process, each line whole, gives."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlmodel import select

from models.usage import UsageDaily, UsageDailyTeamModel, UsageEvent, UsageSource
from services.access import Actor
from services.config import get_settings
from services.db import Database, upgrade_schema
from services.gateway import ingest as ingest_module
from services.gateway import parallel, sources
from services.gateway.decoding import Decoders, loads_litellm
from services.gateway.ingest import IngestResult, ingest
from services.gateway.records import RecordError, litellm_values
from services.gateway.sources import read_block
from tests.unit.gateway.support import litellm

NOV_2 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
LA = get_settings().zone


def _with(record: dict[str, Any], old: bytes, new: bytes) -> bytes:
    line = orjson.dumps(record)
    assert old in line
    return line.replace(old, new, 1)


def odd_lines() -> list[Any]:
    """Every kind of line the typed decoder must hand over to the whole-document path."""
    return [
        b"{not json",
        b"",
        b"  \t\r",
        litellm("r0005", NOV_2 + 5 * 600),  # a record seen before: counted once
        litellm("negative", NOV_2, prompt_tokens=-3),
        [litellm("in-list-1", NOV_2), litellm("in-list-2", NOV_2, cache_hit=True)],
        litellm("meta-text", NOV_2, metadata="not an object"),
        _with(litellm("bad-utf8", NOV_2), b'"status"', b'"skipped":"\xff","status"'),
        _with(litellm("huge-int", NOV_2), b'"prompt_tokens":1000', b'"prompt_tokens":' + b"1" * 25),
        _with(litellm("x", NOV_2), b'"id":"x"', b'"id":123456789012345678901234567890'),
        _with(litellm("y", NOV_2), b'"id":"y"', b'"id":42'),
        _with(litellm("c", NOV_2), b'"response_cost":0.01', b'"response_cost":3'),
        litellm("team-number", NOV_2, team=7, request_tags=["a", 5, None]),
        litellm(
            "usage-cache",
            NOV_2,
            metadata={"usage_object": {"prompt_tokens": 5}, "user_api_key_team_alias": "T"},
            response={"usage": {"cache_read_input_tokens": 30}},
        ),
        litellm("cached", NOV_2, response={"usage": {"cache_read_input_tokens": 30}}),
        litellm("équipe", NOV_2, team="Équipe d'été"),
        litellm("nul\x00id", NOV_2, user="a\x00b"),
        b'{"id": "two"} {"id": "documents"}',
        b'{"id": "one-document",',
        b'"startTime": 1795608208.0}',
        litellm("failed", NOV_2, status="failure", error_information={"error_class": "E"}),
        litellm("unpriced", NOV_2, model="in-house", response_cost=0.0),
        litellm("string-time", "2026-11-02T10:00:00+00:00"),
    ]


def test_a_number_beyond_a_double_in_a_field_the_portal_does_not_read_is_let_through() -> None:
    # The one difference the typed decoder makes: it skips that field unread, where orjson
    # refused the whole line (no JSON encoder writes such a number: Python's writes Infinity).
    line = _with(litellm("inf", NOV_2), b'"status"', b'"skipped":1e400,"status"')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(line)
    assert litellm_values(loads_litellm(line), LA)[1] == "inf"


def write(path: Path, records: list[Any]) -> Path:
    path.write_bytes(
        b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)
    )
    return path


def stored(db: Database) -> tuple[list[Any], ...]:
    with db.read() as session:
        found = []
        for model in (UsageEvent, UsageDaily, UsageDailyTeamModel):
            rows = session.exec(select(model)).all()
            found.append(
                sorted(
                    tuple(sorted((k, str(v)) for k, v in row.model_dump().items() if k != "id"))
                    for row in rows
                )
            )
        return tuple(found)


def run(db: Database, path: Path) -> IngestResult:
    return ingest(
        db,
        get_settings(),
        actor=Actor.command_line(),
        location=str(path),
        source=UsageSource.LITELLM,
    )


def test_blocks_in_workers_give_what_one_process_reading_whole_lines_gives(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records: list[Any] = [
        litellm(f"r{i:04}", NOV_2 + i * 600, prompt_tokens=100 + i, response_cost=0.001 * (i % 7))
        for i in range(300)
    ]
    for position, line in zip(range(7, 300, 13), odd_lines(), strict=False):
        records[position] = line
    path = write(tmp_path / "logs.jsonl", records)

    reference = Database(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade_schema(reference)
    with monkeypatch.context() as m:
        whole_lines = Decoders(orjson.loads, orjson.loads)
        m.setattr(ingest_module, "decoders_for", lambda source: whole_lines)
        expected = run(reference, path)

    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "worker_count", lambda gzipped: 2)
    monkeypatch.setattr(ingest_module, "BLOCK_BYTES", 2000)  # blocks of a few lines
    workers_started: list[int] = []
    real_in_workers = parallel.in_workers

    def in_workers(produce: Any, workers: int) -> Any:
        workers_started.append(workers)
        return real_in_workers(produce, workers)

    monkeypatch.setattr(parallel, "in_workers", in_workers)
    result = run(db, path)

    assert workers_started == [2]
    assert result.summary() == expected.summary()
    assert [r.describe() for r in result.rejections] == [r.describe() for r in expected.rejections]
    assert result.rejected >= 5 and result.duplicates == 1
    assert stored(db) == stored(reference)
    again = run(db, path)
    assert (
        again.summary() == f"ingested=0 duplicates={result.ingested + 1} rejected={result.rejected}"
    )
    reference.dispose()


def test_the_typed_decoder_reads_what_the_whole_document_says() -> None:
    for record in odd_lines():
        line = record if isinstance(record, bytes) else orjson.dumps(record)
        try:
            whole = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(whole, dict):
            continue
        try:
            expected = litellm_values(whole, LA)
        except RecordError:
            continue  # the ingest judges rejected records on the whole document
        assert litellm_values(loads_litellm(line), LA) == expected, line


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000])
@pytest.mark.parametrize("reused_buffer", [False, True])
def test_blocks_cut_at_line_ends_and_cover_the_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, reused_buffer: bool
) -> None:
    monkeypatch.setattr(sources, "BLOCK_TAIL", 3)  # lines longer than the tail too
    data = b"".join(b"x" * n + b"\n" for n in (0, 3, 100, 5, 0, 0, 250, 1)) + b"no newline"
    path = tmp_path / "lines"
    path.write_bytes(data)
    blocks = -(-len(data) // size)
    with path.open("rb") as stream:
        buffer = bytearray(size + sources.BLOCK_TAIL) if reused_buffer else None
        pieces = []
        for i in range(blocks):
            block, end = read_block(stream, i, size, last=i == blocks - 1, buffer=buffer)
            pieces.append(bytes(block[:end]))
    assert b"".join(pieces) == data
    unended = [piece for piece in pieces if piece and not piece.endswith(b"\n")]
    assert len(unended) == 1 and unended[0].endswith(b"no newline")


def test_a_finished_ingest_leaves_sqlite_as_durable_as_before(db: Database, tmp_path: Path) -> None:
    if not db.is_sqlite:
        pytest.skip("a SQLite connection setting")
    path = write(tmp_path / "logs.jsonl", [litellm(f"r{i}", NOV_2 + i) for i in range(50)])
    assert run(db, path).ingested == 50
    with db.engine.connect() as connection:
        level = connection.exec_driver_sql("PRAGMA synchronous").scalar()
        cache = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    assert (level, cache) == (2, -2_000)  # FULL, SQLite's default
