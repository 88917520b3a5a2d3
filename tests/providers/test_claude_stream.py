"""Claude streaming: named SSE events, tool-input assembly, thinking, cumulative usage, in-band
errors, stream-vs-non-stream parity, and any split of the bytes into network reads."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from builders import build_connector
from hypothesis import given, settings, strategies as st

import llm_connectors as lc
from llm_connectors import errors
from llm_connectors.connectors.claude_stream import ClaudeStreamDecoder
from llm_connectors.requests import ChatRequest
from llm_connectors.types import ChatChunk, ReasoningBlock, ToolCall
from llm_connectors.wire.framing import SSEDecoder, SSEEvent

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parents[1] / "fixtures" / "claude"
BASE = "https://api.anthropic.com"
MODEL = "claude-sonnet-4-6"
HELLO = [{"role": "user", "content": "Hello"}]
CONNECTOR = build_connector("claude")  # one attempt per call, no breaker: each reply's own outcome
REQUEST = ChatRequest(MODEL, (), {}, stream=True)
#: Each complete stream fixture and the non-streaming answer with the same content.
PAIRS = {
    "stream_text.sse": "message_text.json",
    "stream_tool_use.sse": "message_tool_use.json",
    "stream_thinking.sse": "message_thinking.json",
    "stream_unknown_multiline.sse": "message_text.json",
}
STREAMS = sorted([*PAIRS, "stream_error_before_delta.sse", "stream_error_after_delta.sse"])


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class Decoded:
    """What feeding some bytes produced: the chunks, the decoder, and the error raised (if any)."""

    def __init__(self, chunks: list[ChatChunk], decoder: ClaudeStreamDecoder, error: Exception | None) -> None:
        self.chunks = chunks
        self.decoder = decoder
        self.error = error

    def outcome(self) -> tuple[list[ChatChunk], Any]:
        error = None if self.error is None else (type(self.error), str(self.error))
        return self.chunks, error


def decode(reads: Sequence[bytes]) -> Decoded:
    """Feed network reads through the SSE framer and a fresh decoder, as the base class does."""
    framer = SSEDecoder()
    decoder = CONNECTOR.create_stream_decoder(REQUEST)
    assert isinstance(decoder, ClaudeStreamDecoder)
    chunks: list[ChatChunk] = []
    try:
        for data in reads:
            for event in framer.feed(data):
                chunk = decoder.feed(event)
                if chunk is not None:
                    chunks.append(chunk)
        framer.close()
        decoder.finish()
    except errors.LLMConnectorError as exc:
        return Decoded(chunks, decoder, exc)
    return Decoded(chunks, decoder, None)


def events(*objs: dict[str, Any]) -> Decoded:
    """Decode events given as objects (each framed as the API frames it)."""
    return decode([f"event: {o['type']}\ndata: {json.dumps(o)}\n\n".encode() for o in objs])


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


START = {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}
STOP = {"type": "message_stop"}


def delta(index: int, **body: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": body}


def block_start(index: int, **block: Any) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str = "end_turn", **usage: Any) -> dict[str, Any]:
    return {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": usage or {"output_tokens": 5}}


# -- the fixtures, chunk by chunk --------------------------------------------------------------

def test_text_stream_chunks() -> None:
    result = decode([raw("stream_text.sse")])
    assert result.error is None
    assert [c.delta for c in result.chunks] == ["Hello!", " How can I help", " you today? 👋", ""]
    *body, last = result.chunks
    assert all(c.finish_reason is None and c.usage is None and not c.tool_calls for c in body)
    assert last.finish_reason == "stop"
    assert last.usage == lc.Usage(2112, 15, 2127, cache_read_tokens=2000, cache_write_tokens=100)
    assert result.decoder.native_finish_reason == "end_turn"
    assert result.decoder.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert result.decoder.model == "claude-sonnet-4-5-20250929"


def test_tool_stream_delivers_each_call_where_its_block_stops() -> None:
    result = decode([raw("stream_tool_use.sse")])
    assert result.error is None
    calls = [(i, c.tool_calls) for i, c in enumerate(result.chunks) if c.tool_calls]
    assert calls == [
        (2, [ToolCall(id="toolu_01A09q90qw90lq917835lq9", name="get_weather",
                      arguments={"city": "San Francisco, CA", "unit": "celsius"})]),
        (3, [ToolCall(id="toolu_01B7xVz3m2NQ4k8fHc6s1T", name="get_time", arguments={})]),
    ]
    assert result.chunks[-1].finish_reason == "tool_calls"
    assert result.chunks[-1].usage == lc.Usage(472, 89, 561)
    assert len(result.chunks) == 5


def test_thinking_stream_keeps_signature_and_redacted_block() -> None:
    fixture = load("message_thinking.json")["content"]
    result = decode([raw("stream_thinking.sse")])
    assert result.error is None
    assert [c.reasoning for c in result.chunks if c.reasoning] == [
        "The user wants the weather in Paris.", "\nI should call get_weather."]
    response = result.decoder.response()
    assert response.reasoning_blocks == [
        ReasoningBlock(text=fixture[0]["thinking"], signature=fixture[0]["signature"]),
        ReasoningBlock(redacted_data=fixture[1]["data"]),
    ]
    assert response.usage.reasoning_tokens == 150 and response.usage.output_tokens == 220


def test_unknown_events_comments_and_multiline_data_change_nothing() -> None:
    plain = decode([raw("stream_text.sse")])
    noisy = decode([raw("stream_unknown_multiline.sse")])
    assert noisy.error is None
    assert [(c.delta, c.finish_reason, c.usage) for c in noisy.chunks] == \
        [(c.delta, c.finish_reason, c.usage) for c in plain.chunks]
    assert noisy.decoder.response() == plain.decoder.response()


# -- stream vs non-stream parity ----------------------------------------------------------------

@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def sse_reply(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


@pytest.mark.parametrize("stream_name", sorted(PAIRS))
async def test_collected_stream_equals_non_stream_response(mock: respx.MockRouter, stream_name: str) -> None:
    mock.post("/v1/messages").mock(side_effect=[
        httpx.Response(200, json=load(PAIRS[stream_name])), sse_reply(raw(stream_name))])
    async with build_connector("claude") as conn:
        whole = await conn.generate_chat(MODEL, HELLO)
        async with conn.generate_chat_stream(MODEL, HELLO) as stream:
            chunks = [c async for c in stream]
        streamed = stream.response
    assert streamed == whole  # every field: text, tool calls, reasoning blocks, usage, ids, raw
    assert streamed.raw == load(PAIRS[stream_name])
    assert "".join(c.delta for c in chunks) == whole.content
    assert "".join(c.reasoning for c in chunks) == whole.reasoning
    assert [t for c in chunks for t in c.tool_calls] == whole.tool_calls
    assert [c.finish_reason for c in chunks].count(None) == len(chunks) - 1
    assert chunks[-1].usage == whole.usage


# -- any split into network reads -----------------------------------------------------------------

@pytest.mark.parametrize("name", STREAMS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_split_into_reads_gives_identical_chunks(name: str, data: st.DataObject) -> None:
    eol = data.draw(st.sampled_from([b"\n", b"\r\n", b"\r"]), label="line ending")
    body = raw(name).replace(b"\n", eol)
    reference = decode([body])
    assert reference.outcome() == decode([raw(name)]).outcome()  # line endings do not matter either
    limit = len(body) - 1
    cuts = data.draw(st.one_of(
        st.lists(st.integers(1, limit), max_size=60),
        st.just(list(range(1, limit + 1))),  # one byte per read: splits UTF-8, CRLF and every field
    ), label="cuts")
    result = decode(split(body, cuts))
    assert result.outcome() == reference.outcome()
    if reference.error is None:
        assert result.decoder.response() == reference.decoder.response()


# -- decoder rules ---------------------------------------------------------------------------------

def test_signature_delta_replaces_and_thinking_text_concatenates() -> None:
    result = events(START, block_start(0, type="thinking", thinking="", signature=""),
                    delta(0, type="thinking_delta", thinking="a"), delta(0, type="signature_delta", signature="s1"),
                    delta(0, type="thinking_delta", thinking="b"), delta(0, type="signature_delta", signature="s2"),
                    block_stop(0), message_delta(), STOP)
    assert result.decoder.reasoning_blocks == [ReasoningBlock(text="ab", signature="s2")]
    assert result.decoder.response().reasoning == "ab"


def test_message_delta_usage_replaces_cumulatively_and_ignores_nulls() -> None:
    start = {**START, "message": {**START["message"], "usage": {
        "input_tokens": 10, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2, "output_tokens": 1}}}
    result = events(start, message_delta(output_tokens=7), message_delta(output_tokens=9, input_tokens=None,
                                                                         cache_read_input_tokens=5), STOP)
    assert result.chunks[-1].usage == lc.Usage(10 + 5 + 2, 9, 26, cache_read_tokens=5, cache_write_tokens=2)
    assert result.decoder.raw["usage"] == {"input_tokens": 10, "cache_read_input_tokens": 5,
                                           "cache_creation_input_tokens": 2, "output_tokens": 9}


def test_tool_input_is_parsed_once_and_bad_json_is_reported_not_raised() -> None:
    result = events(START,
                    block_start(0, type="tool_use", id="t1", name="a", input={}),
                    delta(0, type="input_json_delta", partial_json='{"x": [1,'),
                    delta(0, type="input_json_delta", partial_json=" 2]}"),
                    block_start(1, type="tool_use", id="t2", name="b", input={}), block_stop(1),
                    block_stop(0),
                    block_start(2, type="tool_use", id="t3", name="c", input={}),
                    delta(2, type="input_json_delta", partial_json='{"cut": '), block_stop(2),
                    message_delta("tool_use"), STOP)
    calls = result.decoder.tool_calls
    assert calls[0] == ToolCall(id="t2", name="b", arguments={})
    assert calls[1] == ToolCall(id="t1", name="a", arguments={"x": [1, 2]})
    assert calls[2].arguments == {} and calls[2].raw_arguments == '{"cut": ' and calls[2].parse_error
    # raw keeps content in index order, whatever order the blocks stopped in
    assert [b["id"] for b in result.decoder.raw["content"]] == ["t1", "t2", "t3"]
    assert result.chunks[-1].finish_reason == "tool_calls"


def test_unknown_blocks_deltas_and_events_are_tolerated() -> None:
    result = events(START, {"type": "ping"}, {"type": "brand_new_event", "index": 0},
                    block_start(0, type="server_tool_use", id="s1", name="web_search", input={}),
                    delta(0, type="input_json_delta", partial_json='{"q": 1}'), block_stop(0),
                    block_start(1, type="text", text=""), delta(1, type="citations_delta", citation={"n": 1}),
                    delta(1, type="text_delta", text="ok"), delta(1, type="mystery_delta", x=1), block_stop(1),
                    message_delta("pause_turn"), STOP)
    assert result.error is None
    assert [c.delta for c in result.chunks] == ["ok", ""]
    assert result.decoder.tool_calls == []
    assert result.chunks[-1].finish_reason == "other"
    assert result.decoder.native_finish_reason == "pause_turn"
    assert result.decoder.raw["content"] == [
        {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"q": 1}},
        {"type": "text", "text": "ok", "citations": [{"n": 1}]}]


def test_text_in_content_block_start_is_delivered() -> None:
    result = events(START, block_start(0, type="text", text="Pre"), delta(0, type="text_delta", text="fix"),
                    block_stop(0), message_delta(), STOP)
    assert [c.delta for c in result.chunks] == ["Pre", "fix", ""]


def test_events_after_message_stop_are_ignored() -> None:
    result = events(START, message_delta(), STOP, block_start(0, type="text", text="late"), {"type": "error"})
    assert result.error is None and len(result.chunks) == 1


@pytest.mark.parametrize("objs", [
    [START, block_start(0, type="text", text=""), delta(0, type="text_delta", text="x")],
    [START, message_delta()],
    [],
], ids=["mid-block", "before-message-stop", "empty"])
def test_stream_without_message_stop_is_a_protocol_error(objs: list[dict[str, Any]]) -> None:
    result = events(*objs)
    assert isinstance(result.error, errors.ProtocolError)


@pytest.mark.parametrize("bad", [
    delta(3, type="text_delta", text="x"),
    {"type": "content_block_stop"},
    {"type": "content_block_start", "index": 0},
    {"type": "message_start"},
])
def test_malformed_events_raise_protocol_errors(bad: dict[str, Any]) -> None:
    assert isinstance(events(START, bad).error, errors.ProtocolError)


def test_non_object_and_invalid_json_events_raise_protocol_errors() -> None:
    decoder = CONNECTOR.create_stream_decoder(REQUEST)
    assert decoder.feed(SSEEvent("message", "")) is None  # a bare "data:" line dispatches nothing
    with pytest.raises(errors.ProtocolError):
        decoder.feed(SSEEvent("message_start", "[1, 2]"))
    with pytest.raises(errors.ProtocolError):
        decoder.feed(SSEEvent("message_start", "{not json"))


@pytest.mark.parametrize(("error_type", "expected"), [
    ("overloaded_error", errors.OverloadedError),
    ("api_error", errors.ProviderError),
    ("rate_limit_error", errors.RateLimitError),
    ("invalid_request_error", errors.InvalidRequestError),
    ("brand_new_error", errors.ProviderError),
])
def test_in_band_error_events_are_typed(error_type: str, expected: type[Exception]) -> None:
    result = events(START, {"type": "error", "error": {"type": error_type, "message": "Nope"}})
    assert type(result.error) is expected
    assert isinstance(result.error, errors.LLMConnectorError)
    assert result.error.code == error_type and result.error.message == "Nope"
    assert result.error.status_code is None and result.error.provider == "claude"


# -- in-band errors through the connector ---------------------------------------------------------

async def test_error_before_first_delta_raises_from_the_stream_opening(mock: respx.MockRouter) -> None:
    mock.post("/v1/messages").mock(return_value=sse_reply(raw("stream_error_before_delta.sse")))
    async with build_connector("claude") as conn:
        stream = conn.generate_chat_stream(MODEL, HELLO)
        with pytest.raises(errors.OverloadedError) as info:
            await stream.__anext__()
        assert stream.text == ""
        await stream.aclose()
        # the opening is the seam retries and fallbacks wrap: the same error comes out of open_stream
        with pytest.raises(errors.OverloadedError):
            await conn.open_stream(conn.prepare_chat(MODEL, HELLO, {}, stream=True))
    assert info.value.retryable is True and info.value.code == "overloaded_error"


async def test_error_after_first_delta_interrupts_with_the_partial_text(mock: respx.MockRouter) -> None:
    mock.post("/v1/messages").mock(return_value=sse_reply(raw("stream_error_after_delta.sse")))
    received: list[str] = []
    async with build_connector("claude") as conn:
        with pytest.raises(errors.StreamInterruptedError) as info:
            async with conn.generate_chat_stream(MODEL, HELLO) as stream:
                async for chunk in stream:
                    received.append(chunk.delta)
    assert received == ["The first part", " of an answer"]
    assert info.value.partial == "The first part of an answer"
    assert isinstance(info.value.__cause__, errors.OverloadedError)
    assert info.value.provider == "claude"


async def test_cut_stream_after_text_is_interrupted(mock: respx.MockRouter) -> None:
    cut = raw("stream_text.sse").split(b"event: content_block_stop")[0]
    mock.post("/v1/messages").mock(return_value=sse_reply(cut))
    async with build_connector("claude") as conn:
        with pytest.raises(errors.StreamInterruptedError) as info:
            await conn.generate_chat_stream(MODEL, HELLO).collect()
    assert info.value.partial == "Hello! How can I help you today? 👋"
    assert isinstance(info.value.__cause__, errors.ProtocolError)
