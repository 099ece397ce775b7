"""Masking of detected values: all but a few characters starred, the written shape kept."""

from __future__ import annotations

from collections.abc import Callable

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
