"""Decoding one line of a log file into the record ``records`` reads.

A LiteLLM record is about 4 KB of JSON of which the portal reads a few hundred bytes, so its
lines are decoded with ``msgspec`` into dicts holding only the fields ``records.litellm_values``
reads (skipping the rest costs far less than building it). Anything that typed decoder refuses
(a field of another type, a list of records, bad JSON) is decoded again by ``orjson`` into the
whole document, and a record the portal would reject is judged again on its whole document
(``batches.Collector``), so every reason to reject one is worded exactly as without the
shortcut. Text the shortcut skips is still checked to be UTF-8, as ``orjson`` does. One line
is let through that ``orjson`` refuses: a number too large for a double in a field the portal
does not read (no JSON encoder writes one; Python's writes ``Infinity``, refused by both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, TypedDict

import msgspec
import orjson

from models.usage import UsageSource

JSONDecodeError = orjson.JSONDecodeError


Text = str | None
"""A field read as text: any other type (a number, say, which ``records`` writes out with
``str``) is left to the whole-document path."""
Number = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | float | None
"""A field read as a number: an integer beyond 64 bits (which ``orjson`` makes a float) is
left to the whole-document path. Fields typed ``Any`` are those where any value the typed
decoder gives leads to the same row or to a rejection (judged again on the whole document)."""


class _Metadata(TypedDict, total=False):
    user_api_key_team_alias: Text
    user_api_key_team_id: Text
    user_api_key_user_id: Text
    user_api_key_alias: Text
    user_api_key_hash: Text
    usage_object: Any


class _Response(TypedDict, total=False):
    usage: Any


class _ErrorInformation(TypedDict, total=False):
    error_class: Text
    error_code: Text


class LiteLLMFields(TypedDict, total=False):
    """The fields of a ``standard_logging_object`` that ``records.litellm_values`` reads."""

    id: Text
    litellm_call_id: Text
    startTime: Any
    metadata: _Metadata | None
    prompt_tokens: Any
    completion_tokens: Any
    status: Any
    error_information: _ErrorInformation | None
    error_str: Text
    request_tags: list[Text] | None
    response_cost: Number
    response_cost_failure_debug_info: Any
    model: Text
    custom_llm_provider: Text
    cache_hit: Any
    end_user: Text
    response: _Response | None


_LITELLM = msgspec.json.Decoder(LiteLLMFields)


def loads_litellm(line: bytes | bytearray) -> Any:
    """A LiteLLM line as a dict of the fields the portal reads (a whole document when the
    typed decoder refuses it). Raises ``JSONDecodeError`` (``orjson``'s) for bad JSON."""
    try:
        if not line.isascii():
            line.decode()  # the typed decoder does not check the text it skips
        return _LITELLM.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return orjson.loads(line)


def loads_litellm_ascii(line: bytes | bytearray | memoryview) -> Any:
    """``loads_litellm`` for a line known to be ASCII (a view into a block of the file)."""
    try:
        return _LITELLM.decode(line)
    except msgspec.DecodeError:
        return orjson.loads(line)


class Decoders(NamedTuple):
    """How to decode a line of one source's logs: any line, and a line known to be ASCII
    (which may be a ``memoryview``)."""

    loads: Callable[[bytes | bytearray], Any]
    loads_ascii: Callable[[bytes | bytearray | memoryview], Any]


def decoders_for(source: UsageSource) -> Decoders:
    """How to decode a line of ``source``'s logs."""
    if source is UsageSource.LITELLM:
        return Decoders(loads_litellm, loads_litellm_ascii)
    return Decoders(orjson.loads, orjson.loads)
