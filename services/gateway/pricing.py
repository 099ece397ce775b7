"""What a request cost: LiteLLM's bundled model cost map, with admin overrides that win.

The map is read as a JSON file from the installed ``litellm`` package (about 20 ms), never by
importing ``litellm`` (about 4 s), and once per process. A model with no price anywhere is
*unpriced*: its cost stays unknown, never $0.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from models.usage import PriceOverride, PriceUnit

log = logging.getLogger(__name__)

COST_MAP_FILE = "model_prices_and_context_window_backup.json"
REGION_PREFIXES = ("us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.", "us-gov.")
ROUTE_PREFIXES = ("bedrock/", "converse/", "invoke/")
_ZERO = Decimal(0)


@dataclass(frozen=True)
class ModelPrice:
    """Dollars per token; ``source`` says where the price came from."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    source: str

    def cost(
        self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int
    ) -> Decimal:
        return (
            self.input * input_tokens
            + self.output * output_tokens
            + self.cache_read * cache_read
            + self.cache_write * cache_write
        )


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Decimal(repr(value))


@lru_cache(maxsize=1)
def bundled_cost_map() -> Mapping[str, Mapping[str, Any]]:
    """LiteLLM's model cost map as shipped in the installed package ({} if it is missing)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        log.warning("litellm is not installed: no bundled model prices")
        return {}
    path = Path(spec.origin).parent / COST_MAP_FILE
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("cannot read LiteLLM's model cost map %s: %s", path, exc)
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and k != "sample_spec"}


def _bundled_price(entry: Mapping[str, Any], key: str) -> ModelPrice | None:
    prompt = _decimal(entry.get("input_cost_per_token"))
    completion = _decimal(entry.get("output_cost_per_token"))
    if prompt is None and completion is None:
        return None
    prompt = prompt or Decimal(0)
    read = _decimal(entry.get("cache_read_input_token_cost"))
    write = _decimal(entry.get("cache_creation_input_token_cost"))
    return ModelPrice(
        input=prompt,
        output=completion or Decimal(0),
        cache_read=prompt if read is None else read,
        cache_write=prompt if write is None else write,
        source=f"LiteLLM model cost map ({key})",
    )


def override_price(row: PriceOverride) -> ModelPrice:
    per = Decimal(PriceUnit(row.unit).tokens)
    prompt = row.input_price / per
    return ModelPrice(
        input=prompt,
        output=row.output_price / per,
        cache_read=prompt if row.cache_read_price is None else row.cache_read_price / per,
        cache_write=prompt if row.cache_write_price is None else row.cache_write_price / per,
        source=f"price override by {row.updated_by}",
    )


def candidate_keys(model: str) -> list[str]:
    """The names a model may go by in the cost map: as given, with and without ``bedrock/``
    and route prefixes, without a region path, and with or without a cross-region prefix."""
    names = [model]
    base = model
    while True:
        stripped = next((base[len(p) :] for p in ROUTE_PREFIXES if base.startswith(p)), None)
        if stripped is None:
            break
        base = stripped
    if "/" in base and not base.startswith("arn:"):
        base = base.rsplit("/", 1)[-1]  # bedrock/us-east-1/<id>, openai/<id>
    unprefixed = next((base[len(p) :] for p in REGION_PREFIXES if base.startswith(p)), base)
    for name in (base, f"bedrock/{base}", unprefixed, f"bedrock/{unprefixed}"):
        names.append(name)
    names.extend(f"{prefix}{unprefixed}" for prefix in REGION_PREFIXES)
    return list(dict.fromkeys(names))


class PriceBook:
    """Prices for one ingest run: the admins' overrides (as they are now) over the bundled map.
    Lookups are cached per model name."""

    def __init__(
        self,
        overrides: Iterable[PriceOverride] = (),
        cost_map: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._overrides = {row.model: override_price(row) for row in overrides}
        self._map = bundled_cost_map() if cost_map is None else cost_map
        self._cache: dict[str, ModelPrice | None] = {}

    def price_of(self, model: str) -> ModelPrice | None:
        """The price of ``model``, or None when it is unpriced."""
        if model in self._cache:
            return self._cache[model]
        found: ModelPrice | None = None
        keys = candidate_keys(model)
        for key in keys:
            if key in self._overrides:
                found = self._overrides[key]
                break
        else:
            for key in keys:
                entry = self._map.get(key)
                if entry is not None and (found := _bundled_price(entry, key)) is not None:
                    break
        self._cache[model] = found
        return found

    def price_row(self, row: dict[str, Any]) -> None:
        """Fill in ``cost`` and ``priced`` of a usage row. A cost the source logged is kept,
        except a LiteLLM $0 for tokens it did not serve from cache (its unknown-model $0).
        A request that used no tokens (refused, throttled) cost nothing."""
        row["cost"], row["priced"] = self.settle(
            row["model"],
            (
                row["input_tokens"],
                row["output_tokens"],
                row["cache_read_tokens"],
                row["cache_write_tokens"],
            ),
            row["cost"],
            row["cache_hit"],
        )

    def price_values(self, values: list[Any]) -> None:
        """``price_row`` for a row as a list in ``records.FIELDS`` order (the bulk path)."""
        values[18], values[19] = self.settle(values[8], values[14:18], values[18], values[13])

    def settle(
        self, model: str, tokens: Sequence[int], logged: Decimal | None, cache_hit: bool
    ) -> tuple[Decimal | None, bool]:
        """(cost, priced) of a request: see ``price_row``."""
        if not any(tokens) or (logged is not None and (logged > 0 or cache_hit)):
            return logged or _ZERO, True
        price = self._cache[model] if model in self._cache else self.price_of(model)
        if price is None:
            return None, False
        return price.cost(*tokens), True
