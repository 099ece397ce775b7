"""Phone numbers: each region's metadata from phonenumbers, the shape patterns of its national
formats, and the validity checks for national and international numbers."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

_FORMAT_GROUP = re.compile(r"\\d(?:\{(\d+)(?:,(\d+))?\})?")  # "\d{3}", "\d{2,4}", "\d" in a format
_GROUP_SEPARATOR = rb"(?:\)[\ .-]?|[\ .-]\(?)"  # "(415) 555", "415-555", "1 (800)"


def national_pattern(regions: Sequence[PhoneRegion]) -> bytes:
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


@dataclass(frozen=True)
class PhoneRegion:
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
    def load(cls, region: str) -> PhoneRegion:
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
def valid_international(digits: str) -> bool:
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


def _parse_phone(number: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
