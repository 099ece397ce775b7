"""Record formats: valid records pass, and each defect is named the way a user can fix it."""

from __future__ import annotations

from typing import Any

import pytest

from services.registry.formats import (
    BEDROCK_SCHEMA_VERSION,
    DatasetFormat,
    check_record,
    detect_format,
    record_texts,
)

PC = DatasetFormat.BEDROCK_PROMPT_COMPLETION
CONV = DatasetFormat.BEDROCK_CONVERSATION
CPT = DatasetFormat.CONTINUED_PRETRAINING
CHAT = DatasetFormat.CHAT


def chat(*turns: tuple[Any, Any]) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


def conversation(*turns: tuple[str, Any], system: Any = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schemaVersion": BEDROCK_SCHEMA_VERSION,
        "messages": [{"role": role, "content": [{"text": text}]} for role, text in turns],
    }
    if system is not None:
        record["system"] = system
    return record


VALID = [
    (PC, {"prompt": "What is 2+2?", "completion": "4"}),
    (PC, {"prompt": "Hi", "completion": "Hello", "id": 7}),  # extra keys are tolerated
    (CPT, {"input": "Plain text for continued pre-training."}),
    (CHAT, chat(("user", "Hi"), ("assistant", "Hello!"))),
    (CHAT, chat(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"))),
    (CHAT, chat(("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d"))),
    (CONV, conversation(("user", "Hi"), ("assistant", "Hello"))),
    (CONV, conversation(("user", "Hi"), ("assistant", "Hello"), system=[{"text": "Be kind."}])),
    (
        CONV,
        {
            "schemaVersion": BEDROCK_SCHEMA_VERSION,
            "messages": [
                {"role": "user", "content": [{"text": "part one"}, {"text": "part two"}]},
                {"role": "assistant", "content": [{"text": "answer"}]},
            ],
        },
    ),
]


@pytest.mark.parametrize(("fmt", "record"), VALID)
def test_valid_records_pass(fmt: DatasetFormat, record: dict[str, Any]) -> None:
    assert check_record(fmt, record) is None


def test_every_format_has_a_label_and_a_one_line_description() -> None:
    assert {f.value for f in DatasetFormat} == {
        "bedrock-prompt-completion",
        "bedrock-conversation",
        "continued-pretraining",
        "chat",
    }
    for fmt in DatasetFormat:
        assert fmt.label and fmt.label != fmt.value
        assert fmt.description and "\n" not in fmt.description


@pytest.mark.parametrize(
    ("fmt", "record", "reason"),
    [
        (PC, ["prompt", "completion"], "record must be a JSON object, got array"),
        (PC, "text", "record must be a JSON object, got string"),
        (CHAT, None, "record must be a JSON object, got null"),
        (PC, {"prompt": "Hi"}, "missing key 'completion'"),
        (PC, {"completion": "Hi"}, "missing key 'prompt'"),
        (PC, {"prompt": 3, "completion": "x"}, "'prompt' must be a non-empty string, got int"),
        (
            PC,
            {"prompt": "x", "completion": "  "},
            "'completion' must be a non-empty string, got an empty string",
        ),
        (CPT, {"text": "x"}, "missing key 'input'"),
        (CPT, {"input": ["x"]}, "'input' must be a non-empty string, got array"),
        (CHAT, {"conversation": []}, "missing key 'messages'"),
        (CHAT, {"messages": "Hi"}, "'messages' must be an array, got string"),
        (CHAT, {"messages": []}, "'messages' must not be empty"),
        (CHAT, {"messages": ["Hi"]}, "messages[0] must be an object, got string"),
        (CHAT, {"messages": [{"content": "Hi"}]}, "messages[0] is missing key 'role'"),
        (CHAT, {"messages": [{"role": "user"}]}, "messages[0] is missing key 'content'"),
        (
            CHAT,
            chat(("user", "Hi"), ("bot", "Hello")),
            "messages[1].role 'bot' is not one of 'system', 'user', 'assistant'",
        ),
        (CHAT, chat(("user", "Hi"), (1, "Hello")), "messages[1].role must be a string, got int"),
        (
            CHAT,
            chat(("user", ""), ("assistant", "Hello")),
            "messages[0].content must be a non-empty string, got an empty string",
        ),
        (
            CHAT,
            chat(("user", "Hi"), ("assistant", {"text": "Hello"})),
            "messages[1].content must be a non-empty string, got object",
        ),
        (CHAT, chat(("user", "Hi")), "the last message must be from 'assistant', got 'user'"),
        (
            CHAT,
            chat(("system", "Be brief.")),
            "the last message must be from 'assistant', got 'system'",
        ),
        (CONV, {"messages": []}, "missing key 'schemaVersion'"),
        (
            CONV,
            {"schemaVersion": "bedrock-conversation-2023", "messages": []},
            "'schemaVersion' must be 'bedrock-conversation-2024', got 'bedrock-conversation-2023'",
        ),
        (
            CONV,
            conversation(("user", "Hi"), ("assistant", "Yo"), system="Be kind."),
            "'system' must be an array, got string",
        ),
        (
            CONV,
            conversation(("user", "Hi"), ("assistant", "Yo"), system=[{"txt": "Be kind."}]),
            "system[0] is missing key 'text'",
        ),
        (
            CONV,
            conversation(("system", "Be kind."), ("user", "Hi")),
            "messages[0].role 'system' is not one of 'user', 'assistant' "
            "(put the system prompt in 'system')",
        ),
        (
            CONV,
            {
                "schemaVersion": BEDROCK_SCHEMA_VERSION,
                "messages": [{"role": "user", "content": "Hi"}],
            },
            "messages[0].content must be an array, got string",
        ),
        (
            CONV,
            {
                "schemaVersion": BEDROCK_SCHEMA_VERSION,
                "messages": [{"role": "user", "content": []}],
            },
            "messages[0].content must not be empty",
        ),
        (
            CONV,
            conversation(("user", "Hi"), ("assistant", "")),
            "messages[1].content[0].text must be a non-empty string, got an empty string",
        ),
        (
            CONV,
            conversation(("user", "Hi")),
            "the last message must be from 'assistant', got 'user'",
        ),
    ],
)
def test_each_defect_has_its_specific_reason(
    fmt: DatasetFormat, record: object, reason: str
) -> None:
    assert check_record(fmt, record) == reason


@pytest.mark.parametrize(
    ("fmt", "record", "reason"),
    [
        (
            CHAT,
            chat(("user", "a"), ("assistant", "b"), ("user", "c"), ("user", "d")),
            "messages[3].role is 'user' but 'assistant' was expected",
        ),
        (
            CHAT,
            chat(("assistant", "a"), ("user", "b")),
            "messages[0].role is 'assistant' but 'user' was expected",
        ),
        (
            CHAT,
            chat(("user", "a"), ("system", "b"), ("assistant", "c")),
            "messages[1].role is 'system' but 'assistant' was expected",
        ),
        (
            CHAT,
            chat(("system", "a"), ("assistant", "b")),
            "messages[1].role is 'assistant' but 'user' was expected",
        ),
        (
            CONV,
            conversation(("user", "a"), ("user", "b"), ("assistant", "c")),
            "messages[1].role is 'user' but 'assistant' was expected",
        ),
        (
            CONV,
            conversation(("assistant", "a"), ("user", "b")),
            "messages[0].role is 'assistant' but 'user' was expected",
        ),
    ],
)
def test_roles_out_of_order_name_the_message_and_the_expected_role(
    fmt: DatasetFormat, record: object, reason: str
) -> None:
    assert check_record(fmt, record) == reason


def test_a_record_of_one_format_is_rejected_by_the_others() -> None:
    record = {"prompt": "Hi", "completion": "Hello"}
    assert check_record(CHAT, record) == "missing key 'messages'"
    assert check_record(CPT, record) == "missing key 'input'"
    assert check_record(CONV, record) == "missing key 'schemaVersion'"


def test_record_texts_lists_the_text_fields_in_order() -> None:
    assert record_texts(PC, {"prompt": "Q", "completion": "A", "id": "x"}) == ["Q", "A"]
    assert record_texts(CHAT, chat(("system", "S"), ("user", "U"), ("assistant", "A"))) == [
        "S",
        "U",
        "A",
    ]
    record = conversation(("user", "U"), ("assistant", "A"), system=[{"text": "S"}])
    assert record_texts(CONV, record) == ["S", "U", "A"]
    assert record_texts(CPT, {"input": "T"}) == ["T"]


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([{"prompt": "a", "completion": "b"}] * 3, PC),
        ([{"input": "text"}, {"input": "more"}], CPT),
        ([chat(("user", "a"), ("assistant", "b"))], CHAT),
        ([conversation(("user", "a"), ("assistant", "b"))], CONV),
        # Defective records still point at the format whose keys they carry.
        ([{"prompt": "a"}, {"prompt": "b", "completion": 3}], PC),
        ([{"messages": [{"role": "user", "content": "only a question"}]}], CHAT),
        ([{"schemaVersion": "bedrock-conversation-2024", "messages": "oops"}], CONV),
        # Mostly one format wins over a stray record of another.
        ([{"input": "x"}, {"prompt": "a", "completion": "b"}, {"input": "y"}], CPT),
        ([], None),
        ([[1, 2], "text", 3], None),
        ([{"unrelated": "keys"}], None),
    ],
)
def test_detect_format_guesses_from_the_first_records(
    records: list[object], expected: DatasetFormat | None
) -> None:
    assert detect_format(records) == expected
