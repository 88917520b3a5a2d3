"""Streams and plain answers agree through whole connectors: choices routed by index and ``n`` > 1
refused before I/O, one size bound for lines, events and bodies, and a stream cut inside a tool call
raising ``StreamInterruptedError`` with the text and the call begun (issue 22)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from builders import build_connector
from stream_answers import Answer, Call, render

import llm_connectors as lc
from llm_connectors.http.settings import MAX_BODY_BYTES
from llm_connectors.stream import StreamDecoder, interrupted
from llm_connectors.types import ToolCall

pytestmark = pytest.mark.anyio

CHAT_URL = {"openai": "https://api.openai.com/v1/chat/completions",
            "mistral": "https://api.mistral.ai/v1/chat/completions",
            "claude": "https://api.anthropic.com/v1/messages",
            "ollama": "http://localhost:11434/api/chat"}
CONTENT_TYPE = {"openai": "text/event-stream", "mistral": "text/event-stream", "claude": "text/event-stream",
                "ollama": "application/x-ndjson"}


def reply(provider: str, body: bytes, *, stream: bool) -> httpx.Response:
    return httpx.Response(200, content=body, headers={
        "content-type": CONTENT_TYPE[provider] if stream else "application/json"})


async def both(provider: str, stream: bytes, body: bytes, **settings: Any) -> tuple[Any, Any]:
    """(streamed, plain) outcome of one answer through a connector: the response or the error."""
    out: list[Any] = []
    async with build_connector(provider, **settings) as conn:
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(CHAT_URL[provider])
            route.return_value = reply(provider, stream, stream=True)
            try:
                out.append(await conn.generate_chat_stream(None, "hi").collect())
            except lc.LLMConnectorError as exc:
                out.append(exc)
            route.return_value = reply(provider, body, stream=False)
            try:
                out.append(await conn.generate_chat(None, "hi"))
            except lc.LLMConnectorError as exc:
                out.append(exc)
    return out[0], out[1]


# -- choices ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["openai", "mistral"])
@pytest.mark.parametrize("how", ["extra", "provider_options"])
async def test_n_above_one_is_refused_before_io(provider: str, how: str) -> None:
    options: dict[str, Any] = ({"extra": {"n": 3}} if how == "extra" else {"provider_options": {provider: {"n": 3}}})
    async with build_connector(provider) as conn:
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(CHAT_URL[provider])
            for call in (lambda: conn.generate_chat(None, "hi", **options),
                         lambda: conn.generate_chat_stream(None, "hi", **options).collect()):
                with pytest.raises(lc.InvalidRequestError, match=r"option 'n' .*asks for 3 choices.*make that many "
                                                                 "calls") as info:
                    await call()
                assert info.value.code == "n"
            assert route.call_count == 0
            route.return_value = reply(provider, render(provider, _text_answer())[1], stream=False)
            await conn.generate_chat(None, "hi", extra={"n": 1})  # one choice is what a call is
            assert route.call_count == 1


def _text_answer(seed: int = 1) -> Answer:
    return Answer(seed=seed, text=["city", "=Paris"], finish="stop", usage=(3, 4))


@pytest.mark.parametrize("provider", ["openai", "mistral"])
async def test_chunks_are_routed_by_index_never_interleaved(provider: str) -> None:
    # A server that ignored our one choice and sent two, interleaved: only index 0 is the answer.
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    events = []
    for word in ("{", "city", "}"):
        events.append({**head, "choices": [{"index": 1, "delta": {"content": word.upper()}, "finish_reason": None}]})
        events.append({**head, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
    events.append({**head, "choices": [{"index": 1, "delta": {}, "finish_reason": "length"},
                                       {"index": 0, "delta": {}, "finish_reason": "stop"}]})
    stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"
    plain = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 1, "message": {"role": "assistant", "content": "{CITY}"}, "finish_reason": "length"},
        {"index": 0, "message": {"role": "assistant", "content": "{city}"}, "finish_reason": "stop"}]}
    streamed, answered = await both(provider, stream, json.dumps(plain).encode())
    assert streamed.content == answered.content == "{city}"
    assert streamed.finish_reason == answered.finish_reason == "stop"


async def test_a_refusal_after_text_reads_the_same_streamed_and_not() -> None:
    answer = Answer(seed=5, text=["Sure, "], refusal=["but not that."], finish="stop", usage=(1, 2))
    streamed, answered = await both("openai", *render("openai", answer))
    assert streamed.content == answered.content == "Sure, but not that."
    assert streamed.finish_reason == answered.finish_reason == "stop"  # it answered: not a bare refusal


# -- one bound for lines, events and bodies --------------------------------------------------------

def _big_call_answer(provider: str, size: int) -> Answer:
    arguments = {"path": "src/big.py", "content": "x = 1\n" * (size // 6)}
    return Answer(seed=3, calls=[Call("AbCdEfGh1", "write_file", arguments, [json.dumps(arguments)])],
                  finish="tool_calls" if provider != "ollama" else "stop", usage=(1, 2))


@pytest.mark.parametrize("provider", ["ollama", "mistral"])
async def test_a_tool_call_over_a_mebibyte_streams_as_it_parses_whole(provider: str) -> None:
    # Ollama and Mistral send a call whole, in one line: 1.2 MB of write_file arguments.
    answer = _big_call_answer(provider, 1_200_000)
    streamed, answered = await both(provider, *render(provider, answer))
    assert isinstance(streamed, lc.ChatResponse), streamed
    assert streamed.tool_calls[0].arguments == answered.tool_calls[0].arguments == answer.calls[0].arguments


@pytest.mark.parametrize("provider", ["ollama", "mistral", "openai"])
async def test_max_body_bytes_bounds_both_paths_alike(provider: str) -> None:
    answer = _big_call_answer(provider, 200_000)
    streamed, answered = await both(provider, *render(provider, answer), max_body_bytes=100_000)
    for outcome in (answered, streamed):
        assert isinstance(outcome, lc.ProtocolError), outcome
        assert "100000" in outcome.message


@pytest.mark.parametrize("value", [0, 1000, True, 2.5, "32MiB", 2 << 30])
def test_max_body_bytes_is_checked_at_construction(value: Any) -> None:
    with pytest.raises(lc.ConfigurationError, match="max_body_bytes must be a whole number of bytes"):
        build_connector("openai", max_body_bytes=value)


def test_max_body_bytes_defaults_to_the_documented_cap() -> None:
    assert build_connector("openai")._sender.config.max_body_bytes == MAX_BODY_BYTES == 32 << 20


# -- cut inside a tool call -------------------------------------------------------------------------

def _two_calls(provider: str) -> Answer:
    return Answer(seed=9, text=["Let me look. "] if provider != "mistral" else [],
                  calls=[Call("AbCdEfGh1", "search", {"q": "a"}, ['{"q"', ': "a"}']),
                         Call("AbCdEfGh2", "write_file", {"path": "a.py", "content": "print(1)"},
                              ['{"path": "a.py", ', '"content": "pri'])],
                  finish="tool_calls", usage=(1, 2))


def _cut(stream: bytes, after: bytes) -> bytes:
    return stream[:stream.rindex(after)] + after + b"\n\n"


@pytest.mark.parametrize("provider", ["claude", "openai"])
async def test_a_stream_cut_inside_a_tool_call_carries_the_call_begun(provider: str) -> None:
    stream, _ = render(provider, _two_calls(provider))
    cut = _cut(stream, b'"pri"}}' if provider == "claude" else b'"pri"}}]}, "finish_reason": null, "logprobs": null}]}')
    delivered: list[lc.ChatChunk] = []
    async with build_connector(provider) as conn:
        with respx.mock() as mock:
            mock.post(CHAT_URL[provider]).return_value = reply(provider, cut, stream=True)
            with pytest.raises(lc.StreamInterruptedError) as info:
                async with conn.generate_chat_stream(None, "hi") as chunks:
                    async for chunk in chunks:
                        delivered.append(chunk)
    err = info.value
    assert err.partial == "".join(c.delta for c in delivered) == "Let me look. "
    assert isinstance(err.__cause__, lc.ProtocolError)
    last = err.partial_tool_calls[-1]
    assert (last.id, last.name, last.raw_arguments) == ("AbCdEfGh2", "write_file", '{"path": "a.py", "content": "pri')
    assert last.parse_error is not None and last.arguments == {}
    finished = [call for chunk in delivered for call in chunk.tool_calls]
    # Claude delivered the first call at its block's end; OpenAI delivers calls at [DONE], so it is pending.
    assert [c.name for c in finished + err.partial_tool_calls] == ["search", "write_file"]
    assert f"'write_file' ({len(last.raw_arguments or '')} characters of arguments received)" in err.message


async def test_mistral_calls_sent_before_the_cut_are_not_lost() -> None:
    stream, _ = render("mistral", _two_calls("mistral"))
    cut = stream[:stream.index(b'"finish_reason": "tool_calls"')].rsplit(b"\n\n", 1)[0] + b"\n\n"
    async with build_connector("mistral") as conn:
        with respx.mock() as mock:
            mock.post(CHAT_URL["mistral"]).return_value = reply("mistral", cut, stream=True)
            with pytest.raises(lc.StreamInterruptedError) as info:
                await conn.generate_chat_stream(None, "hi").collect()
    assert [c.name for c in info.value.partial_tool_calls] == ["search", "write_file"]
    assert info.value.partial == ""


async def test_a_cut_before_the_first_chunk_is_still_retried() -> None:
    # Nothing reached the caller: the policies see the cause's flags (a cut is a retryable ProtocolError).
    stream, _ = render("claude", Answer(seed=2, calls=_two_calls("claude").calls[1:], finish="tool_use"))
    cut = _cut(stream, b'"pri"}}')
    async with build_connector("claude", retry={"max_retries": 2, "initial_delay": 0.001, "max_delay": 0.001,
                                                "min_delay": 0.001, "budget": False}) as conn:
        with respx.mock() as mock:
            route = mock.post(CHAT_URL["claude"])
            route.return_value = reply("claude", cut, stream=True)
            with pytest.raises(lc.StreamInterruptedError) as info:
                await conn.generate_chat_stream(None, "hi").collect()
    assert route.call_count == 3
    err = info.value
    assert err.retryable and err.breaker_failure and err.fallback
    assert err.partial == "" and err.partial_tool_calls[-1].raw_arguments == '{"path": "a.py", "content": "pri'


def test_interrupted_leaves_errors_outside_tool_calls_alone() -> None:
    error = lc.NetworkError("reset", provider="x")
    assert interrupted(StreamDecoder("x", "m"), error) is error

    class Pending(StreamDecoder):
        def pending_tool_calls(self) -> list[ToolCall]:
            return [ToolCall.from_json_text("c1", "f", '{"a": ')]

    wrapped = interrupted(Pending("x", "m"), error)
    assert isinstance(wrapped, lc.StreamInterruptedError) and wrapped.__cause__ is error
    assert (wrapped.retryable, wrapped.breaker_failure, wrapped.fallback) == \
        (error.retryable, error.breaker_failure, error.fallback) != (False, False, False)
    assert interrupted(Pending("x", "m"), wrapped) is wrapped
