"""The ``sample`` (MegaChat) connector: its own wire format, end to end against a real socket."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import pytest
from builders import build_connector
from hypothesis import given, settings, strategies as st

import llm_connectors as lc
from llm_connectors import errors as e
from llm_connectors.connectors.sample import MEGACHAT, SampleConnector
from llm_connectors.requests import ChatRequest
from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.sample_wire import (
    MegaChatFake,
    megachat_answer,
    megachat_event,
    megachat_failure,
    megachat_stream,
)
from llm_connectors.types import ChatResponse, ToolCall, Usage
from llm_connectors.wire.framing import SSEDecoder

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]

KEY = "mc-test-key-0042"
_WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather.",
                                             "parameters": {"type": "object",
                                                            "properties": {"city": {"type": "string"}}}}}


@pytest.fixture
def conn() -> SampleConnector:
    return build_connector("sample", api_key=KEY)  # build/parse only: never sends, so nothing to close


@pytest.fixture
def fake() -> MegaChatFake:
    return MegaChatFake(key=KEY)


@pytest.fixture
def server(fake: MegaChatFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as server:
        yield server


#: A connector on the fake (given its URL), with the key the fake expects.
connect = partial(build_connector, "sample", api_key=KEY)


def body_of(conn: SampleConnector, messages: Any = "Hi", *, stream: bool = False, **options: Any) -> Any:
    return conn.build_chat_request(conn.prepare_chat(None, messages, options, stream=stream)).json


# -- the definition ----------------------------------------------------------------------------

def test_definition() -> None:
    assert (MEGACHAT.id, MEGACHAT.name) == ("sample", "MegaChat (sample)")
    assert (MEGACHAT.auth.env_var, MEGACHAT.base_url_env) == ("MEGACHAT_API_KEY", "MEGACHAT_BASE_URL")
    assert MEGACHAT.base_url == "http://127.0.0.1:8765"
    described = lc.describe("sample")
    assert described["auth"] == {"kind": "header", "header": "x-megachat-key", "env_var": "MEGACHAT_API_KEY",
                                 "required": True}
    assert json.loads(json.dumps(described)) == described


def test_needs_a_key() -> None:
    with pytest.raises(e.ConfigurationError, match="MEGACHAT_API_KEY"):
        SampleConnector()
    assert KEY not in repr(SampleConnector(api_key=KEY))


async def test_get_connector_reads_the_environment(server: FakeServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGACHAT_API_KEY", KEY)
    monkeypatch.setenv("MEGACHAT_BASE_URL", server.url)
    async with lc.get_connector("sample:megachat-small") as conn:
        resp = await conn.generate_chat(None, "Hi")
    assert resp.content == "Hello from MegaChat."
    assert server.requests[0].json()["model"] == "megachat-small"
    assert server.requests[0].headers["x-megachat-key"] == KEY
    assert "authorization" not in server.requests[0].headers


# -- the request -------------------------------------------------------------------------------

def test_request_shape(conn: SampleConnector) -> None:
    built = conn.build_chat_request(conn.prepare_chat("megachat-small", [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "this?"},
                                     {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
                                     {"type": "image_url", "image_url": "data:image/png;base64,AAAA"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "cold"},
    ], {"temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "stop": "END", "seed": 3, "safety": "strict",
        "tools": [_WEATHER], "tool_choice": "auto", "response_format": {"type": "json_object"}}, stream=True))
    assert (built.method, built.path) == ("POST", "/v2/generate")
    assert built.json == {
        "model": "megachat-small",
        "turns": [
            {"speaker": "system", "text": "Be brief."},
            {"speaker": "user", "text": "What is this?",
             "images": ["https://x.test/cat.png", "data:image/png;base64,AAAA"]},
            {"speaker": "bot", "text": "",
             "calls": [{"id": "c1", "tool": "get_weather", "args": {"city": "Oslo"}}]},
            {"speaker": "tool", "text": "cold", "answers": "c1"},
        ],
        "settings": {"temperature": 0.2, "top_p": 0.9, "max_output": 50, "stop_words": ["END"], "seed": 3,
                     "safety": "strict"},
        "tools": [{"name": "get_weather", "description": "Weather.",
                   "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_mode": "auto",
        "format": "json",
        "stream": True,
    }


@pytest.mark.parametrize(("choice", "mode"), [
    ("auto", "auto"), ("none", "off"), ("required", "must"), ("any", "must"),
    ({"type": "function", "function": {"name": "get_weather"}}, {"only": "get_weather"}),
])
def test_tool_modes(conn: SampleConnector, choice: Any, mode: Any) -> None:
    assert body_of(conn, tools=[_WEATHER], tool_choice=choice)["tool_mode"] == mode


def test_response_formats(conn: SampleConnector) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
    assert body_of(conn, response_format=schema)["format"] == {"name": "r", "schema": {"type": "object"}}
    assert "format" not in body_of(conn, response_format={"type": "text"})
    assert body_of(conn) == {"model": "megachat-large", "turns": [{"speaker": "user", "text": "Hi"}]}


@pytest.mark.parametrize(("options", "match"), [
    ({"temperature": 1.5}, "between 0 and 1"), ({"safety": "off"}, "strict"),
    ({"stop": ["s"] * 9}, "at most 8"),
    ({"frequency_penalty": 0.1}, "unknown option"),
])
def test_invalid_options(conn: SampleConnector, options: dict[str, Any], match: str) -> None:
    with pytest.raises(e.InvalidRequestError, match=match):
        body_of(conn, **options)


async def test_extra_and_provider_options_are_merged(server: FakeServer) -> None:
    async with connect(server.url) as conn:
        await conn.generate_chat(None, "Hi", temperature=0.5, extra={"trace": True},
                                 provider_options={"sample": {"settings": {"beam": 2}}, "ollama": {"x": 1}})
    body = server.requests[0].json()
    assert body["settings"] == {"temperature": 0.5, "beam": 2}
    assert body["trace"] is True
    assert "x" not in body


# -- the response ------------------------------------------------------------------------------

def _request(stream: bool = False) -> ChatRequest:
    return ChatRequest("megachat-large", (), {}, stream=stream)


@pytest.mark.parametrize(("stop", "finish"), [
    ("done", "stop"), ("stop_word", "stop"), ("max_output", "length"), ("tool", "tool_calls"),
    ("blocked", "content_filter"), ("sleepy", "other"),
])
def test_finish_reasons(conn: SampleConnector, stop: str, finish: str) -> None:
    resp = conn.parse_chat_response(megachat_answer("x", stop=stop), _request())
    assert (resp.finish_reason, resp.native_finish_reason) == (finish, stop)


def test_parse_response(conn: SampleConnector) -> None:
    call = ToolCall(id="c9", name="get_weather", arguments={"city": "Rome"})
    resp = conn.parse_chat_response(megachat_answer("", tool_calls=[call], stop="tool", prompt_tokens=4,
                                                    generated_tokens=2), _request())
    assert resp.tool_calls == [call]
    assert resp.usage == Usage(4, 2, 6)
    assert (resp.id, resp.model, resp.provider) == ("gen-fake", "megachat-large", "sample")
    no_usage = conn.parse_chat_response({"output": {"text": "hi"}}, _request())
    assert no_usage.usage == Usage()
    assert no_usage.finish_reason == "stop"
    no_ids = conn.parse_chat_response({"output": {"calls": [{"tool": "a"}, {"tool": "b"}]}},
                                      _request())
    assert [(c.id, c.name, c.arguments) for c in no_ids.tool_calls] == [("call_0", "a", {}), ("call_1", "b", {})]
    assert no_ids.finish_reason == "tool_calls"


@pytest.mark.parametrize("data", [[], {"output": "text"}, {"tokens": {}},
                                  {"output": {"text": "x", "calls": [{"args": {}}]}}])
def test_malformed_responses(conn: SampleConnector, data: Any) -> None:
    with pytest.raises(e.ProtocolError):
        conn.parse_chat_response(data, _request())


def test_failure_inside_a_200(conn: SampleConnector) -> None:
    with pytest.raises(e.ContentFilterError, match="not allowed"):
        conn.parse_chat_response(megachat_failure("blocked", "not allowed"), _request())


# -- the stream decoder: fixture in, value out -------------------------------------------------

def decode(conn: SampleConnector, data: bytes, cuts: Sequence[int] = ()) -> ChatResponse:
    """What the base class does with a stream, split at ``cuts``."""
    framer = SSEDecoder()
    decoder = conn.create_stream_decoder(_request(stream=True))
    edges = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(edges):
        for event in framer.feed(data[start:end]):
            decoder.feed(event)
    framer.close()
    decoder.finish()
    return decoder.response()


_CALLS = st.lists(st.builds(ToolCall, id=st.text("abc123", min_size=1, max_size=6),
                            name=st.sampled_from(["get_weather", "lookup"]),
                            arguments=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)),
                  max_size=2)


@settings(max_examples=300, deadline=None)
@given(deltas=st.lists(st.text(min_size=1, max_size=8), max_size=6), calls=_CALLS,
       newline=st.sampled_from(["\n", "\r\n", "\r"]), data=st.data())
def test_stream_any_split(deltas: list[str], calls: list[ToolCall], newline: str,
                          data: st.DataObject) -> None:
    conn = build_connector("sample", api_key=KEY)
    stop = "tool" if calls else "done"
    wire = b"".join(megachat_stream(deltas, tool_calls=calls, stop=stop, prompt_tokens=9, generated_tokens=4))
    wire = wire.replace(b"\n", newline.encode())  # JSON escapes raw newlines, so only framing changes
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12))
    resp = decode(conn, wire, cuts)
    assert resp.content == "".join(deltas)
    assert resp.tool_calls == calls
    assert resp.finish_reason == ("tool_calls" if calls else "stop")
    assert resp.usage == Usage(9, 4, 13)
    assert resp == decode(conn, wire)


def test_stream_ignores_unknown_events_and_anything_after_end(conn: SampleConnector) -> None:
    events = megachat_stream(["a", "b"])
    events.insert(2, megachat_event("thinking", {"text": "hmm"}))
    events.append(megachat_event("text", {"text": "late"}))
    assert decode(conn, b"".join(events)).content == "ab"


def test_stream_without_end_marker_is_an_error(conn: SampleConnector) -> None:
    with pytest.raises(e.ProtocolError, match="end-of-stream"):
        decode(conn, b"".join(megachat_stream(["a"], end=False)))


@pytest.mark.parametrize(("reason", "error"), [
    ("overloaded", e.OverloadedError), ("internal", e.ProviderError), ("rate_limited", e.RateLimitError)])
def test_stream_error_event(conn: SampleConnector, reason: str, error: type[e.LLMConnectorError]) -> None:
    failure = megachat_event("error", megachat_failure(reason, "no"))
    wire = b"".join([*megachat_stream(["a"], end=False), failure])
    with pytest.raises(error) as info:
        decode(conn, wire)
    assert type(info.value) is error
    assert info.value.status_code is None  # it came inside a 200, not as an HTTP status


def test_stream_bad_json(conn: SampleConnector) -> None:
    with pytest.raises(e.ProtocolError, match="text event"):
        decode(conn, b"event: text\ndata: {nope\n\n")


# -- against the fake service ------------------------------------------------------------------

async def test_chat_stream_and_tools(server: FakeServer) -> None:
    async with connect(server.url) as conn:
        whole = await conn.generate_chat(None, "Hi")
        chunks = [c async for c in conn.generate_chat_stream(None, "Hi")]
        called = await conn.generate_chat(None, "Hi", tools=[_WEATHER], tool_choice="required")
    assert "".join(c.delta for c in chunks) == whole.content == "Hello from MegaChat."
    assert chunks[-1].usage == whole.usage == Usage(7, 3, 10)
    assert called.finish_reason == "tool_calls"
    assert [c.name for c in called.tool_calls] == ["get_weather"]


async def test_embeddings_are_batched_in_order(server: FakeServer) -> None:
    texts = [f"text {i}" for i in range(130)]
    async with connect(server.url) as conn:
        emb = await conn.generate_embedding(None, texts, dimensions=4)
        one = await conn.generate_embedding(None, "text 129", dimensions=4)
    assert len(server.requests) == 4  # 64 + 64 + 2, then one
    assert sorted(len(r.json()["texts"]) for r in server.requests[:3]) == [2, 64, 64]  # concurrent
    assert len(emb.embeddings) == 130
    assert emb.embeddings[129] == one.embeddings[0]
    assert emb.usage.input_tokens == 260
    assert emb.model == "megachat-embed"


async def test_models_are_paged(server: FakeServer) -> None:
    async with connect(server.url) as conn:
        models = await conn.list_models()
        assert await conn.health_check() is True
    assert [m.id for m in models] == ["megachat-large", "megachat-small", "megachat-embed"]
    assert models[0].name == "Megachat Large"
    assert models[0].context_length == 32768
    assert [r.query.get("cursor") for r in server.requests[:2]] == [None, "2"]


async def test_wrong_key(server: FakeServer) -> None:
    async with connect(server.url, api_key="wrong-key-123") as conn:
        with pytest.raises(e.AuthenticationError) as info:
            await conn.generate_chat(None, "Hi")
        assert await conn.health_check() is False
    assert info.value.request_id == "trace-fake"
    assert "wrong-key-123" not in str(info.value)


@pytest.mark.parametrize(("status", "body", "error", "retryable"), [
    (429, megachat_failure("rate_limited", "slow down"), e.RateLimitError, True),
    (429, megachat_failure("quota_exhausted", "no credit left"), e.QuotaExceededError, False),
    (400, megachat_failure("context_too_long", "too long"), e.ContextWindowExceededError, False),
    (400, megachat_failure("bad_request", "prompt is too long for this model"), e.ContextWindowExceededError,
     False),
    (404, megachat_failure("unknown_model", "no such model"), e.NotFoundError, False),
    (503, megachat_failure("overloaded", "busy"), e.OverloadedError, True),
    (502, b"<html><body>Bad gateway</body></html>", e.ProviderError, True),
    (500, {"error": {"message": "proxy says no", "type": "api_error"}}, e.ProviderError, True),
])
async def test_error_bodies(fake: MegaChatFake, server: FakeServer, status: int, body: Any,
                            error: type[e.LLMConnectorError], retryable: bool) -> None:
    headers = {"megachat-trace-id": "trace-7", "retry-after": "3"}
    fake.replies.append(Reply(status, headers, body) if isinstance(body, bytes) else
                        Reply.json(body, status, headers))
    async with connect(server.url) as conn:
        with pytest.raises(e.LLMConnectorError) as info:
            await conn.generate_chat(None, "Hi")
    err = info.value
    assert type(err) is error
    assert (err.status_code, err.request_id) == (status, "trace-7")
    assert (err.retryable, err.retry_after) == (retryable, 3.0)
    if isinstance(body, bytes):  # a proxy's page: the generic parser, no HTML in the message
        assert "no readable error body" in err.message


async def test_stream_interrupted_keeps_partial(fake: MegaChatFake, server: FakeServer) -> None:
    events = megachat_stream(["Hel", "lo"], end=False)
    failure = megachat_event("error", megachat_failure("overloaded", "x"))
    fake.replies.append(Reply.sse([*events, 0.05, failure]))
    async with connect(server.url) as conn:
        stream = conn.generate_chat_stream(None, "Hi")
        with pytest.raises(e.StreamInterruptedError) as info:
            await stream.collect()
    assert info.value.partial == "Hello"
    assert isinstance(info.value.__cause__, e.OverloadedError)
