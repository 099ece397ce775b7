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
from decimal import Decimal
from typing import IO, Any

import orjson

from services.gateway.binding import Binder
from services.gateway.decoding import Decoders, JSONDecodeError
from services.gateway.pricing import PriceBook
from services.gateway.records import RecordError, Values
from services.gateway.rollups import increments
from services.gateway.sources import BLOCK_TAIL, TruncatedFile, read_block
from services.gateway.storage import tag_key

_ZERO = Decimal(0)


@dataclass
class PreparedBatch:
    """One transaction's worth of a file, as plain data (it crosses a process boundary)."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    """Driver-ready ``usage_event`` rows, one per record (request id and time), in file order."""
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
    lines: int = 0
    """Lines in the block of the file it was read from (``prepare_blocks`` only, where
    ``line_no`` and the rejections' lines count from the block's start)."""


class Collector:
    """Parsed, priced rows and rejections of the lines added since the last ``take``:
    ``decoders`` decode a line, ``parse`` makes a record a row (or raises ``RecordError``),
    ``book`` prices it, ``binder`` converts the batch for the driver."""

    def __init__(
        self,
        decoders: Decoders,
        parse: Callable[[Any], Values],
        book: PriceBook,
        binder: Binder,
    ) -> None:
        self.decoders, self.parse, self.price, self.binder = (
            decoders,
            parse,
            book.price_values,
            binder,
        )
        self.rows: list[Values] = []
        self.rejections: list[tuple[int, str]] = []

    def add(
        self, line_no: int, line: bytes | bytearray | memoryview, *, ascii_: bool = False
    ) -> None:
        """Add the records of one line (``ascii_``: known to be ASCII; maybe a view)."""
        loads = self.decoders.loads_ascii if ascii_ else self.decoders.loads
        try:
            document = loads(line)  # type: ignore[arg-type]
            if document.__class__ is dict and loads is not orjson.loads:
                try:
                    values = self.parse(document)
                except RecordError:  # judged, and worded, on the whole document instead
                    document = orjson.loads(line)
                else:
                    self.price(values)
                    self.rows.append(values)
                    return
        except JSONDecodeError as exc:
            if bytes(line).isspace():  # a blank line in a block (``prepare_blocks``)
                return
            self.rejections.append((line_no, f"not valid JSON ({exc})"))
            return
        if document == []:
            self.rejections.append((line_no, "an empty JSON array: no record in it"))
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
    lines: Iterable[tuple[int, bytes]], collector: Collector, batch_size: int
) -> Iterator[PreparedBatch]:
    """Batches of at least ``batch_size`` parsed records (cut after a whole line), and a last
    one, possibly empty, that also carries a truncated gzip stream as a rejection."""
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
    collector: Collector,
    chunk_lines: int,
    worker: int,
    workers: int,
) -> Iterator[PreparedBatch]:
    """For one of ``workers`` processes reading the same file: a batch for each of its chunks
    (lines ``chunk_lines * c + 1`` to ``chunk_lines * (c + 1)`` where ``c % workers == worker``;
    empty if no record in it), then one with ``last`` set (no events; the last line number and a
    truncated gzip stream). The others' lines are skipped unparsed; in chunk order the workers'
    batches are the file's."""
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


def prepare_blocks(
    stream: IO[bytes],
    collector: Collector,
    block_bytes: int,
    blocks: int,
    worker: int,
    workers: int,
) -> Iterator[PreparedBatch]:
    """For one of ``workers`` processes reading the same uncompressed file of ``blocks``
    blocks (``sources.read_block``): a batch for each block ``b`` where ``b % workers ==
    worker``, the last block's with ``last`` set. Only its own blocks are read. A batch's line
    numbers count from its block's start and ``lines`` says how many the block holds, so that
    in block order the batches are the file's once renumbered (``ingest``)."""
    buffer = bytearray(block_bytes + BLOCK_TAIL)
    for index in range(worker, blocks, workers):
        last = index == blocks - 1
        data, end = read_block(stream, index, block_bytes, last=last, buffer=buffer)
        lines = _add_lines(collector, data, end)
        batch = collector.take(lines, last=last)
        batch.lines = lines
        yield batch


def _add_lines(collector: Collector, data: bytes | bytearray, end: int) -> int:
    """Add the lines of ``data[:end]`` to ``collector``; return how many there are. Lines are
    passed as views (no copy), checked as text once for the whole block when it is ASCII."""
    add, view, find = collector.add, memoryview(data), data.find
    ascii_ = data.isascii()
    line_no = position = 0
    while position < end:
        line_no += 1
        stop = find(b"\n", position, end)
        if stop < 0:
            stop = end
        if stop > position:  # the line with its newline, as ``read_lines`` gives it
            if ascii_:
                add(line_no, view[position : stop + 1], ascii_=True)
            else:
                line = data[position : stop + 1]
                if not line.isspace():
                    add(line_no, line)
        position = stop + 1
    return line_no


def seal(
    rows: Sequence[Values], line_no: int, rejections: list[tuple[int, str]], binder: Binder
) -> PreparedBatch:
    """``rows`` (priced, in ``FIELDS`` order) as a batch: unique, summed and driver-ready.
    Repeated text (teams, users, models) is shared, so a pickled batch stores it once. One
    pass over the rows: this runs for every record ingested."""
    seen: set[tuple[str, Any]] = set()
    remember = seen.add
    strings: dict[str, str] = {}
    share = strings.setdefault
    index: dict[tuple[Any, ...], int] = {}
    totals: list[list[Any]] = []
    tag_values: dict[tuple[str, ...], tuple[str, Any]] = {}
    day, event = binder.day, binder.event
    events: list[tuple[Any, ...]] = []
    keys: list[int] = []
    costs: list[str | None] = []
    for v in rows:
        record = (v[1], v[2])  # ``models.usage.EVENT_KEY`` within one source
        if record in seen:
            continue
        remember(record)
        v[4] = team = share(v[4], v[4])
        v[5] = user = share(v[5], v[5])
        v[6] = alias = share(v[6], v[6])
        v[7] = share(v[7], v[7])
        v[8] = model = share(v[8], v[8])
        v[9] = provider = share(v[9], v[9])
        tags = tuple(v[10])
        tag = tag_values.get(tags)
        if tag is None:
            tag = tag_values[tags] = (tag_key(tags), binder.tags(v[10]))
        key = (day(v[3]), team, user, alias, model, provider, tag[0])
        position = index.get(key)
        if position is None:
            position = index[key] = len(totals)
            totals.append([0, 0, 0, 0, 0, 0, 0, 0, _ZERO])
        t = totals[position]  # the counters of ``rollups.fold``, summed here in the same pass
        t[0] += 1
        if v[11] == "failure":
            t[1] += 1
        if v[13]:
            t[2] += 1
        t[3] += v[14]
        t[4] += v[15]
        t[5] += v[16]
        t[6] += v[17]
        if v[19]:
            cost = v[18]
            t[8] += cost
            costs.append(str(cost))
        else:
            t[7] += 1
            costs.append(None)
        keys.append(position)
        v[10] = tag[1]
        events.append(event(v))
    daily, team_model = increments(list(index), totals, binder)
    return PreparedBatch(
        events=events,
        costs=costs,
        keys=keys,
        daily=daily,
        team_model=team_model,
        read=len(rows),
        line_no=line_no,
        rejections=rejections,
    )
