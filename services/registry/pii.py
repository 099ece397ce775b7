"""Find personal data and secrets in dataset text, keeping only counts and masked examples.

Detection works on the UTF-8 bytes of the text. E-mail addresses and AWS keys are found by a
regex anchored on a literal (``@``, ``A``), which ``re`` searches fast. Every numeric kind is
found in one pass over a *shape* of the text (digits → ``0``, letters → ``a``/``A``/``f``/``F``,
phone and address punctuation kept, everything else → ``_``): the pattern starts with the
literal ``0`` and captures, at the start of each digit run, every kind that could begin there.
Candidates are then checked the way a person would: Luhn for card numbers, ``stdnum`` for SSNs
and IBANs, ``phonenumbers`` for phone numbers, ``ipaddress`` for IP addresses.

Choices that keep false positives low:

* phone numbers are international (``+44 20 7946 0958``, ``+14155552671``), or national numbers
  of ``regions`` (by default the US and Canada) written in the digit groups that region's
  formats use (``(415) 555-2671``, ``415.555.2671``, ``1-800-555-0199``), so dates, times and
  tables of numbers are not taken for phone numbers; a bare run of digits without ``+`` is an
  order or account number far more often than a phone number. Validity is phonenumbers' (its
  metadata, read once per region, for national numbers);
* card numbers have 13–19 digits, contiguous or in the groups cards are printed in (4-4-4-4,
  4-6-5), start like an issued card (2–6) and pass Luhn;
* SSNs are written ``123-45-6789`` or ``123 45 6789``; nine bare digits are not flagged;
* IP addresses count only when globally routable: private, loopback, link-local, multicast,
  reserved and documentation addresses (``192.168.1.1``, ``127.0.0.1``, ``0.0.0.0``,
  ``203.0.113.7``) name infrastructure or examples, not a subscriber. IPv6 is matched in the
  global unicast range (``2000::/3``). Dotted version strings (``1.2.3``, ``1.2.3.4.5``) are
  not addresses.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn

KIND_LABELS: dict[str, str] = {
    "email": "E-mail address",
    "phone": "Phone number",
    "credit_card": "Payment card number",
    "us_ssn": "US Social Security number",
    "iban": "IBAN (bank account)",
    "aws_access_key": "AWS access key ID",
    "ip_address": "IP address",
}
MAX_EXAMPLES = 3
DEFAULT_PHONE_REGIONS = ("US", "CA")  # one numbering plan, one way of writing numbers


@dataclass(frozen=True)
class PiiFinding:
    kind: str
    label: str
    count: int
    examples: tuple[str, ...]  # masked, never the raw value


@dataclass(frozen=True)
class PiiMatch:
    """One detected value. ``value`` is the raw text: show or store only ``masked``."""

    kind: str
    value: str
    masked: str


def _shape_table() -> bytes:
    table = bytearray(b"_" * 256)
    for c in b"0123456789":
        table[c] = ord("0")
    for lower in range(ord("a"), ord("z") + 1):
        hexdigit = lower <= ord("f")
        table[lower] = ord("f") if hexdigit else ord("a")
        table[lower - 32] = ord("F") if hexdigit else ord("A")
    for c in b" -.():+":
        table[c] = c
    return bytes(table)


_SHAPE = _shape_table()
_ALNUM_SHAPES = frozenset(b"0aAfF")

# Applied to the shape, at the first digit of a run. Each kind is optional and captured by a
# lookahead, so one match reports every kind that could start there; the conditional at the end
# fails the match when none does, and the gate before the kinds throws out, in C, a digit run
# that no other digit group follows, so ordinary numbers cost no Python work. {national} is the
# national phone formats of the scanner's regions (see ``_national_pattern``).
_NUMERIC_TEMPLATE = rb"""
    0(?<!00)
    (?:
        (?<=[AF][AF]0)(?=(?P<iban>0(?:\ ?[AF0]{4}){2,7}(?:\ ?[AF0]{1,3})?))
      | (?<![aAfF.]0)
        (?:(?=0{12}|[0fF]{3}:|0{0,5}(?:[\ .-]\(?0|\)[\ .-]?\(?0))|(?<=\+0))   # the gate
        (?:(?=(?P<card>
            0{12,18}(?!0)                                               # 13-19 digits
          | 000(?P<c1>[\ -])0000(?P=c1)0000(?P=c1)0{1,4}(?:(?P=c1)000)?(?!0)  # 4-4-4-4(-3)
          | 000(?P<c2>[\ -])000000(?P=c2)0{4,5}(?!0)                     # 4-6-5, 4-6-4
        ))|)
        (?:(?=(?P<ssn>00(?P<sep>[\ -])00(?P=sep)0000))|)
        (?:(?=(?P<ip4>0{0,2}\.0{1,3}\.0{1,3}\.0{1,3}))|)
        (?:(?=(?P<ip6>[0fF]{3}(?::[0fF]{0,4}){2,7}))|)
        (?:(?=(?P<phone>
            (?<=\+0)[0\ .()-]{5,20}                      # after "+" and a digit: international
          | (?!000[-.]00?[-.]00?(?!0)|0?[-.]00?[-.]0000(?!0))   # not a date: 2024-01-15, 1.2.2024
            (?:{national})
        ))|)
        (?(card)|(?(ssn)|(?(ip4)|(?(ip6)|(?(phone)|(?!))))))
    )
"""
_GROUP_SEPARATOR = rb"(?:\)[\ .-]?|[\ .-]\(?)"  # "(415) 555", "415-555", "1 (800)"


def _national_pattern(regions: Sequence[_PhoneRegion]) -> bytes:
    """Shape patterns for the digit groups of the regions' national formats (the first digit
    already consumed), with the trunk prefix written into the first group or as a group of its
    own; only groupings whose digit count can be a valid length."""
    variants: set[tuple[tuple[int, int], ...]] = set()
    for region in regions:
        trunk = len(region.prefix)
        for ranges in region.groupings:
            candidates = [(ranges, region.lengths)]
            if trunk:
                longer = frozenset(n + trunk for n in region.lengths)
                first = ((ranges[0][0] + trunk, ranges[0][1] + trunk),)
                candidates += [(first + ranges[1:], longer), (((trunk, trunk), *ranges), longer)]
            for groups, lengths in candidates:
                low, high = sum(lo for lo, _ in groups), sum(hi for _, hi in groups)
                if len(groups) > 1 and any(low <= n <= high for n in lengths):
                    variants.add(groups)
    alternatives = []
    for groups in sorted(variants, key=lambda g: (-len(g), g)):
        (lo, hi), rest = groups[0], groups[1:]
        parts = [b"0{%d,%d}" % (max(lo - 1, 0), hi - 1)]
        parts += [_GROUP_SEPARATOR + b"0{%d,%d}" % (lo, hi) for lo, hi in rest]
        alternatives.append(b"".join(parts) + b"(?!0)")
    return b"|".join(alternatives) or b"(?!)"


@functools.cache
def _numeric_pattern(regions: tuple[str, ...]) -> re.Pattern[bytes]:
    loaded = [_PhoneRegion.load(region) for region in regions]
    national = _national_pattern(loaded)
    return re.compile(_NUMERIC_TEMPLATE.replace(b"{national}", national), re.VERBOSE)


# Bytes 0x80-0xff are UTF-8 letters of internationalised addresses (müller@bücher.de).
_EMAIL_DOMAIN = re.compile(
    rb"@((?:[A-Za-z0-9\x80-\xff](?:[A-Za-z0-9\x80-\xff-]{0,61}[A-Za-z0-9\x80-\xff])?\.)+"
    rb"[A-Za-z]{2,24})(?![A-Za-z0-9\x80-\xff-])"
)
_EMAIL_LOCAL = re.compile(rb"[A-Za-z0-9_%+\x80-\xff-][A-Za-z0-9._%+\x80-\xff-]{0,63}\Z")
_AWS_KEY = re.compile(rb"A(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])")
_DIGIT_GROUP = re.compile(rb"[0-9]+")
_FORMAT_GROUP = re.compile(r"\\d(?:\{(\d+)(?:,(\d+))?\})?")  # "\d{3}", "\d{2,4}", "\d" in a format
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NOT_PUBLIC_FIRST_OCTETS = frozenset(b"%d" % n for n in (0, 10, 127, *range(224, 256)))
# Not a subscriber's address: this network, private, shared (CGNAT), loopback, link-local,
# IETF protocol assignments, documentation, benchmarking, multicast, reserved, broadcast.
_NOT_PUBLIC_V4 = tuple(
    (int(net.network_address), int(net.broadcast_address))
    for net in map(
        ipaddress.IPv4Network,
        (
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            "240.0.0.0/4",
        ),
    )
)


_DIGITS = "0123456789"
_ALNUM = _DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _mask_chars(value: str, keep: Callable[[int, int], bool], counted: str) -> str:
    """``value`` with the i-th of its n ``counted`` characters starred unless ``keep(i, n)``;
    separators stay, so the masked value keeps its written shape."""
    n = sum(ch in counted for ch in value)
    out, i = [], 0
    for ch in value:
        if ch in counted:
            out.append(ch if keep(i, n) else "*")
            i += 1
        else:
            out.append(ch)
    return "".join(out)


def _mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    body, _, tld = domain.rpartition(".")
    if len(local) == 1:
        return f"*@{body[0]}{'*' * (len(body) - 1)}.{tld}"
    return f"{local[0]}{'*' * (len(local) - 1)}@{body[0]}{'*' * (len(body) - 1)}.{tld}"


def _mask_ip(value: str) -> str:
    head, sep, tail = value.partition("." if "." in value else ":")
    return head + sep + "".join("*" if ch in _ALNUM else ch for ch in tail)


_MASKS: dict[str, Callable[[str], str]] = {
    "email": _mask_email,
    "phone": lambda v: _mask_chars(v, lambda i, n: i >= n - 2, _DIGITS),
    "credit_card": lambda v: _mask_chars(v, lambda i, n: i >= n - 4, _DIGITS),
    "us_ssn": lambda v: _mask_chars(v, lambda i, n: i >= n - 4, _DIGITS),
    "iban": lambda v: _mask_chars(v, lambda i, n: i < 2 or i >= n - 4, _ALNUM),
    "aws_access_key": lambda v: v[:4] + "*" * (len(v) - 8) + v[-4:],
    "ip_address": _mask_ip,
}


def mask(kind: str, value: str) -> str:
    """``value`` of ``kind`` with all but a few characters replaced by ``*``."""
    return _MASKS[kind](value)


class _Detector:
    """Finds spans of PII in UTF-8 bytes; see the module docstring for the rules."""

    def __init__(self, regions: Sequence[str]) -> None:
        self._regions = [_PhoneRegion.load(region) for region in regions]
        self._numeric_re = _numeric_pattern(tuple(r.code for r in self._regions))

    def find(self, data: bytes) -> Iterator[tuple[str, int, int]]:
        claimed: list[tuple[int, int]] = []
        if b"@" in data:
            for span in self._emails(data):
                claimed.append(span)
                yield "email", *span
        if b"KIA" in data or b"SIA" in data:
            for m in _AWS_KEY.finditer(data):
                s = m.start()
                if s == 0 or _SHAPE[data[s - 1]] not in _ALNUM_SHAPES:
                    claimed.append(m.span())
                    yield "aws_access_key", *m.span()
        shape = data.translate(_SHAPE)
        free_from = 0
        for m in self._numeric_re.finditer(shape):
            if m.start() < free_from:
                continue
            found = self._numeric(data, shape, m)
            if found is None:
                continue
            kind, s, e = found
            if any(cs < e and s < ce for cs, ce in claimed):
                continue
            free_from = e
            yield kind, s, e

    @staticmethod
    def _emails(data: bytes) -> Iterator[tuple[int, int]]:
        for m in _EMAIL_DOMAIN.finditer(data):
            at = m.start()
            local = _EMAIL_LOCAL.search(data, max(0, at - 64), at)
            if local is not None:
                yield local.start(), m.end()

    def _numeric(
        self, data: bytes, shape: bytes, m: re.Match[bytes]
    ) -> tuple[str, int, int] | None:
        start = m.start()
        if (end := m.end("iban")) >= 0:
            return self._iban(data, shape, start - 2, end)
        if (end := m.end("card")) >= 0 and _ends_cleanly(shape, end):
            digits = data[start:end].replace(b" ", b"").replace(b"-", b"").decode()
            if digits[0] in "23456" and luhn.is_valid(digits):
                return "credit_card", start, end
        end = m.end("ssn")
        if end >= 0 and _ends_cleanly(shape, end) and ssn.is_valid(_text(data, start, end)):
            return "us_ssn", start, end
        end = m.end("ip4")
        if end >= 0 and _ends_cleanly(shape, end):
            # Shaped like an IPv4 address: it is one or nothing (not a phone number).
            return ("ip_address", start, end) if _is_public_ipv4(data[start:end]) else None
        if (end := m.end("ip6")) >= 0 and data[start] in b"23":
            if data[end - 1 : end] == b":" and data[end - 2 : end] != b"::":
                end -= 1  # a colon that ends a sentence, not the address
            if _ends_cleanly(shape, end) and _is_public_ipv6(data[start:end].decode()):
                return "ip_address", start, end
        if m.end("phone") >= 0:
            return self._phone(data, shape, start, m.end("phone"))
        return None

    @staticmethod
    def _iban(data: bytes, shape: bytes, start: int, end: int) -> tuple[str, int, int] | None:
        if start > 0 and shape[start - 1] in _ALNUM_SHAPES:
            return None
        # The last groups may be a following word ("… 0130 00 AND"): retry without them.
        while end - start >= 15:
            if _ends_cleanly(shape, end) and iban.is_valid(data[start:end].decode()):
                return "iban", start, end
            cut = data.rfind(b" ", start, end)
            if cut < 0:
                return None
            end = cut
        return None

    def _phone(
        self, data: bytes, shape: bytes, start: int, end: int
    ) -> tuple[str, int, int] | None:
        lead = data[start - 1 : start]
        international = lead == b"+"
        if lead in (b"+", b"("):
            start -= 1
        if start > 0 and shape[start - 1] in _ALNUM_SHAPES:
            return None
        groups = [g.span() for g in _DIGIT_GROUP.finditer(data, start, end)]
        if not international:  # the pattern matched a region's grouping exactly
            end = groups[-1][1]
            digits = "".join(data[s:e].decode() for s, e in groups)
            sizes = [e - s for s, e in groups]
            if _ends_cleanly(shape, end) and self._national(digits, sizes):
                return "phone", start, end
            return None
        # A trailing number ("… 2671 2 times") may have joined the candidate: retry without it.
        for k in range(len(groups), max(len(groups) - 3, 0), -1):
            end = groups[k - 1][1]
            digits = "".join(data[s:e].decode() for s, e in groups[:k])
            if (
                7 <= len(digits) <= 15
                and _ends_cleanly(shape, end)
                and _valid_international(digits)
            ):
                return "phone", start, end
        return None

    def _national(self, digits: str, sizes: list[int]) -> bool:
        return any(region.matches(digits, sizes) for region in self._regions)


@dataclass(frozen=True)
class _PhoneRegion:
    """What a national phone number of one region looks like, from phonenumbers' metadata:
    its possible lengths, its trunk prefix, and the digit groups its formats write."""

    code: str
    country_code: int
    lengths: frozenset[int]
    prefix: str
    simple_prefix: bool  # the trunk prefix is just stripped, no rewriting rule
    groupings: tuple[tuple[tuple[int, int], ...], ...]
    general: _NumberDesc
    types: tuple[_NumberDesc, ...]  # fixed line, mobile, toll free, …

    @classmethod
    def load(cls, region: str) -> _PhoneRegion:
        code = region.upper()
        meta = phonenumbers.PhoneMetadata.metadata_for_region(code)
        if meta is None or meta.general_desc is None:
            raise ValueError(f"unknown phone region {region!r}")
        formats = meta.number_format
        if not formats and meta.country_code is not None:
            # Like phonenumbers: a region without formats (Canada) uses its country's main
            # region's (the US).
            main = phonenumbers.region_code_for_country_code(meta.country_code)
            main_meta = phonenumbers.PhoneMetadata.metadata_for_region(main)
            formats = main_meta.number_format if main_meta is not None else []
        groupings = {
            tuple(
                (int(lo or 1), int(hi or lo or 1))
                for lo, hi in _FORMAT_GROUP.findall(f.pattern or "")
            )
            for f in formats
        }
        prefix = meta.national_prefix or ""
        return cls(
            code=code,
            country_code=meta.country_code or 0,
            lengths=frozenset(meta.general_desc.possible_length or ()),
            prefix=prefix,
            simple_prefix=meta.national_prefix_for_parsing in (None, prefix)
            and meta.national_prefix_transform_rule is None,
            groupings=tuple(sorted(groupings)),
            general=_NumberDesc.of(meta.general_desc),
            types=tuple(
                _NumberDesc.of(desc)
                for desc in (getattr(meta, name) for name in _NUMBER_TYPES)
                if desc is not None and desc.national_number_pattern
            ),
        )

    def is_valid(self, significant: str) -> bool:
        """``phonenumbers.is_valid_number_for_region`` for a national significant number, from
        the same metadata (it matches the general description and one number type), without
        its per-call cost."""
        return self.general.matches(significant) and any(t.matches(significant) for t in self.types)

    def matches(self, digits: str, sizes: list[int]) -> bool:
        """Whether ``digits``, written in groups of ``sizes``, is a valid number of this
        region written the way the region writes it."""
        trunk = len(self.prefix) if self.prefix and digits.startswith(self.prefix) else 0
        plain = len(digits) in self.lengths
        stripped = trunk > 0 and len(digits) - trunk in self.lengths
        if not (plain or stripped):
            return False
        if not any(_fits(sizes, ranges, trunk) for ranges in self.groupings):
            return False
        if self.simple_prefix and plain != stripped:
            significant = digits[trunk:] if stripped else digits
            if not significant.startswith("0"):  # else Italy-style leading zeros: parse
                return self.is_valid(significant)
        return _valid_in_region(digits, self.code)


_NUMBER_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


@dataclass(frozen=True)
class _NumberDesc:
    lengths: frozenset[int]  # empty: any length the general description allows
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, desc: phonenumbers.PhoneNumberDesc) -> _NumberDesc:
        lengths = frozenset(desc.possible_length or ())
        return cls(lengths, re.compile(f"(?:{desc.national_number_pattern or '(?!)'})"))

    def matches(self, significant: str) -> bool:
        if self.lengths and len(significant) not in self.lengths:
            return False
        return self.pattern.fullmatch(significant) is not None


@functools.lru_cache(maxsize=4096)
def _valid_in_region(digits: str, region: str) -> bool:
    parsed = _parse_phone(digits, region)
    return parsed is not None and phonenumbers.is_valid_number_for_region(parsed, region)


@functools.lru_cache(maxsize=4096)
def _valid_international(digits: str) -> bool:
    """``+digits`` is a valid number: first in its country's main region (one check), then
    in any region of its country code (``is_valid_number`` tries them all)."""
    parsed = _parse_phone("+" + digits, None)
    if parsed is None or parsed.country_code is None:
        return False
    main = phonenumbers.region_code_for_country_code(parsed.country_code)
    return phonenumbers.is_valid_number_for_region(parsed, main) or phonenumbers.is_valid_number(
        parsed
    )


def _fits(sizes: list[int], ranges: tuple[tuple[int, int], ...], trunk: int) -> bool:
    """Groups as written match a format's groups, the trunk prefix ("0", "1") either written
    into the first group ("020 7946 0958") or as a group of its own ("1-800-555-0199")."""
    if trunk and sizes[0] == trunk:
        sizes = sizes[1:]
        trunk = 0
    if len(sizes) != len(ranges):
        return False
    (lo, hi), first = ranges[0], sizes[0]
    if not (lo <= first <= hi or lo <= first - trunk <= hi):
        return False
    return all(lo <= size <= hi for size, (lo, hi) in zip(sizes[1:], ranges[1:], strict=True))


def _text(data: bytes, start: int, end: int) -> str:
    """The ASCII value in ``data[start:end]``, with spaces as dashes (an SSN's separators)."""
    return data[start:end].decode("ascii").replace(" ", "-")


def _ends_cleanly(shape: bytes, end: int) -> bool:
    """Nothing at ``end`` continues the value: no letter or digit, no ``.5`` or ``-5``."""
    if end >= len(shape):
        return True
    after = shape[end]
    if after in _ALNUM_SHAPES:
        return False
    return not (after in b".-" and shape[end + 1 : end + 2] == b"0")


def _is_public_ipv4(text: bytes) -> bool:
    """Whether a dotted quad is a public unicast address (IANA special-purpose ranges are not),
    without the cost of ``ipaddress`` on every IP-shaped token."""
    parts = text.split(b".")
    if parts[0] in _NOT_PUBLIC_FIRST_OCTETS:
        return False
    if any(len(p) > 1 and p[0] == 48 for p in parts):  # "010.1.1.1" is not written by anyone
        return False
    a, b, c, d = map(int, parts)
    if max(a, b, c, d) > 255:
        return False
    value = a << 24 | b << 16 | c << 8 | d
    return not any(low <= value <= high for low, high in _NOT_PUBLIC_V4)


def _is_public_ipv6(text: str) -> bool:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return address in _GLOBAL_UNICAST and address.is_global and not address.is_multicast


def _parse_phone(number: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None


def find_pii(text: str, *, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Iterator[PiiMatch]:
    """Every PII value in ``text``, raw and masked. For tests and redaction: a caller that
    keeps results must keep only ``masked``."""
    data = text.encode("utf-8", "surrogatepass")
    for kind, start, end in _Detector(regions).find(data):
        value = data[start:end].decode("utf-8", "replace")
        yield PiiMatch(kind, value, mask(kind, value))


class PiiScanner:
    """Accumulates, over any number of texts, how often each kind of PII occurs and up to
    ``MAX_EXAMPLES`` distinct masked examples of it. Raw values are never kept.

    ``regions`` are the countries whose national phone formats count (numbers written with
    ``+`` and a country code count for every country)."""

    def __init__(self, *, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> None:
        self._detector = _Detector(regions)
        self._counts: dict[str, int] = {}
        self._examples: dict[str, list[str]] = {}

    def scan(self, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        for kind, start, end in self._detector.find(data):
            self._counts[kind] = self._counts.get(kind, 0) + 1
            examples = self._examples.setdefault(kind, [])
            if len(examples) < MAX_EXAMPLES:
                masked = mask(kind, data[start:end].decode("utf-8", "replace"))
                if masked not in examples:
                    examples.append(masked)

    def findings(self) -> dict[str, PiiFinding]:
        """One finding per kind found, in a fixed order (e-mail, phone, card, …)."""
        return {
            kind: PiiFinding(kind, label, self._counts[kind], tuple(self._examples[kind]))
            for kind, label in KIND_LABELS.items()
            if kind in self._counts
        }
