"""Dataset inspection: the report a user reads before registering a file — which lines are bad
and why, how many records and tokens, the checksum, and the PII found."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from unittest import mock

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registry import inspection
from services.registry.formats import DatasetFormat
from services.registry.inspection import DatasetReport, LineIssue, inspect_jsonl

PC = DatasetFormat.BEDROCK_PROMPT_COMPLETION
CHAT = DatasetFormat.CHAT


def line(prompt: str = "What is the capital of France?", completion: str = "Paris.") -> bytes:
    return orjson.dumps({"prompt": prompt, "completion": completion})


def inspect(data: bytes, fmt: DatasetFormat = PC, **options: int) -> DatasetReport:
    return inspect_jsonl(io.BytesIO(data), fmt, **options)  # type: ignore[arg-type]


def test_one_bad_line_among_100000_is_reported_by_number_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    good = orjson.dumps(
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]}
    )
    bad = orjson.dumps(
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hey"}]}
    )
    with path.open("wb") as f:
        for n in range(1, 100_001):
            f.write((bad if n == 73_519 else good) + b"\n")
    with path.open("rb") as f:
        report = inspect_jsonl(f, CHAT)
    assert report.issues == (
        LineIssue(73_519, "messages[1].role is 'user' but 'assistant' was expected"),
    )
    assert str(report.issues[0]) == (
        "line 73519: messages[1].role is 'user' but 'assistant' was expected"
    )
    assert report.issue_count == 1
    assert report.record_count == 100_000
    assert report.valid_record_count == 99_999
    assert not report.is_valid
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert report.size_bytes == path.stat().st_size


def test_a_clean_file_is_valid_with_checksum_size_and_token_estimate() -> None:
    data = b"".join(line("a" * 300, "b" * 299) + b"\n" for _ in range(10))
    report = inspect(data)
    assert report.is_valid
    assert (report.record_count, report.valid_record_count, report.issue_count) == (10, 10, 0)
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.size_bytes == len(data)
    # The characters of the text fields, not of the JSON around them, at 6 per token.
    assert report.text_chars == 5_990
    assert report.token_estimate == 999  # 5990 / 6, rounded up
    assert report.format is PC
    assert report.pii == {}


def test_invalid_utf8_is_named_with_the_offending_byte() -> None:
    data = line() + b"\n" + b'{"prompt": "caf\xe9", "completion": "ok"}\n' + line() + b"\n"
    report = inspect(data)
    assert report.issues == (LineIssue(2, "invalid UTF-8 (byte 0xe9 at position 16)"),)
    assert (report.record_count, report.valid_record_count) == (3, 2)


def test_empty_lines_are_issues_but_not_records() -> None:
    data = line() + b"\n\n" + line() + b"\n   \r\n" + line() + b"\n"
    report = inspect(data)
    assert report.issues == (LineIssue(2, "empty line"), LineIssue(4, "empty line"))
    assert (report.record_count, report.valid_record_count) == (3, 3)


def test_line_endings_and_a_missing_final_newline_are_fine() -> None:
    data = line() + b"\r\n" + line() + b"\r\n" + line()
    report = inspect(data)
    assert report.is_valid
    assert report.record_count == 3


def test_an_oversize_line_is_reported_and_the_lines_after_it_still_count() -> None:
    data = line() + b"\n" + line("x" * 500) + b"\n" + line() + b"\n"
    report = inspect(data, max_record_bytes=200)
    size = len(line("x" * 500))
    assert report.issues == (LineIssue(2, f"longer than 200 bytes ({size:,} bytes)"),)
    assert (report.record_count, report.valid_record_count) == (3, 2)


def test_an_oversize_line_across_many_chunks_is_skipped_not_buffered() -> None:
    huge = line("y" * (3 * inspection.CHUNK_BYTES))
    data = line() + b"\n" + huge + b"\n" + line() + b"\n" + huge
    report = inspect(data, max_record_bytes=10_000)
    reason = f"longer than 10,000 bytes ({len(huge):,} bytes)"
    assert report.issues == (LineIssue(2, reason), LineIssue(4, reason))
    assert (report.record_count, report.valid_record_count) == (4, 2)
    assert report.sha256 == hashlib.sha256(data).hexdigest()


def test_invalid_json_and_format_defects_carry_their_reason() -> None:
    data = b"\n".join(
        [
            b'{"prompt": "a", "completion": "b"',
            b'{"prompt": "a", "completion": "b"} trailing',
            b"[1, 2]",
            b'{"prompt": "a"}',
            b'\xef\xbb\xbf{"prompt": "a", "completion": "b"}',
            b'{"prompt": "a\x00", "completion": "b"}',
        ]
    )
    reasons = [issue.reason for issue in inspect(data).issues]
    # orjson words the JSON errors; the column says where.
    assert reasons[0].startswith("invalid JSON: ") and reasons[0].endswith(" at column 34")
    assert reasons[1].startswith("invalid JSON: ") and reasons[1].endswith(" at column 36")
    assert reasons[2:] == [
        "record must be a JSON object, got array",
        "missing key 'completion'",
        "starts with a UTF-8 byte order mark (BOM); save the file as UTF-8 without BOM",
        "contains a NUL byte (binary data)",
    ]


def test_a_binary_file_gives_one_clear_issue_and_stops(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4000
    report = inspect(png)
    assert report.issues == (LineIssue(1, "not text (binary data: looks like a PNG image)"),)
    assert str(report.issues[0]).startswith("line 1: not text (binary data")
    assert (report.issue_count, report.record_count) == (1, 0)
    assert report.sha256 == hashlib.sha256(png).hexdigest()
    assert report.size_bytes == len(png)

    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("data.jsonl", line() * 1000)
    assert "ZIP archive" in inspect(archive.read_bytes()).issues[0].reason

    noise = bytes((i * 7919) % 251 for i in range(100_000))  # no magic, many control bytes
    assert inspect(noise).issues == (LineIssue(1, "not text (binary data)"),)


def test_utf16_is_recognised_as_the_wrong_encoding() -> None:
    data = "\ufeff".encode("utf-16-le") + line().decode().encode("utf-16-le")
    assert inspect(data).issues[0].reason == (
        "not text (binary data: looks like UTF-16 text; save it as UTF-8)"
    )


def test_all_issues_are_counted_but_only_the_first_are_kept() -> None:
    data = b"not json\n" * 2_500
    report = inspect(data, max_issues_kept=10)
    assert report.issue_count == 2_500
    assert [issue.line for issue in report.issues] == list(range(1, 11))
    assert report.issues_truncated


def test_empty_file_is_not_a_valid_dataset() -> None:
    report = inspect(b"")
    assert not report.is_valid
    assert report.record_count == 0
    assert report.sha256 == hashlib.sha256(b"").hexdigest()


def test_pii_is_found_in_valid_and_invalid_records_and_reported_masked() -> None:
    data = b"\n".join(
        [
            line("Email jane.doe@example.com about it", "Sure, call (415) 555-2671."),
            b'{"prompt": "card 4242 4242 4242 4242"}',  # fails its format: still scanned
            b"not json, but key AKIAIOSFODNN7EXAMPLE",  # not JSON: the text is scanned
        ]
    )
    report = inspect(data)
    assert {kind: f.count for kind, f in report.pii.items()} == {
        "email": 1,
        "phone": 1,
        "credit_card": 1,
        "aws_access_key": 1,
    }
    assert report.pii["credit_card"].examples == ("**** **** **** 4242",)
    assert "jane.doe@example.com" not in repr(report)
    assert "AKIAIOSFODNN7EXAMPLE" not in repr(report)


def test_progress_is_reported_every_few_megabytes_and_at_the_end() -> None:
    data = line("z" * 1000) + b"\n"
    data *= (12 << 20) // len(data)
    seen: list[int] = []
    inspect_jsonl(io.BytesIO(data), PC, progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == len(data)
    assert 3 <= len(seen) <= 5  # about every 4 MiB of 12 MiB, plus the end


def test_records_split_across_read_chunks_give_the_same_report() -> None:
    data = b"".join(line(f"prompt {i}", f"completion {i}") + b"\n" for i in range(200))
    data += b"broken\n" + line("last")
    whole = inspect(data)
    with mock.patch.object(inspection, "CHUNK_BYTES", 7):
        chunked = inspect(data)
    assert chunked == whole
    assert [issue.line for issue in whole.issues] == [201]
    assert whole.issues[0].reason.startswith("invalid JSON: ")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(list(DatasetFormat)))
def test_arbitrary_bytes_never_raise_they_only_produce_issues(
    data: bytes, fmt: DatasetFormat
) -> None:
    report = inspect(data, fmt, max_record_bytes=500, max_issues_kept=5)
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.size_bytes == len(data)
    assert len(report.issues) == min(report.issue_count, 5)
    assert 0 <= report.valid_record_count <= report.record_count
    assert report.is_valid == (report.issue_count == 0 and report.record_count > 0)


JSONISH_LINES = st.lists(
    st.one_of(
        st.builds(line, st.text(max_size=40), st.text(min_size=1, max_size=40)),
        st.sampled_from([b"", b"  ", b"{", b"[]", b'{"prompt": 1}', b"\xff\xfe", b'"x"']),
        st.text(max_size=30).map(str.encode),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(JSONISH_LINES, st.sampled_from([b"\n", b"\r\n"]), st.integers(1, 64))
def test_the_report_does_not_depend_on_how_the_stream_is_chunked(
    lines: list[bytes], ending: bytes, chunk: int
) -> None:
    data = b"{}" + ending + ending.join(lines)  # a JSON first line: no binary sniffing
    whole = inspect(data, max_record_bytes=60)
    with mock.patch.object(inspection, "CHUNK_BYTES", chunk):
        chunked = inspect(data, max_record_bytes=60)
    assert chunked == whole
