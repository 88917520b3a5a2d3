"""Message validation and normalisation, before any I/O."""

from __future__ import annotations

import pytest

from llm_connectors.errors import InvalidRequestError
from llm_connectors.types import Message, ReasoningBlock, ToolCall
from llm_connectors.wire.messages import normalize_messages


def norm(messages: object) -> tuple[Message, ...]:
    return normalize_messages(messages, "openai")  # type: ignore[arg-type]


def test_string_is_one_user_turn() -> None:
    assert norm("hi") == (Message(role="user", content="hi"),)


def test_dicts_and_messages_mix() -> None:
    out = norm([{"role": "system", "content": "be brief"}, Message(role="user", content="hi")])
    assert [m.role for m in out] == ["system", "user"]


@pytest.mark.parametrize(("messages", "fragment"), [
    ([], "messages is empty"),
    ({"role": "user", "content": "x"}, "not a single dict"),
    ([{"role": "bot", "content": "x"}], "role must be one of"),
    ([{"role": "user"}], "content is missing"),
    ([{"role": "user", "content": 3}], "content must be a string or a list"),
    ([{"role": "user", "content": "x", "colour": "red"}], "unknown keys ['colour']"),
    ([{"role": "tool", "content": "42"}], "needs tool_call_id"),
    ([{"role": "user", "content": "x", "tool_call_id": "a"}], "only tool messages"),
    ([{"role": "user", "content": "x", "tool_calls": [{"id": "a", "name": "f"}]}], "only assistant"),
    ([{"role": "assistant", "tool_calls": [{"id": "a"}]}], "needs a string 'id' and 'name'"),
    ([{"role": "assistant", "tool_calls": [{"id": "a", "name": "f", "arguments": "[1"}]}], "not a JSON object"),
    ([{"role": "user", "content": [{"type": "audio"}]}], "unsupported part 'audio'"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}], "image parts look like"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": "ftp://x"}]}], "http(s) or a data: URL"),
    (["hi"], "must be a dict"),
])
def test_bad_messages_name_the_problem(messages: object, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        norm(messages)
    assert fragment in str(info.value)


def test_parts_normalised() -> None:
    (msg,) = norm([{"role": "user", "content": ["plain", {"type": "text", "text": "t"},
                                                 {"type": "image_url", "image_url": "https://x/a.png"}]}])
    assert msg.content == [{"type": "text", "text": "plain"}, {"type": "text", "text": "t"},
                           {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]


def test_tool_calls_in_wire_and_neutral_shapes() -> None:
    (msg,) = norm([{"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
        {"id": "b", "name": "g", "arguments": {"y": 2}},
        ToolCall("c", "h", {}),
    ], "reasoning": [{"text": "hmm", "signature": "sig"}]}])
    assert [(c.id, c.name, c.arguments) for c in msg.tool_calls] == [
        ("a", "f", {"x": 1}), ("b", "g", {"y": 2}), ("c", "h", {})]
    assert msg.reasoning == (ReasoningBlock("hmm", "sig"),)
