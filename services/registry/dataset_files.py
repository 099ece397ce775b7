"""Where dataset bytes come from (an upload or ``s3://``) and where the portal keeps them:
content-addressed folders under ``PORTAL_HOME/datasets``, written only once checked."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import urlparse

from services import aws
from services.config import Settings
from services.errors import ValidationError

CHUNK = 1 << 20


@dataclass(frozen=True)
class DatasetSource:
    """An upload (``stream`` + ``name``) or an object in S3 (``uri``)."""

    name: str
    stream: BinaryIO | None = None
    uri: str | None = None
    size: int | None = None

    @classmethod
    def upload(cls, stream: BinaryIO, name: str, size: int | None = None) -> DatasetSource:
        return cls(name=name, stream=stream, size=size)

    @classmethod
    def s3(cls, uri: str) -> DatasetSource:
        parsed = urlparse(uri.strip())
        if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
            raise ValidationError(
                "S3 URI: must look like s3://bucket/path/to/data.jsonl.",
                fields={"uri": "must look like s3://bucket/key"},
            )
        return cls(name=uri.strip(), uri=uri.strip())


class SizeLimitedReader:
    """Reads from ``inner``, copies every byte to ``copy``, and refuses past ``limit`` bytes."""

    def __init__(self, inner: IO[bytes], copy: IO[bytes], limit: int, label: str) -> None:
        self.inner, self.copy, self.limit, self.label, self.read_bytes = (
            inner,
            copy,
            limit,
            label,
            0,
        )

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size if size and size > 0 else CHUNK)
        self.read_bytes += len(data)
        if self.read_bytes > self.limit:
            raise ValidationError(
                f"{self.label} is larger than the {self.limit // (1 << 20):,} MB limit "
                "(PORTAL_MAX_DATASET_MB). Split it, or ask an administrator to raise the limit."
            )
        self.copy.write(data)
        return data

    def readline(self, size: int = -1) -> bytes:  # some readers iterate by line
        line = self.inner.readline(size)
        self.read_bytes += len(line)
        if self.read_bytes > self.limit:
            raise ValidationError(f"{self.label} is larger than the limit.")
        self.copy.write(line)
        return line

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


def datasets_root(settings: Settings) -> Path:
    return settings.home_dir / "datasets"


def content_dir(settings: Settings, sha256: str) -> Path:
    return datasets_root(settings) / sha256[:2] / sha256


@contextmanager
def incoming_file(settings: Settings) -> Iterator[Path]:
    """A private temporary file for bytes being checked; removed unless kept (moved away)."""
    folder = datasets_root(settings) / ".incoming"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{uuid.uuid4().hex}.jsonl"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def opened(source: DatasetSource, settings: Settings) -> Iterator[tuple[IO[bytes], int | None]]:
    """The source's bytes as a stream, with its size when known beforehand."""
    if source.stream is not None:
        yield source.stream, source.size
        return
    assert source.uri is not None
    parsed = urlparse(source.uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    s3: Any = aws.client("s3", settings)
    with aws.aws_errors(f"read {source.uri}"):
        head = s3.head_object(Bucket=bucket, Key=key)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield body, int(head.get("ContentLength", 0))
    finally:
        body.close()


def keep(incoming: Path, destination: Path) -> bool:
    """Move checked bytes into their content folder (``destination/data.jsonl``). Returns True
    when this call created the folder, so that a failed registration may remove it again."""
    if (destination / "data.jsonl").exists():
        return False
    staging = destination.parent / f".{destination.name}.{uuid.uuid4().hex}"
    staging.mkdir(parents=True, mode=0o700)
    try:
        shutil.move(str(incoming), staging / "data.jsonl")
        staging.rename(destination)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if (destination / "data.jsonl").exists():  # the same bytes were registered meanwhile
            return False
        raise
    return True
