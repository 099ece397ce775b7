"""PII scanner: what a reviewer sees is the right count per kind, masked examples that never
reveal the value, and no alarms for dates, versions, order numbers and the like."""

from __future__ import annotations

import dataclasses
import string

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn

from services.registry.pii import KIND_LABELS, PiiFinding, PiiScanner, find_pii


def scan(*texts: str, **options: object) -> dict[str, PiiFinding]:
    scanner = PiiScanner(**options)  # type: ignore[arg-type]
    for text in texts:
        scanner.scan(text)
    return scanner.findings()


@pytest.mark.parametrize(
    ("kind", "text", "raw", "masked"),
    [
        (
            "email",
            "Hi, I'm Jane. Write to jane.doe@example.com and I'll answer today.",
            "jane.doe@example.com",
            "j*******@e******.com",
        ),
        (
            "phone",
            "You can call our office at (415) 555-2671 between 9 and 5.",
            "(415) 555-2671",
            "(***) ***-**71",
        ),
        ("phone", "Call 415-555-2671 tomorrow.", "415-555-2671", "***-***-**71"),
        ("phone", "Dial 415.555.2671 now.", "415.555.2671", "***.***.**71"),
        ("phone", "Our London desk: +44 20 7946 0958.", "+44 20 7946 0958", "+** ** **** **58"),
        ("phone", "Text +14155552671 please", "+14155552671", "+*********71"),
        ("phone", "Toll free 1-800-555-0199, any time", "1-800-555-0199", "*-***-***-**99"),
        (
            "credit_card",
            "My card number is 4242 4242 4242 4242, expiry 12/27.",
            "4242 4242 4242 4242",
            "**** **** **** 4242",
        ),
        ("credit_card", "card:4111-1111-1111-1111.", "4111-1111-1111-1111", "****-****-****-1111"),
        ("credit_card", "Amex 378282246310005 on file", "378282246310005", "***********0005"),
        ("us_ssn", "Her SSN is 123-45-6789, please verify.", "123-45-6789", "***-**-6789"),
        ("us_ssn", "SSN 219 09 9990 on the form", "219 09 9990", "*** ** 9990"),
        (
            "iban",
            "Please transfer to IBAN DE89 3704 0044 0532 0130 00 AND quote the invoice.",
            "DE89 3704 0044 0532 0130 00",
            "DE** **** **** **** **30 00",
        ),
        (
            "iban",
            "Account GB82WEST12345698765432.",
            "GB82WEST12345698765432",
            "GB****************5432",
        ),
        (
            "aws_access_key",
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPLE",
            "AKIA************MPLE",
        ),
        (
            "aws_access_key",
            "session key ASIAY34FZKBOKMUTVV7A here",
            "ASIAY34FZKBOKMUTVV7A",
            "ASIA************VV7A",
        ),
        ("ip_address", "Login from 81.2.69.160 was blocked.", "81.2.69.160", "81.*.**.***"),
        (
            "ip_address",
            "Client 2a00:1450:4001:81c::200e connected.",
            "2a00:1450:4001:81c::200e",
            "2a00:****:****:***::****",
        ),
    ],
)
def test_each_kind_is_found_counted_and_masked(kind: str, text: str, raw: str, masked: str) -> None:
    findings = scan(text)
    assert list(findings) == [kind]
    finding = findings[kind]
    assert finding == PiiFinding(kind, KIND_LABELS[kind], 1, (masked,))
    assert raw not in repr(findings)


@pytest.mark.parametrize(
    "text",
    [
        "Order 4242424242424241 shipped (a 16-digit order number that fails Luhn).",
        "Reference 1234567890123456 and 0000 0000 0000 0000.",
        "ISBN 978-3-16-148410-0 is in stock.",
        "Meeting on 2024-01-15 10:30, or 15.01.2024, or 01/15/2024 at 12:30:45.",
        "Logged at 2024-01-15T10:30:00Z and 2024-01-15 10:30:00.123.",
        "Upgrade from 1.2.3 to Python 3.11.7, v1.2.3.4 and 1.2.3.4.5 are old.",
        "We sold 1,000,000 units for $1,234.56 (99.9% uptime, pi is 3.14159265358979).",
        "In 2019 2020 and 2021 we had 42, 7 and 12 customers; 1 000 000 in French notation.",
        "Order id 4155552671 and account 123456789 (bare digits, no formatting).",
        "Unix time 1700000000; ZIP 94103-1234.",
        "Hosts 192.168.1.1, 10.0.0.1, 127.0.0.1, 0.0.0.0, 255.255.255.255, 203.0.113.7, ::1.",
        "Docs use 2001:db8::1 and fe80::1; C++ has std::vector; time 12:30:45.",
        "Invalid IBAN DE00 3704 0044 0532 0130 00 and key AKIB1234567890ABCDEF.",
        "Not SSNs: 000-12-3456, 666-12-3456, 900-12-3456, 123-00-4567.",
        "UUID 123e4567-e89b-12d3-a456-426614174000, sha 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
        "Email-like but not: @decorator, user@localhost, name@domain",
        "Numbers with letters: ID12345678901234 and 4242424242424242X",
    ],
)
def test_ordinary_text_is_not_flagged(text: str) -> None:
    assert scan(text) == {}


