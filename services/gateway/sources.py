"""Where gateway logs are read from: a local file or folder, or an ``s3://bucket/prefix``.

Objects are listed with a paginator and read as streams, never whole. Gzip is recognised by
its magic bytes, not by the name. A file is JSON lines, or one JSON document (an object or a
list) spread over several lines when its first line is only ``{`` or ``[``.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import IncompleteReadError, ReadTimeoutError, ResponseStreamingError

from services.aws import aws_errors, client
from services.config import Settings
from services.errors import ExternalServiceError, ValidationError

GZIP_MAGIC = b"\x1f\x8b"
READ_BUFFER = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """One file or S3 object: its name for messages, what identifies its content, how to
    open it as a binary stream, its size in bytes (compressed or not) and whether it is a
    local file (which a forked worker process may open by itself)."""

    uri: str
    fingerprint: str
    open: Callable[[], IO[bytes]]
    size: int = 0
    local: bool = False


class TruncatedFile(Exception):
    """The file ended in the middle of a gzip stream (or the stream is corrupt)."""

    def __init__(self, lines_read: int, reason: str) -> None:
        super().__init__(reason)
        self.lines_read = lines_read


class _StreamingRaw(io.RawIOBase):
    """A botocore ``StreamingBody`` as a raw stream, so it can be buffered and peeked. A
    download that stops part-way (no more bytes within the read timeout, a dropped connection)
    is an ``ExternalServiceError`` naming the object, like a failed request."""

    def __init__(self, body: Any, uri: str) -> None:
        self._body = body
        self._uri = uri

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))
        except (ReadTimeoutError, ResponseStreamingError, IncompleteReadError) as exc:
            cause = "AWS stopped sending it" if isinstance(exc, ReadTimeoutError) else str(exc)
            raise ExternalServiceError(
                f"Could not read {self._uri}: the download stopped part-way ({cause}). "
                "Run the ingest again: what was stored is kept and not counted twice.",
                code="Interrupted",
                detail=repr(exc),
            ) from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix); the prefix may be empty."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise ValidationError(f"Not an S3 location: {uri!r}; write it as s3://bucket/prefix.")
    return bucket, prefix


def list_files(location: str, settings: Settings) -> Iterator[SourceFile]:
    """Every file under ``location`` (a path or ``s3://bucket/prefix``), in name order."""
    if location.startswith("s3://"):
        yield from _s3_files(location, settings)
        return
    path = Path(location).expanduser()
    if path.is_file():
        yield _local_file(path)
    elif path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and not any(
                p.startswith(".") for p in child.relative_to(path).parts
            ):
                yield _local_file(child)
    else:
        raise ValidationError(f"No such file or folder: {location}")


def _local_file(path: Path) -> SourceFile:
    stat = path.stat()
    return SourceFile(
        uri=str(path),
        fingerprint=f"size={stat.st_size} mtime_ns={stat.st_mtime_ns}",
        open=lambda: path.open("rb", buffering=READ_BUFFER),
        size=stat.st_size,
        local=True,
    )


def _s3_files(location: str, settings: Settings) -> Iterator[SourceFile]:
    bucket, prefix = split_s3_uri(location)
    s3 = client("s3", settings)

    def opener(key: str) -> Callable[[], IO[bytes]]:
        def open_object() -> IO[bytes]:
            with aws_errors(f"read s3://{bucket}/{key}"):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            return io.BufferedReader(_StreamingRaw(body, f"s3://{bucket}/{key}"), READ_BUFFER)

        return open_object

    with aws_errors(f"list {location}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue  # a folder marker
                yield SourceFile(
                    uri=f"s3://{bucket}/{key}",
                    fingerprint=f"etag={item.get('ETag', '')} size={item.get('Size', 0)}",
                    open=opener(key),
                    size=int(item.get("Size", 0)),
                )


def _decompressed(stream: IO[bytes]) -> Any:
    """``stream`` buffered (so it can be peeked), and gunzipped if it starts like gzip."""
    buffered: Any = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    return buffered


def is_gzip(source_file: SourceFile) -> bool:
    """Whether the file starts like a gzip stream."""
    with source_file.open() as stream:
        return stream.read(2) == GZIP_MAGIC


def in_blocks(source_file: SourceFile) -> bool:
    """Whether the file can be read in blocks (``read_block``) by several processes at once:
    a local file of JSON lines, not gzip (a stream read from its start) nor one JSON document
    over several lines."""
    if not source_file.local:
        return False
    with source_file.open() as stream:
        first = stream.readline(READ_BUFFER)
    return first[:2] != GZIP_MAGIC and first.strip() not in (b"{", b"[")


BLOCK_TAIL = 1 << 20
"""Bytes read past a block's nominal end to find the newline that ends it (in the same read)."""


def read_block(
    stream: IO[bytes], index: int, size: int, *, last: bool, buffer: bytearray | None = None
) -> tuple[bytes | bytearray, int]:
    """Block ``index`` of a file read in blocks of about ``size`` bytes cut at line ends, as
    ``(data, end)``: the block is ``data[:end]`` (what follows is read past it, or left from
    an earlier block). It runs from the line after the first newline at or after byte
    ``index * size - 1`` (the file's start for block 0) to the first newline at or after byte
    ``(index + 1) * size - 1`` included, or to the end for the ``last`` block. A line longer
    than ``size`` is in one block whole (the blocks after it that start inside it are empty).
    Given a ``buffer`` of ``size + BLOCK_TAIL`` bytes, it is read into that, again for each
    block: a new buffer of a few tens of MB costs more to map than to fill."""
    start = 0
    if index:
        stream.seek(index * size - 1)
        stream.readline()
        start = stream.tell()
    if last:
        data = stream.read()
        return data, len(data)
    stop = (index + 1) * size - 1 - start
    if stop < 0:
        return b"", 0
    want = stop + BLOCK_TAIL
    if buffer is None or len(buffer) < want:
        read: bytes | bytearray = stream.read(want)
        got = len(read)
    else:
        read, got = buffer, _read_into(stream, memoryview(buffer)[:want])
    newline = read.find(b"\n", stop, got)
    if newline < 0 and got == want:  # a very long line
        read = bytes(read[:got]) + stream.readline()
        got = len(read)
        newline = read.find(b"\n", stop)
    return read, got if newline < 0 else newline + 1


def _read_into(stream: IO[bytes], view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each non-blank line; a multi-line JSON document comes as one
    "line" numbered 1. Raises ``TruncatedFile`` if a gzip stream is cut short or corrupt."""
    number = 0
    try:
        with _decompressed(stream) as lines:
            for number, line in enumerate(lines, start=1):
                if line.isspace() or not line:  # (no copy of the line, unlike strip)
                    continue
                if number == 1 and line.strip() in (b"{", b"["):
                    yield 1, line + lines.read()
                    return
                yield number, line
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise TruncatedFile(
            number, f"truncated or corrupt gzip ({exc}); {number:,} lines were read before it"
        ) from exc
