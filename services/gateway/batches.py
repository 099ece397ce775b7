"""Lines of a log file turned into batches ready to store: parsed, priced, with duplicate
request ids dropped (the first wins), summed into rollup increments, and converted to what the
database driver binds. This is the CPU-heavy half of an ingest; it runs in the ingesting
process or in a worker process (``parallel``) while the other stores the previous batch.

A batch's increments assume every event in it is new; ``rollups.regroup`` sums them again
over the events that were (a re-run after a crash stores a batch's events in part).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.gateway.binding import Binder
from services.gateway.pricing import PriceBook
from services.gateway.records import RecordError, Values
from services.gateway.rollups import fold, increments
from services.gateway.sources import TruncatedFile
from services.gateway.storage import tag_key


@dataclass
class PreparedBatch:
    """One transaction's worth of a file, as plain data (it crosses a process boundary)."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    """Driver-ready ``usage_event`` rows, one per request id, in file order."""
    costs: list[str | None] = field(default_factory=list)
    """Each event's exact cost (``None`` when unpriced), for ``regroup``."""
    keys: list[int] = field(default_factory=list)
    """Each event's index in ``daily``."""
    daily: list[tuple[Any, ...]] = field(default_factory=list)
    team_model: list[tuple[Any, ...]] = field(default_factory=list)
    read: int = 0
    """Records parsed, request ids repeated within the batch included."""
    line_no: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)
    last: bool = False


class _Collector:
    """Parsed, priced rows and rejections of the lines added since the last ``take``."""

    def __init__(self, parse: Callable[[Any], Values], book: PriceBook, binder: Binder) -> None:
        self.parse, self.price, self.binder = parse, book.price_values, binder
        self.rows: list[Values] = []
        self.rejections: list[tuple[int, str]] = []

    def add(self, line_no: int, line: bytes) -> None:
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            self.rejections.append((line_no, f"not valid JSON ({exc})"))
            return
        for record in document if document.__class__ is list else (document,):
            try:
                values = self.parse(record)
            except RecordError as exc:
                self.rejections.append((line_no, str(exc)))
                continue
            self.price(values)
            self.rows.append(values)

    def take(self, line_no: int, *, last: bool = False) -> PreparedBatch:
        batch = seal(self.rows, line_no, self.rejections, self.binder)
        batch.last = last
        self.rows, self.rejections = [], []
        return batch


def prepare_batches(
    lines: Iterable[tuple[int, bytes]],
    parse: Callable[[Any], Values],
    book: PriceBook,
    binder: Binder,
    batch_size: int,
) -> Iterator[PreparedBatch]:
    """Batches of at least ``batch_size`` parsed records (cut after a whole line), and a last
    one, possibly empty, that also carries a truncated gzip stream as a rejection."""
    collector = _Collector(parse, book, binder)
    rows, add, line_no = collector.rows, collector.add, 0
    try:
        for line_no, line in lines:
            add(line_no, line)
            if len(collector.rows) >= batch_size:
                yield collector.take(line_no)
    except TruncatedFile as exc:
        collector.rejections.append((exc.lines_read + 1, str(exc)))
    del rows
    yield collector.take(line_no, last=True)


def prepare_chunks(
    lines: Iterable[tuple[int, bytes]],
    parse: Callable[[Any], Values],
    book: PriceBook,
    binder: Binder,
    chunk_lines: int,
    worker: int,
    workers: int,
) -> Iterator[PreparedBatch]:
    """For one of ``workers`` processes reading the same file: a batch for each of its chunks
    (lines ``chunk_lines * c + 1`` to ``chunk_lines * (c + 1)`` where ``c % workers == worker``;
    empty if no record in it), then one with ``last`` set (no events; the last line number and a
    truncated gzip stream). The others' lines are skipped unparsed; in chunk order the workers'
    batches are the file's."""
    collector = _Collector(parse, book, binder)
    owed, line_no = worker, 0  # owed: the next chunk to hand over
    truncated: list[tuple[int, str]] = []
    try:
        for line_no, line in lines:
            chunk = (line_no - 1) // chunk_lines
            while owed < chunk:  # every line of chunk ``owed`` has been read
                yield collector.take(owed * chunk_lines + chunk_lines)
                owed += workers
            if chunk == owed:
                collector.add(line_no, line)
    except TruncatedFile as exc:
        truncated.append((exc.lines_read + 1, str(exc)))
    if line_no and (line_no - 1) // chunk_lines == owed:
        yield collector.take(line_no)
    yield PreparedBatch(line_no=line_no, rejections=truncated, last=True)


def seal(
    rows: Sequence[Values], line_no: int, rejections: list[tuple[int, str]], binder: Binder
) -> PreparedBatch:
    """``rows`` (priced, in ``FIELDS`` order) as a batch: unique, summed and driver-ready.
    Repeated text (teams, users, models) is shared, so a pickled batch stores it once."""
    seen: set[str] = set()
    strings: dict[str, str] = {}
    share = strings.setdefault
    index: dict[tuple[Any, ...], int] = {}
    tag_keys: dict[tuple[str, ...], str] = {}
    day, event = binder.day, binder.event
    unique, keys, costs = [], [], []
    for v in rows:
        if v[1] in seen:
            continue
        seen.add(v[1])
        v[4] = team = share(v[4], v[4])
        v[5] = user = share(v[5], v[5])
        v[6] = alias = share(v[6], v[6])
        v[7] = share(v[7], v[7])
        v[8] = model = share(v[8], v[8])
        v[9] = provider = share(v[9], v[9])
        tags = tuple(v[10])
        tag = tag_keys.get(tags)
        if tag is None:
            tag = tag_keys[tags] = tag_key(tags)
        key = (day(v[3]), team, user, alias, model, provider, tag)
        position = index.get(key)
        if position is None:
            position = index[key] = len(index)
        keys.append(position)
        costs.append(v[18] if v[19] else None)
        unique.append(v)
    daily, team_model = increments(list(index), fold(len(index), keys, unique, costs), binder)
    return PreparedBatch(
        events=[event(v) for v in unique],
        costs=[None if c is None else str(c) for c in costs],
        keys=keys,
        daily=daily,
        team_model=team_model,
        read=len(rows),
        line_no=line_no,
        rejections=rejections,
    )
