"""Train/validation/test splits: reproducible from the seed, in the proportions asked for (per
stratum too), every record exactly once, and never a half-written set of files."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest

from services.registry import splits
from services.registry.splits import SplitFile, allocate, split_jsonl


def write_dataset(path: Path, count: int, *, label_of=lambda i: ["a", "b", "c"][i % 3]) -> Path:
    with path.open("wb") as f:
        for i in range(count):
            record = {"prompt": f"question {i}", "completion": f"answer {i}", "label": label_of(i)}
            f.write(orjson.dumps(record) + b"\n")
    return path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_same_seed_gives_byte_identical_files_and_a_different_seed_another_split(
    tmp_path: Path,
) -> None:
    source = write_dataset(tmp_path / "data.jsonl", 1_000)
    first = split_jsonl(source, tmp_path / "one", seed=42)
    second = split_jsonl(source, tmp_path / "two", seed=42)
    other = split_jsonl(source, tmp_path / "three", seed=43)
    for name in ("train", "validation", "test"):
        assert first[name].path.read_bytes() == second[name].path.read_bytes()
        assert first[name].sha256 == second[name].sha256
    assert set(lines_of(other["test"].path)) != set(lines_of(first["test"].path))
    assert other["test"].records == first["test"].records  # same sizes, other members


def test_split_files_report_their_path_checksum_and_record_count(tmp_path: Path) -> None:
    source = write_dataset(tmp_path / "data.jsonl", 50)
    result = split_jsonl(source, tmp_path / "out", seed=1)
    assert list(result) == ["train", "validation", "test"]
    for name, split in result.items():
        assert split == SplitFile(
            name,
            tmp_path / "out" / f"{name}.jsonl",
            hashlib.sha256(split.path.read_bytes()).hexdigest(),
            len(lines_of(split.path)),
        )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "test.jsonl",
        "train.jsonl",
        "validation.jsonl",
    ]


@pytest.mark.parametrize(
    ("count", "fractions", "expected"),
    [
        (1_000, (0.8, 0.1, 0.1), (800, 100, 100)),
        (997, (0.8, 0.1, 0.1), (797, 100, 100)),  # 797.6, 99.7, 99.7
        (10, (0.7, 0.2, 0.1), (7, 2, 1)),
        (3, (0.8, 0.1, 0.1), (3, 0, 0)),
        (5, (0.8, 0.1, 0.1), (4, 1, 0)),
        (100, (1.0, 0.0, 0.0), (100, 0, 0)),
        (100, (0.5, 0.5, 0.0), (50, 50, 0)),
    ],
)
def test_sizes_follow_the_fractions_within_rounding(
    tmp_path: Path, count: int, fractions: tuple[float, float, float], expected: tuple[int, ...]
) -> None:
    source = write_dataset(tmp_path / "data.jsonl", count)
    result = split_jsonl(source, tmp_path / "out", seed=7, fractions=fractions)
    sizes = tuple(result[name].records for name in ("train", "validation", "test"))
    assert sizes == expected == allocate(count, fractions)
    for size, fraction in zip(sizes, fractions, strict=True):
        assert abs(size - count * fraction) < 1


def test_every_record_lands_in_exactly_one_split(tmp_path: Path) -> None:
    source = tmp_path / "data.jsonl"
    # Duplicates, CRLF endings, blank lines and no final newline.
    source.write_bytes(
        b'{"n": 1}\r\n{"n": 2}\n\n{"n": 2}\n   \n{"n": 3}\n' + b'{"n": 4}\n' * 40 + b'{"n": 5}'
    )
    result = split_jsonl(source, tmp_path / "out", seed=3)
    written = Counter(line for split in result.values() for line in lines_of(split.path))
    expected = Counter(line.strip() for line in source.read_bytes().splitlines() if line.strip())
    assert written == expected
    assert sum(split.records for split in result.values()) == 45


def test_stratification_splits_each_value_in_the_same_proportions(tmp_path: Path) -> None:
    labels = ["common"] * 700 + ["rare"] * 50 + ["unique"] * 1
    path = tmp_path / "data.jsonl"
    with path.open("wb") as f:
        for i, label in enumerate(labels):
            f.write(orjson.dumps({"prompt": str(i), "completion": "x", "label": label}) + b"\n")
        for i in range(40):  # records without the field form their own stratum
            f.write(orjson.dumps({"prompt": f"m{i}", "completion": "x"}) + b"\n")
    result = split_jsonl(path, tmp_path / "out", seed=11, stratify_field="label")
    per_split = {
        name: Counter(orjson.loads(line).get("label", "<missing>") for line in lines_of(s.path))
        for name, s in result.items()
    }
    for stratum, size in {"common": 700, "rare": 50, "unique": 1, "<missing>": 40}.items():
        observed = tuple(per_split[name][stratum] for name in ("train", "validation", "test"))
        assert observed == allocate(size, (0.8, 0.1, 0.1)), stratum
    assert per_split["validation"]["rare"] == 5 and per_split["test"]["rare"] == 5


def test_stratify_values_may_be_any_json_value(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    values = [1, "1", None, [1, 2], {"b": 1, "a": 2}, {"a": 2, "b": 1}, True]
    with path.open("wb") as f:
        for i in range(70):
            f.write(orjson.dumps({"i": i, "tag": values[i % len(values)]}) + b"\n")
    result = split_jsonl(path, tmp_path / "out", seed=5, stratify_field="tag")
    # Five strata of ten (1, "1", null, [1, 2], true; true is not 1) and one of twenty (the two
    # objects are the same value): 8 of every 10 in train.
    train = Counter(
        orjson.dumps(orjson.loads(line)["tag"], option=orjson.OPT_SORT_KEYS)
        for line in lines_of(result["train"].path)
    )
    assert train == {b"1": 8, b'"1"': 8, b"null": 8, b"[1,2]": 8, b"true": 8, b'{"a":2,"b":1}': 16}


def test_stratifying_needs_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"label": "a"}\nnot json\n')
    with pytest.raises(ValueError, match=re.escape("data.jsonl line 2 is not valid JSON")):
        split_jsonl(path, tmp_path / "out", seed=1, stratify_field="label")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fractions": (0.8, 0.1, 0.2)}, "fractions must add up to 1, they add up to 1.1"),
        ({"fractions": (0.9, 0.2, -0.1)}, "the test fraction must not be negative"),
        ({"fractions": (0.5, 0.5)}, "fractions must be three numbers"),
        ({"fractions": (0.8, float("nan"), 0.2)}, "the validation fraction must be a number"),
        ({"fractions": ("0.8", 0.1, 0.1)}, "the train fraction must be a number"),
        ({"seed": "42"}, "seed must be an integer"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"stratify_field": ""}, "stratify_field must be a non-empty field name"),
    ],
)
def test_bad_arguments_are_rejected_clearly(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    source = write_dataset(tmp_path / "data.jsonl", 10)
    arguments: dict[str, object] = {"seed": 1, **options}
    with pytest.raises(ValueError, match=re.escape(message)):
        split_jsonl(source, tmp_path / "out", **arguments)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_a_dataset_without_records_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_bytes(b"\n  \n")
    with pytest.raises(ValueError, match=re.escape("empty.jsonl has no records to split")):
        split_jsonl(source, tmp_path / "out", seed=1)


def test_a_failure_while_writing_leaves_no_partial_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_dataset(tmp_path / "data.jsonl", 100)
    out = tmp_path / "out"
    previous = split_jsonl(source, out, seed=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(splits.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        split_jsonl(source, out, seed=2)
    # The earlier split is intact and no temporary file is left behind.
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert previous["train"].path.read_bytes() == before["train.jsonl"]

    fresh = tmp_path / "fresh"
    with pytest.raises(OSError, match="No space left"):
        split_jsonl(source, fresh, seed=2)
    assert list(fresh.iterdir()) == []


def test_splitting_a_file_into_its_own_folder_works(tmp_path: Path) -> None:
    source = write_dataset(tmp_path / "train.jsonl", 20)
    original = lines_of(source)
    result = split_jsonl(source, tmp_path, seed=9)
    assert sorted(line for s in result.values() for line in lines_of(s.path)) == sorted(original)
