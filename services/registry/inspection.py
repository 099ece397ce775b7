"""Inspect a JSONL fine-tuning dataset in one streaming pass: checksum, size, records, token
estimate, every bad line with its reason, and the PII it contains.

Nothing here loads the whole file: bytes are read in chunks, hashed, split into lines, and each
line is parsed with orjson, checked against its format and handed to the PII scanner.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import orjson

from services.registry.formats import DatasetFormat, check_record
from services.registry.pii import PiiFinding, PiiScanner

CHUNK_BYTES = 1 << 20
PROGRESS_EVERY_BYTES = 4 << 20
CHARS_PER_TOKEN = 6  # Amazon Bedrock's rule of thumb for estimating tokens
SNIFF_BYTES = 8192
PII_BATCH_CHARS = 1 << 18  # texts are scanned in batches: fewer calls, same findings

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x93NUMPY", "a NumPy array"),
    (b"\xff\xfe", "UTF-16 text; save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text; save it as UTF-8"),
)


class Readable(Protocol):
    """What ``inspect_jsonl`` needs of a stream: any binary file object will do."""

    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class LineIssue:
    line: int  # 1-based
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class DatasetReport:
    format: DatasetFormat
    sha256: str
    size_bytes: int
    record_count: int  # non-empty lines, valid or not
    valid_record_count: int
    text_chars: int  # characters in the text fields of the valid records
    token_estimate: int  # text_chars / 6, rounded up
    issues: tuple[LineIssue, ...]  # the first ``max_issues_kept``
    issue_count: int  # all of them
    pii: dict[str, PiiFinding]

    @property
    def is_valid(self) -> bool:
        return self.issue_count == 0 and self.record_count > 0

    @property
    def issues_truncated(self) -> bool:
        return self.issue_count > len(self.issues)


def sniff_binary(head: bytes) -> str | None:
    """Why the first ``SNIFF_BYTES`` of a file (or all of a shorter one) say it is not text,
    or None when they look like text.

    Besides known signatures, more than 5 % NUL bytes, control characters or invalid UTF-8
    means binary: a text file with a stray bad byte gets that line reported instead.
    """
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"not text (binary data: looks like {what})"
    if len(head) >= 64 and (
        head[1::2].count(0) > len(head) * 0.45 or head[::2].count(0) > len(head) * 0.45
    ):
        return "not text (binary data: looks like UTF-16 text; save it as UTF-8)"
    if len(head) == SNIFF_BYTES:  # the last character may be cut in two
        head = head[:-3] + head[-3:].rstrip(bytes(range(0x80, 0x100)))
    sample = head.decode("utf-8", "replace")
    odd = sum(1 for ch in sample if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r\f\b\x1b"))
    if odd >= 2 and odd * 20 > len(sample):
        return "not text (binary data)"
    return None


def _chunks(stream: Readable) -> Iterator[bytes]:
    """The stream's bytes in chunks, the first holding at least ``SNIFF_BYTES`` unless the
    stream is shorter, however short the stream's reads are."""
    head = b""
    while len(head) < SNIFF_BYTES and (part := stream.read(CHUNK_BYTES)):
        head += part
    if head:
        yield head
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


def _undecodable(line: bytes, exc: orjson.JSONDecodeError) -> str:
    """The reason for a line orjson refused, most specific first."""
    if not line.strip():
        return "empty line"
    if b"\x00" in line:
        return "contains a NUL byte (binary data)"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"invalid UTF-8 (byte 0x{line[bad.start]:02x} at position {bad.start + 1})"
    if line.startswith(b"\xef\xbb\xbf"):
        return "starts with a UTF-8 byte order mark (BOM); save the file as UTF-8 without BOM"
    return f"invalid JSON: {exc.msg} at column {exc.colno}"


def _all_strings(obj: object) -> list[str]:
    """Every string in a parsed JSON value (keys too), without recursion: orjson accepts
    nesting deeper than Python's recursion limit."""
    found: list[str] = []
    stack = [obj]
    while stack:
        item = stack.pop()
        if type(item) is str:
            found.append(item)
        elif type(item) is dict:
            found.extend(item)
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    return found


