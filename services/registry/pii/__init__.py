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

The package: ``detector`` finds and checks candidates, ``shape`` holds the byte shape and the
numeric pattern searched in it, ``phones`` the phone-number metadata and checks, ``masking``
the masks. This module is the public API.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from services.registry.pii.detector import Detector
from services.registry.pii.masking import mask

__all__ = [
    "DEFAULT_PHONE_REGIONS",
    "KIND_LABELS",
    "MAX_EXAMPLES",
    "PiiFinding",
    "PiiMatch",
    "PiiScanner",
    "find_pii",
    "mask",
]

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


def find_pii(text: str, *, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Iterator[PiiMatch]:
    """Every PII value in ``text``, raw and masked. For tests and redaction: a caller that
    keeps results must keep only ``masked``."""
    data = text.encode("utf-8", "surrogatepass")
    for kind, start, end in Detector(regions).find(data):
        value = data[start:end].decode("utf-8", "replace")
        yield PiiMatch(kind, value, mask(kind, value))


class PiiScanner:
    """Accumulates, over any number of texts, how often each kind of PII occurs and up to
    ``MAX_EXAMPLES`` distinct masked examples of it. Raw values are never kept.

    ``regions`` are the countries whose national phone formats count (numbers written with
    ``+`` and a country code count for every country)."""

    def __init__(self, *, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> None:
        self._detector = Detector(regions)
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
