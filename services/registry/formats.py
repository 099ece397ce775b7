"""The record formats a fine-tuning dataset can have, and the check of one parsed record.

``check_record`` answers in one short sentence what is wrong with a record (``None`` when it is
fine); ``record_texts`` lists the text a valid record carries (for token estimates and the PII
scan); ``detect_format`` guesses the format from the first records of a file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

BEDROCK_SCHEMA_VERSION = "bedrock-conversation-2024"


class DatasetFormat(StrEnum):
    BEDROCK_PROMPT_COMPLETION = "bedrock-prompt-completion"
    BEDROCK_CONVERSATION = "bedrock-conversation"
    CONTINUED_PRETRAINING = "continued-pretraining"
    CHAT = "chat"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_LABELS = {
    DatasetFormat.BEDROCK_PROMPT_COMPLETION: "Bedrock prompt–completion",
    DatasetFormat.BEDROCK_CONVERSATION: "Bedrock conversation",
    DatasetFormat.CONTINUED_PRETRAINING: "Continued pre-training",
    DatasetFormat.CHAT: "Chat messages (Hugging Face)",
}
_DESCRIPTIONS = {
    DatasetFormat.BEDROCK_PROMPT_COMPLETION: (
        'One {"prompt": …, "completion": …} pair per line, for Bedrock fine-tuning.'
    ),
    DatasetFormat.BEDROCK_CONVERSATION: (
        f'One "{BEDROCK_SCHEMA_VERSION}" conversation per line: optional system prompt, '
        "then user and assistant turns."
    ),
    DatasetFormat.CONTINUED_PRETRAINING: 'One {"input": …} text per line, unlabelled.',
    DatasetFormat.CHAT: (
        'One {"messages": [{"role", "content"}, …]} conversation per line, '
        "optional system message first."
    ),
}

_TYPE_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "int",
    float: "float",
    bool: "boolean",
    type(None): "null",
}


def type_name(value: object) -> str:
    """The JSON name of a parsed value's type, as reasons quote it."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _not_text(where: str, value: object) -> str | None:
    """Why ``value`` is not a non-empty string, or None when it is one."""
    if type(value) is str:
        if value and not value.isspace():
            return None
        return f"{where} must be a non-empty string, got an empty string"
    return f"{where} must be a non-empty string, got {type_name(value)}"


def _not_object(where: str, value: object) -> str | None:
    if type(value) is dict:
        return None
    return f"{where} must be an object, got {type_name(value)}"


def _not_list(where: str, value: object) -> str | None:
    if type(value) is not list:
        return f"{where} must be an array, got {type_name(value)}"
    if not value:
        return f"{where} must not be empty"
    return None


def _check_prompt_completion(obj: dict[str, Any], texts: list[str]) -> str | None:
    for key in ("prompt", "completion"):
        if key not in obj:
            return f"missing key {key!r}"
        value = obj[key]
        if reason := _not_text(repr(key), value):
            return reason
        texts.append(value)
    return None


def _check_pretraining(obj: dict[str, Any], texts: list[str]) -> str | None:
    if "input" not in obj:
        return "missing key 'input'"
    value = obj["input"]
    if reason := _not_text("'input'", value):
        return reason
    texts.append(value)
    return None


def _check_chat(obj: dict[str, Any], texts: list[str]) -> str | None:
    if "messages" not in obj:
        return "missing key 'messages'"
    messages = obj["messages"]
    if reason := _not_list("'messages'", messages):
        return reason
    offset = 1 if _role_of(messages[0]) == "system" else 0
    role: object = ""
    for i, message in enumerate(messages):
        # The common, valid case builds no strings; reasons are written only for a defect.
        if type(message) is not dict or "content" not in message:
            return _message_shape(i, message)
        role = message.get("role", _MISSING)
        expected = "system" if i < offset else ("user", "assistant")[(i - offset) % 2]
        content = message["content"]
        if role != expected or type(content) is not str or not content or content.isspace():
            return _message_problem(i, role, expected, content, _CHAT_ROLES)
        texts.append(content)
    if role != "assistant":
        return f"the last message must be from 'assistant', got {role!r}"
    return None


_CHAT_ROLES = ("system", "user", "assistant")
_MISSING = object()
_BEDROCK_ROLES = ("user", "assistant")


def _role_of(message: object) -> object:
    return message.get("role") if type(message) is dict else None


def _message_shape(i: int, message: object) -> str:
    if type(message) is not dict:
        return f"messages[{i}] must be an object, got {type_name(message)}"
    if "role" not in message:
        return f"messages[{i}] is missing key 'role'"
    return f"messages[{i}] is missing key 'content'"


def _message_problem(
    i: int, role: object, expected: str, content: object, roles: tuple[str, ...]
) -> str:
    where = f"messages[{i}]"
    if role is _MISSING:
        return f"{where} is missing key 'role'"
    if type(role) is not str:
        return f"{where}.role must be a string, got {type_name(role)}"
    if role not in roles:
        allowed = ", ".join(map(repr, roles))
        hint = " (put the system prompt in 'system')" if role == "system" else ""
        return f"{where}.role {role!r} is not one of {allowed}{hint}"
    if role != expected:
        return f"{where}.role is {role!r} but {expected!r} was expected"
    return _not_text(f"{where}.content", content) or f"{where}.content is invalid"


