"""Turn pydantic's reports on user input into the portal's ``ValidationError``, with one
plain message per field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from pydantic_core import ErrorDetails

from services.errors import ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)


def field_label(name: str) -> str:
    return name.removesuffix("_id").replace("_", " ").capitalize()


def _plain(err: ErrorDetails) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else (f"must be at least {ctx.get('min_length')} characters")
        )
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "missing":
        return "is required"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind == "decimal_max_places":
        return f"may have at most {ctx.get('decimal_places')} decimal places"
    if kind == "decimal_max_digits":
        return "is too large"
    if kind in ("decimal_parsing", "float_parsing", "int_parsing"):
        return "must be a number"
    return str(err["msg"]).removeprefix("Value error, ")


def parse(model: type[M], data: Mapping[str, Any]) -> M:
    """Validate ``data`` as ``model`` or raise ``ValidationError`` naming each bad field."""
    try:
        return model.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "input"
            fields.setdefault(name, _plain(err))
        summary = "; ".join(f"{field_label(k)}: {v}" for k, v in fields.items())
        raise ValidationError(f"{summary}.", fields=fields) from None
