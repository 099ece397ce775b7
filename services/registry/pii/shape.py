"""The byte shape of text (digits → ``0``, letters → ``a``/``A``/``f``/``F``, phone and address
punctuation kept, everything else → ``_``) and the one numeric pattern searched in it."""

from __future__ import annotations

import functools
import re

from services.registry.pii.phones import PhoneRegion, national_pattern


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


SHAPE = _shape_table()
ALNUM_SHAPES = frozenset(b"0aAfF")

# Applied to the shape, at the first digit of a run. Each kind is optional and captured by a
# lookahead, so one match reports every kind that could start there; the conditional at the end
# fails the match when none does, and the gate before the kinds throws out, in C, a digit run
# that no other digit group follows, so ordinary numbers cost no Python work. {national} is the
# national phone formats of the scanner's regions (see ``phones.national_pattern``).
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


@functools.cache
def numeric_pattern(regions: tuple[str, ...]) -> re.Pattern[bytes]:
    loaded = [PhoneRegion.load(region) for region in regions]
    national = national_pattern(loaded)
    return re.compile(_NUMERIC_TEMPLATE.replace(b"{national}", national), re.VERBOSE)


def ends_cleanly(shape: bytes, end: int) -> bool:
    """Nothing at ``end`` continues the value: no letter or digit, no ``.5`` or ``-5``."""
    if end >= len(shape):
        return True
    after = shape[end]
    if after in ALNUM_SHAPES:
        return False
    return not (after in b".-" and shape[end + 1 : end + 2] == b"0")