class _Inspector:
    """The per-line state of one inspection."""

    def __init__(self, fmt: DatasetFormat, max_record_bytes: int, max_issues_kept: int) -> None:
        self.fmt = fmt
        self.max_record_bytes = max_record_bytes
        self.max_issues_kept = max_issues_kept
        self.line_no = 0
        self.records = 0
        self.valid = 0
        self.text_chars = 0
        self.issues: list[LineIssue] = []
        self.issue_count = 0
        self.scanner = PiiScanner()
        self._batch: list[str] = []
        self._batch_chars = 0

    def issue(self, line_no: int, reason: str) -> None:
        self.issue_count += 1
        if len(self.issues) < self.max_issues_kept:
            self.issues.append(LineIssue(line_no, reason))

    def lines(self, lines: list[bytes]) -> None:
        """Check complete lines (without their newline), in order."""
        fmt, loads, limit = self.fmt, orjson.loads, self.max_record_bytes
        batch = self._batch
        line_no = self.line_no
        records = valid = chars = scanned = 0
        for line in lines:
            line_no += 1
            if len(line) > limit:
                records += 1
                self.issue(line_no, f"longer than {limit:,} bytes ({len(line):,} bytes)")
                continue
            try:
                obj = loads(line)
            except orjson.JSONDecodeError as exc:
                problem = _undecodable(line, exc)
                if problem != "empty line":
                    records += 1
                    batch.append(line.decode("utf-8", "replace"))
                    scanned += len(line)
                self.issue(line_no, problem)
                continue
            records += 1
            texts: list[str] = []
            reason = check_record(fmt, obj, texts=texts)
            if reason is None:
                valid += 1
                chars += sum(map(len, texts))
            else:
                self.issue(line_no, reason)
                texts = _all_strings(obj)
                scanned += sum(map(len, texts))
            batch.extend(texts)
        self.line_no = line_no
        self.records += records
        self.valid += valid
        self.text_chars += chars
        self._batch_chars += chars + scanned
        if self._batch_chars >= PII_BATCH_CHARS:
            self.flush_pii()

    def oversize(self, length: int) -> None:
        """A line too long to keep in memory ended (or the file did)."""
        self.line_no += 1
        self.records += 1
        self.issue(self.line_no, f"longer than {self.max_record_bytes:,} bytes ({length:,} bytes)")

    def flush_pii(self) -> None:
        if self._batch:
            # Values never span lines, and no detector matches across a newline.
            self.scanner.scan("\n".join(self._batch))
            self._batch.clear()
        self._batch_chars = 0


def inspect_jsonl(
    stream: Readable,
    fmt: DatasetFormat,
    *,
    max_record_bytes: int = 1_000_000,
    max_issues_kept: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> DatasetReport:
    """Read ``stream`` to its end once and report on it as a ``fmt`` dataset.

    Every non-empty line is a record; a bad line (empty, over ``max_record_bytes``, a NUL
    byte, invalid UTF-8, invalid JSON, or a record ``fmt`` rejects) is an issue with its 1-based
    line number. All issues are counted, the first ``max_issues_kept`` kept. ``token_estimate``
    is the characters of the valid records' text fields (prompt, completion, message contents,
    system prompts, input) divided by 6, Amazon Bedrock's estimate; JSON syntax and keys are not
    counted. The PII scan covers those text fields, every string of a record that fails its
    format, and the text of a line that is not JSON (oversize lines are not scanned). A file
    whose first bytes are binary (an image, an archive, UTF-16) gets one issue, "line 1: not
    text (binary data…)", and no line checks; its checksum and size still cover every byte.
    ``progress`` receives the bytes read so far about every 4 MiB, and at the end.
    """
    if max_record_bytes < 1 or max_issues_kept < 0:
        raise ValueError("max_record_bytes must be positive and max_issues_kept not negative")
    hasher = hashlib.sha256()
    size = 0
    next_progress = PROGRESS_EVERY_BYTES
    inspector = _Inspector(fmt, max_record_bytes, max_issues_kept)
    binary = False
    pending = b""  # the start of a line that continues in the next chunk
    skipped = -1  # length so far of an oversize line being skipped, or -1
    for chunk in _chunks(stream):
        if size == 0 and (reason := sniff_binary(chunk[:SNIFF_BYTES])):
            inspector.issue(1, reason)
            binary = True
        hasher.update(chunk)
        size += len(chunk)
        if progress is not None and size >= next_progress:
            progress(size)
            next_progress = size + PROGRESS_EVERY_BYTES
        if binary:
            continue
        start = 0
        if skipped >= 0:
            newline = chunk.find(b"\n")
            if newline < 0:
                skipped += len(chunk)
                continue
            inspector.oversize(skipped + newline)
            skipped, start = -1, newline + 1
        lines = chunk[start:].split(b"\n") if start else chunk.split(b"\n")
        if pending:
            lines[0] = pending + lines[0]
        pending = lines.pop()
        inspector.lines(lines)
        if len(pending) > max_record_bytes:
            skipped, pending = len(pending), b""
    if skipped >= 0:
        inspector.oversize(skipped)
    elif pending:
        inspector.lines([pending])
    inspector.flush_pii()
    if progress is not None:
        progress(size)
    return DatasetReport(
        format=fmt,
        sha256=hasher.hexdigest(),
        size_bytes=size,
        record_count=inspector.records,
        valid_record_count=inspector.valid,
        text_chars=inspector.text_chars,
        token_estimate=-(-inspector.text_chars // CHARS_PER_TOKEN),
        issues=tuple(inspector.issues),
        issue_count=inspector.issue_count,
        pii=inspector.scanner.findings(),
    )
