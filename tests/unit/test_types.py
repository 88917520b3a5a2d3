"""Core value types."""

from __future__ import annotations

from llm_connectors.types import ChatResponse, Message, ReasoningBlock, ToolCall, Usage


def test_tool_call_from_json_text() -> None:
    assert ToolCall.from_json_text("1", "f", '{"a": 1}').arguments == {"a": 1}
    empty = ToolCall.from_json_text("1", "f", "")
    assert empty.arguments == {} and empty.parse_error is None
    broken = ToolCall.from_json_text("1", "f", '{"a": ')
    assert broken.arguments == {} and broken.parse_error and broken.raw_arguments == '{"a": '
    assert ToolCall.from_json_text("1", "f", "[1]").parse_error == "arguments are not a JSON object"
    deep = ToolCall.from_json_text("1", "f", "[" * 100_000)
    assert deep.parse_error  # RecursionError is caught, never raised


def test_tool_call_arguments_json_round_trip() -> None:
    assert ToolCall("1", "f", {"a": "é"}).arguments_json() == '{"a":"é"}'
    assert ToolCall.from_json_text("1", "f", '{"a": 1}').arguments_json() == '{"a": 1}'


def test_usage_totals_and_sum() -> None:
    assert Usage.of(3, 4).total_tokens == 7
    assert Usage.of(None, 4).total_tokens is None
    total = Usage.of(3, 4, cache_read_tokens=1) + Usage.of(1, None)
    assert total == Usage(4, 4, 7, 1, None, None)


def test_response_message_for_next_turn() -> None:
    resp = ChatResponse(content="", finish_reason="tool_calls", usage=Usage(),
                        tool_calls=[ToolCall("1", "f", {"x": 1})], provider="p", model="m",
                        reasoning_blocks=[ReasoningBlock("think", "sig")])
    msg = resp.message
    assert msg.role == "assistant" and msg.content is None and msg.tool_calls[0].name == "f"
    assert msg.to_dict() == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}],
        "reasoning": [{"text": "think", "signature": "sig", "provider": "p"}]}


def test_message_text() -> None:
    assert Message("user", [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "u"}},
                            {"type": "text", "text": "b"}]).text == "ab"
    assert Message("assistant").text == ""


def test_response_message_tags_reasoning_with_its_provider() -> None:
    """Signatures are valid only where they were made: a block carries its provider into the next turn."""
    from llm_connectors.wire.messages import normalize_messages

    resp = ChatResponse(content="ok", finish_reason="stop", usage=Usage(), tool_calls=[], model="m",
                        provider="claude", reasoning_blocks=[
        ReasoningBlock(text="t", signature="sig"), ReasoningBlock(text="x", provider="mistral")])
    blocks = resp.message.reasoning
    assert [b.provider for b in blocks] == ["claude", "mistral"]
    (again,) = normalize_messages([resp.message.to_dict()], "claude")
    assert again.reasoning == blocks  # through the dict form and back
