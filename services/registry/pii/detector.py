"""The detector: finds the spans of every kind of PII in UTF-8 bytes and checks each candidate
(Luhn, ``stdnum``, phonenumbers, ``ipaddress``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence

from stdnum import iban, luhn
from stdnum.us import ssn

from services.registry.pii.phones import PhoneRegion, valid_international
from services.registry.pii.shape import ALNUM_SHAPES, SHAPE, ends_cleanly, numeric_pattern

# Bytes 0x80-0xff are UTF-8 letters of internationalised addresses (müller@bücher.de).
_EMAIL_DOMAIN = re.compile(
    rb"@((?:[A-Za-z0-9\x80-\xff](?:[A-Za-z0-9\x80-\xff-]{0,61}[A-Za-z0-9\x80-\xff])?\.)+"
    rb"[A-Za-z]{2,24})(?![A-Za-z0-9\x80-\xff-])"
)
_EMAIL_LOCAL = re.compile(rb"[A-Za-z0-9_%+\x80-\xff-][A-Za-z0-9._%+\x80-\xff-]{0,63}\Z")
_AWS_KEY = re.compile(rb"A(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])")
_DIGIT_GROUP = re.compile(rb"[0-9]+")
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


class Detector:
    """Finds spans of PII in UTF-8 bytes; see the package docstring for the rules."""

    def __init__(self, regions: Sequence[str]) -> None:
        self._regions = [PhoneRegion.load(region) for region in regions]
        self._numeric_re = numeric_pattern(tuple(r.code for r in self._regions))

    def find(self, data: bytes) -> Iterator[tuple[str, int, int]]:
        claimed: list[tuple[int, int]] = []
        if b"@" in data:
            for span in self._emails(data):
                claimed.append(span)
                yield "email", *span
        if b"KIA" in data or b"SIA" in data:
            for m in _AWS_KEY.finditer(data):
                s = m.start()
                if s == 0 or SHAPE[data[s - 1]] not in ALNUM_SHAPES:
                    claimed.append(m.span())
                    yield "aws_access_key", *m.span()
        shape = data.translate(SHAPE)
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
        if (end := m.end("card")) >= 0 and ends_cleanly(shape, end):
            digits = data[start:end].replace(b" ", b"").replace(b"-", b"").decode()
            if digits[0] in "23456" and luhn.is_valid(digits):
                return "credit_card", start, end
        end = m.end("ssn")
        if end >= 0 and ends_cleanly(shape, end) and ssn.is_valid(_text(data, start, end)):
            return "us_ssn", start, end
        end = m.end("ip4")
        if end >= 0 and ends_cleanly(shape, end):
            # Shaped like an IPv4 address: it is one or nothing (not a phone number).
            return ("ip_address", start, end) if _is_public_ipv4(data[start:end]) else None
        if (end := m.end("ip6")) >= 0 and data[start] in b"23":
            if data[end - 1 : end] == b":" and data[end - 2 : end] != b"::":
                end -= 1  # a colon that ends a sentence, not the address
            if ends_cleanly(shape, end) and _is_public_ipv6(data[start:end].decode()):
                return "ip_address", start, end
        if m.end("phone") >= 0:
            return self._phone(data, shape, start, m.end("phone"))
        return None

    @staticmethod
    def _iban(data: bytes, shape: bytes, start: int, end: int) -> tuple[str, int, int] | None:
        if start > 0 and shape[start - 1] in ALNUM_SHAPES:
            return None
        # The last groups may be a following word ("… 0130 00 AND"): retry without them.
        while end - start >= 15:
            if ends_cleanly(shape, end) and iban.is_valid(data[start:end].decode()):
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
        if start > 0 and shape[start - 1] in ALNUM_SHAPES:
            return None
        groups = [g.span() for g in _DIGIT_GROUP.finditer(data, start, end)]
        if not international:  # the pattern matched a region's grouping exactly
            end = groups[-1][1]
            digits = "".join(data[s:e].decode() for s, e in groups)
            sizes = [e - s for s, e in groups]
            if ends_cleanly(shape, end) and self._national(digits, sizes):
                return "phone", start, end
            return None
        # A trailing number ("… 2671 2 times") may have joined the candidate: retry without it.
        for k in range(len(groups), max(len(groups) - 3, 0), -1):
            end = groups[k - 1][1]
            digits = "".join(data[s:e].decode() for s, e in groups[:k])
            if 7 <= len(digits) <= 15 and ends_cleanly(shape, end) and valid_international(digits):
                return "phone", start, end
        return None

    def _national(self, digits: str, sizes: list[int]) -> bool:
        return any(region.matches(digits, sizes) for region in self._regions)


def _text(data: bytes, start: int, end: int) -> str:
    """The ASCII value in ``data[start:end]``, with spaces as dashes (an SSN's separators)."""
    return data[start:end].decode("ascii").replace(" ", "-")


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