def _text_blocks(blocks: object, texts: list[str]) -> str | None:
    """What is wrong with a list of ``{"text": …}`` blocks, as the end of a sentence that
    starts with the list's path, or None."""
    if type(blocks) is not list:
        return f" must be an array, got {type_name(blocks)}"
    if not blocks:
        return " must not be empty"
    for j, block in enumerate(blocks):
        if type(block) is not dict:
            return f"[{j}] must be an object, got {type_name(block)}"
        if "text" not in block:
            return f"[{j}] is missing key 'text'"
        text = block["text"]
        if type(text) is not str or not text or text.isspace():
            return _not_text(f"[{j}].text", text) or ""
        texts.append(text)
    return None


def _check_bedrock_conversation(obj: dict[str, Any], texts: list[str]) -> str | None:
    if "schemaVersion" not in obj:
        return "missing key 'schemaVersion'"
    version = obj["schemaVersion"]
    if version != BEDROCK_SCHEMA_VERSION:
        shown = repr(version) if type(version) is str else type_name(version)
        return f"'schemaVersion' must be {BEDROCK_SCHEMA_VERSION!r}, got {shown}"
    if "system" in obj and (problem := _text_blocks(obj["system"], texts)):
        return ("'system'" if problem.startswith(" ") else "system") + problem
    if "messages" not in obj:
        return "missing key 'messages'"
    messages = obj["messages"]
    if reason := _not_list("'messages'", messages):
        return reason
    role: object = ""
    for i, message in enumerate(messages):
        if type(message) is not dict or "content" not in message:
            return _message_shape(i, message)
        role = message.get("role", _MISSING)
        expected = _BEDROCK_ROLES[i % 2]
        if role != expected:
            return _message_problem(i, role, expected, "-", _BEDROCK_ROLES)
        if problem := _text_blocks(message["content"], texts):
            return f"messages[{i}].content{problem}"
    if role != "assistant":
        return f"the last message must be from 'assistant', got {role!r}"
    return None


_CHECKS: dict[DatasetFormat, Callable[[dict[str, Any], list[str]], str | None]] = {
    DatasetFormat.BEDROCK_PROMPT_COMPLETION: _check_prompt_completion,
    DatasetFormat.BEDROCK_CONVERSATION: _check_bedrock_conversation,
    DatasetFormat.CONTINUED_PRETRAINING: _check_pretraining,
    DatasetFormat.CHAT: _check_chat,
}


def check_record(fmt: DatasetFormat, obj: object, *, texts: list[str] | None = None) -> str | None:
    """Why the parsed JSON value ``obj`` is not a valid ``fmt`` record, or None if it is.

    When ``texts`` is given, the record's text fields are appended to it as they are checked
    (all of them for a valid record; for an invalid one, those before the defect), so a caller
    that needs both the verdict and the text walks the record once.
    """
    if type(obj) is not dict:
        return f"record must be a JSON object, got {type_name(obj)}"
    return _CHECKS[fmt](obj, [] if texts is None else texts)


def record_texts(fmt: DatasetFormat, obj: object) -> list[str]:
    """The text fields of a valid record, in order (an invalid record gives those before its
    first defect)."""
    texts: list[str] = []
    check_record(fmt, obj, texts=texts)
    return texts


# Top-level keys that point at a format even when its records have defects.
_SIGNATURES: dict[DatasetFormat, Callable[[dict[str, Any]], bool]] = {
    DatasetFormat.BEDROCK_CONVERSATION: lambda o: "schemaVersion" in o,
    DatasetFormat.CHAT: lambda o: "messages" in o and "schemaVersion" not in o,
    DatasetFormat.BEDROCK_PROMPT_COMPLETION: lambda o: "prompt" in o or "completion" in o,
    DatasetFormat.CONTINUED_PRETRAINING: lambda o: "input" in o,
}


def detect_format(first_records: Iterable[object]) -> DatasetFormat | None:
    """Best guess of the format of a file from its first parsed records, or None.

    The format most records pass wins; when no record passes any format, the one whose keys
    most records carry (``schemaVersion``, ``messages``, ``prompt``/``completion``, ``input``).
    """
    valid = dict.fromkeys(DatasetFormat, 0)
    shaped = dict.fromkeys(DatasetFormat, 0)
    for obj in first_records:
        if type(obj) is not dict:
            continue
        for fmt in DatasetFormat:
            if check_record(fmt, obj) is None:
                valid[fmt] += 1
            if _SIGNATURES[fmt](obj):
                shaped[fmt] += 1
    best = max(DatasetFormat, key=lambda f: (valid[f], shaped[f]))
    if valid[best] == 0 and shaped[best] == 0:
        return None
    return best
