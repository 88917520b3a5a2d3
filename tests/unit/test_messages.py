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


# -- the neutral forms of API.md §2: developer turns, documents, cache markers, failed tool results --

PDF = "data:application/pdf;base64,JVBERi0xLjQK"


def test_developer_turns_and_failed_tool_results() -> None:
    out = norm([{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "name": "f", "arguments": {}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "boom", "is_error": True}])
    assert out[0].role == "developer" and out[3].is_error and out[3].to_dict()["is_error"] is True
    assert not out[1].is_error and "is_error" not in out[1].to_dict()


@pytest.mark.parametrize(("message", "fragment"), [
    ({"role": "user", "content": "x", "is_error": True}, "only tool messages carry is_error"),
    ({"role": "tool", "tool_call_id": "c", "content": "x", "is_error": "yes"}, "is_error must be True or False"),
])
def test_is_error_is_checked(message: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        norm([message])


@pytest.mark.parametrize("file", [
    {"file_data": PDF, "filename": "a.pdf"},
    {"file_data": "data:text/plain;base64,aGVsbG8="},
    {"url": "https://example.com/a.pdf"},
    {"file_id": "file-abc"},
])
def test_document_parts_are_kept(file: dict[str, str]) -> None:
    (message,) = norm([{"role": "user", "content": ["Summarise", {"type": "file", "file": file}]}])
    assert message.content == [{"type": "text", "text": "Summarise"}, {"type": "file", "file": file}]


@pytest.mark.parametrize(("file", "fragment"), [
    ("a.pdf", "document parts look like"),
    ({"file_data": PDF, "url": "https://e.com/a.pdf"}, "exactly one of file_data, url, file_id"),
    ({"filename": "a.pdf"}, "exactly one of"),
    ({"file_data": PDF, "mime": "x"}, "exactly one of"),
    ({"file_data": "data:image/png;base64,iVBORw0K"}, "'image/png' is not supported"),
    ({"file_data": "data:application/pdf;base64,@@@"}, "not valid base64"),
    ({"file_data": "JVBERi0xLjQK"}, "must be a data: URL"),
    ({"url": "file:///etc/passwd"}, "must be an http"),
    ({"file_id": 5}, "must be a non-empty string"),
])
def test_bad_document_parts_are_refused(file: object, fragment: str) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        norm([{"role": "user", "content": [{"type": "file", "file": file}]}])


def test_cache_markers_on_parts() -> None:
    parts = [{"type": "text", "text": "long context", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
             {"type": "file", "file": {"file_data": PDF}, "cache_control": {"type": "ephemeral"}}]
    (message,) = norm([{"role": "system", "content": parts}])
    assert message.content == parts
    for bad in ({"type": "persistent"}, {"type": "ephemeral", "ttl": "2h"}, {"type": "ephemeral", "x": 1}, "yes"):
        with pytest.raises(InvalidRequestError, match="cache_control must be"):
            norm([{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": bad}]}])
    with pytest.raises(InvalidRequestError, match="unknown keys"):
        norm([{"role": "user", "content": [{"type": "text", "text": "x", "cache": {"type": "ephemeral"}}]}])


def test_a_percent_encoded_image_data_url_becomes_base64() -> None:
    """RFC 2397 allows percent-encoded data; providers take base64, so the URL is rewritten once, here."""
    svg = "data:image/svg+xml,%3Csvg%2F%3E"
    (message,) = norm([{"role": "user", "content": [{"type": "image_url", "image_url": svg}]}])
    assert message.content == [{"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zy8+"}}]
