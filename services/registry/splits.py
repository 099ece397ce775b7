"""Split a JSONL dataset into train, validation and test files, reproducibly.

Two streaming passes over the source: the first counts the records (and, when stratifying,
notes each record's stratum); then every stratum's records are ranked by a keyed BLAKE2b hash
of (seed, record number) — not Python's randomised ``hash()`` and not ``random``, so the same
seed and file give byte-identical outputs in any process and Python version — and the first
ranks go to train, the next to validation, the rest to test, in counts rounded by the largest
remainder so each stratum is split in the requested proportions. The second pass copies each
record to its split, in the source's order, through temporary files renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

SPLIT_NAMES = ("train", "validation", "test")
_MISSING = b"\x00missing"  # stratum of records without the field (no JSON dump looks like it)


@dataclass(frozen=True)
class SplitFile:
    name: str
    path: Path
    sha256: str
    records: int


def _check_arguments(
    seed: object, fractions: object, stratify_field: object
) -> tuple[float, float, float]:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not isinstance(fractions, tuple | list) or len(fractions) != 3:
        raise ValueError("fractions must be three numbers: train, validation, test")
    values = []
    for name, value in zip(SPLIT_NAMES, fractions, strict=True):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"the {name} fraction must be a number, got {value!r}")
        if value < 0:
            raise ValueError(f"the {name} fraction must not be negative, got {value}")
        values.append(float(value))
    if not math.isclose(sum(values), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions must add up to 1, they add up to {sum(values):g}")
    if stratify_field is not None and (not isinstance(stratify_field, str) or not stratify_field):
        raise ValueError("stratify_field must be a non-empty field name or None")
    return values[0], values[1], values[2]


def _records(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its line ending) for every non-blank line."""
    for line_no, line in enumerate(stream, start=1):
        body = line.rstrip(b"\r\n")
        if body.strip():
            yield line_no, body


def _stratum(body: bytes, field: str, line_no: int, source: Path) -> bytes:
    try:
        record = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{source.name} line {line_no} is not valid JSON: {exc.msg}") from exc
    if type(record) is not dict or field not in record:
        return _MISSING
    return orjson.dumps(record[field], option=orjson.OPT_SORT_KEYS)


def allocate(count: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Split ``count`` records by ``fractions`` into whole counts that add up to ``count``:
    each share rounded down, the remainder to the largest fractional parts (ties to train,
    then validation)."""
    exact = [count * f for f in fractions]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(3), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[: count - sum(shares)]:
        shares[i] += 1
    return shares[0], shares[1], shares[2]


def _assign(
    strata: dict[bytes, array[int]], total: int, seed: int, fractions: tuple[float, float, float]
) -> bytearray:
    """The split (0, 1, 2) of every record number."""
    key = hashlib.sha256(f"split-seed:{seed}".encode()).digest()[:32]
    assignment = bytearray(total)
    for members in strata.values():
        ranked = sorted(
            members,
            key=lambda n: hashlib.blake2b(n.to_bytes(8, "big"), key=key, digest_size=8).digest(),
        )
        train, validation, _ = allocate(len(ranked), fractions)
        for rank, number in enumerate(ranked):
            assignment[number] = 0 if rank < train else 1 if rank < train + validation else 2
    return assignment


def split_jsonl(
    source: Path,
    out_dir: Path,
    *,
    seed: int,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    stratify_field: str | None = None,
) -> dict[str, SplitFile]:
    """Write ``train.jsonl``, ``validation.jsonl`` and ``test.jsonl`` into ``out_dir``.

    Blank lines are skipped; every other line is a record, copied byte for byte (line endings
    become ``\\n``). Records are parsed only to read ``stratify_field``; with it, each distinct
    value of that top-level field (and "field missing") is split in the same proportions.
    Raises ``ValueError`` for bad arguments, a source without records, or (when stratifying)
    a line that is not JSON. The splits are written to temporary files in ``out_dir`` and
    renamed into place only once all three are complete and synced, so a failure while
    reading or writing leaves no partial split file and no temporary file, and split files
    already in ``out_dir`` untouched.
    """
    shares = _check_arguments(seed, fractions, stratify_field)
    strata: dict[bytes, array[int]] = {}
    total = 0
    with source.open("rb") as stream:
        for line_no, body in _records(stream):
            key = b"" if stratify_field is None else _stratum(body, stratify_field, line_no, source)
            strata.setdefault(key, array("q")).append(total)
            total += 1
    if total == 0:
        raise ValueError(f"{source.name} has no records to split")
    assignment = _assign(strata, total, seed, shares)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _write(source, out_dir, assignment)


def _write(source: Path, out_dir: Path, assignment: bytearray) -> dict[str, SplitFile]:
    temps: list[Path] = []
    try:
        with contextlib.ExitStack() as stack:
            outs = []
            for name in SPLIT_NAMES:
                fd, temp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
                temps.append(Path(temp_name))
                outs.append(stack.enter_context(os.fdopen(fd, "wb")))
            hashes = [hashlib.sha256() for _ in SPLIT_NAMES]
            counts = [0, 0, 0]
            number = 0
            with source.open("rb") as stream:
                for _, body in _records(stream):
                    if number >= len(assignment):
                        raise ValueError(f"{source.name} changed while it was being split")
                    split, line = assignment[number], body + b"\n"
                    outs[split].write(line)
                    hashes[split].update(line)
                    counts[split] += 1
                    number += 1
            if number != len(assignment):
                raise ValueError(f"{source.name} changed while it was being split")
            for out in outs:
                out.flush()
                os.fsync(out.fileno())
        result = {}
        for i, name in enumerate(SPLIT_NAMES):
            path = out_dir / f"{name}.jsonl"
            temps[i].replace(path)
            result[name] = SplitFile(name, path, hashes[i].hexdigest(), counts[i])
        return result
    except BaseException:
        for leftover in temps:
            leftover.unlink(missing_ok=True)
        raise