def test_counts_add_up_over_texts_and_examples_are_three_distinct_masks() -> None:
    findings = scan(
        "a@example.com and bb@example.org",
        "ccc@example.net, then dddd@example.io, then a@example.com again",
        "card 4242 4242 4242 4242 twice: 4242 4242 4242 4242",
    )
    email = findings["email"]
    assert email.count == 5
    assert email.examples == ("*@e******.com", "b*@e******.org", "c**@e******.net")
    assert findings["credit_card"].count == 2
    assert findings["credit_card"].examples == ("**** **** **** 4242",)


def test_findings_are_in_a_fixed_order_and_cannot_be_changed() -> None:
    findings = scan("81.2.69.160 jane@example.com AKIAIOSFODNN7EXAMPLE 123-45-6789")
    assert list(findings) == ["email", "us_ssn", "aws_access_key", "ip_address"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        findings["email"].count = 0  # type: ignore[misc]


def test_a_value_is_counted_once_as_its_most_specific_kind() -> None:
    # An SSN is also nine digits a phone pattern might take; an IBAN holds a digit run.
    findings = scan("SSN 123-45-6789 and IBAN DE89 3704 0044 0532 0130 00 and a@b.io")
    assert {kind: f.count for kind, f in findings.items()} == {
        "email": 1,
        "us_ssn": 1,
        "iban": 1,
    }


def test_national_phone_formats_follow_the_regions_asked_for() -> None:
    text = "Ring our London office on 020 7946 0958."
    assert scan(text) == {}
    assert scan(text, regions=("US", "GB"))["phone"].count == 1
    with pytest.raises(ValueError, match="unknown phone region"):
        PiiScanner(regions=("XX",))


def test_non_ascii_text_around_values_is_fine() -> None:
    findings = scan("Zürich: écrivez à müller@example.ch ou appelez +41 44 668 18 00 😀")
    assert findings["email"].examples == ("m*****@e******.ch",)
    assert findings["phone"].count == 1


def _card(digits: str) -> str:
    number = "4" + digits[:14]
    return number + luhn.calc_check_digit(number)


PII_VALUES = st.one_of(
    st.builds(
        "{}@{}.{}".format,
        st.text(string.ascii_letters + string.digits + "._+-", min_size=1, max_size=12),
        st.text(string.ascii_lowercase, min_size=1, max_size=10),
        st.sampled_from(["com", "org", "io", "de"]),
    ),
    st.builds(_card, st.text(string.digits, min_size=14, max_size=14)),
    st.builds(
        "{:03d}-{:02d}-{:04d}".format,
        st.integers(1, 665),
        st.integers(1, 99),
        st.integers(1, 9999),
    ),
    st.builds(
        "({}) {}-{:04d}".format,
        st.sampled_from([212, 415, 646]),
        st.integers(200, 999),
        st.integers(0, 9999),
    ),
    st.builds(
        "AKIA{}".format, st.text(string.ascii_uppercase + "234567", min_size=16, max_size=16)
    ),
    st.builds("81.{}.{}.{}".format, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    st.sampled_from(["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "+44 20 7946 0958"]),
)
FILLER = st.text(max_size=30) | st.sampled_from([" ", "\n", ", ", " (", ") ", "-", ".", ":", "+"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(PII_VALUES, FILLER), max_size=12))
def test_findings_never_contain_a_raw_value(parts: list[str]) -> None:
    text = "".join(parts)
    scanner = PiiScanner()
    scanner.scan(text)
    shown = repr(scanner.findings())
    matches = list(find_pii(text))
    for match in matches:
        assert match.value not in shown
        assert match.value not in match.masked
    assert sum(f.count for f in scanner.findings().values()) == len(matches)


@settings(max_examples=300, deadline=None)
@given(st.text() | st.text(alphabet="0123456789 -.()+:/@ADEFGIKSWabcdef\n", max_size=80))
def test_scan_never_raises_on_arbitrary_text(text: str) -> None:
    scanner = PiiScanner()
    scanner.scan(text)
    for finding in scanner.findings().values():
        assert finding.count >= len(finding.examples) >= 1


def test_lone_surrogates_do_not_break_the_scan() -> None:
    scanner = PiiScanner()
    scanner.scan("\ud800 jane@example.com \udfff")
    assert scanner.findings()["email"].count == 1


@settings(max_examples=400, deadline=None)
@given(
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(0, 9999),
    st.sampled_from(["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "1-{a}-{b}-{c}"]),
)
def test_national_phone_numbers_count_exactly_when_phonenumbers_says_valid(
    area: int, exchange: int, line: int, layout: str
) -> None:
    written = layout.format(a=area, b=exchange, c=f"{line:04d}")

    def valid(digits: str) -> bool:
        return any(
            phonenumbers.is_valid_number_for_region(phonenumbers.parse(digits, r), r)
            for r in ("US", "CA")
        )

    # The whole number, or else its last seven digits: Canada has valid seven-digit numbers
    # ("310-2255", province-wide numbers), and "(200) 310-2255" still contains one.
    whole = valid(f"{area}{exchange}{line:04d}")
    local = "." not in layout and valid(f"{exchange}{line:04d}")
    found = [m.kind for m in find_pii(f"Call {written} today.")]
    assert found == (["phone"] if whole or local else [])
