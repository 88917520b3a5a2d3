"""The OpenAI connector against respx: wire shapes in, typed values out."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import anyio
import httpx
import pytest
import respx
from builders import build_connector

import llm_connectors as lc
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.testing.kit import TEST_KEY
from llm_connectors.testing.openai_wire import openai_chat_json, openai_sse_events, sse

pytestmark = pytest.mark.anyio
BASE = "https://api.openai.com/v1"
USER = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def mock() -> Any:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def conn() -> Any:
    # Wire-mapping tests want each error as it comes: no retries, no breaker (see tests/resilience/).
    async with build_connector("openai") as c:
        yield c


def sent(route: respx.Route, n: int = -1) -> dict[str, Any]:
    return json.loads(route.calls[n].request.content)  # type: ignore[no-any-return]


def stream_reply(events: list[bytes]) -> httpx.Response:
    return httpx.Response(200, content=b"".join(events), headers={"content-type": "text/event-stream"})


# -- request shapes -------------------------------------------------------------------------------

async def test_chat_request_shape_and_headers(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions").respond(json=openai_chat_json("Hello"))
    await conn.generate_chat("gpt-5.4-mini", [{"role": "system", "content": "Be brief."}, *USER],
                             temperature=0.2, top_p=0.9, max_tokens=50, stop="END", seed=7,
                             frequency_penalty=0.5)
    request = route.calls[0].request
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("llm-connectors/")
    assert sent(route) == {
        "model": "gpt-5.4-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 50, "stop": ["END"], "seed": 7,
        "frequency_penalty": 0.5,
    }


async def test_default_model_and_provider_prefix(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions").respond(json=openai_chat_json("x"))
    await conn.generate_chat(None, USER)
    await conn.generate_chat("openai:gpt-4.1", USER)
    assert [sent(route, i)["model"] for i in (0, 1)] == ["gpt-5.4-mini", "gpt-4.1"]
    with pytest.raises(lc.InvalidRequestError, match="routed to provider 'claude'"):
        await conn.generate_chat("claude:claude-sonnet-4-5", USER)
    assert len(route.calls) == 2


async def test_tools_tool_choice_and_round_trip(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions").respond(json=openai_chat_json("ok"))
    tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                             "parameters": {"type": "object",
                                                            "properties": {"city": {"type": "string"}}}}}
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                              "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    await conn.generate_chat(None, messages, tools=[tool], tool_choice={"name": "get_weather"},
                             parallel_tool_calls=False)
    body = sent(route)
    assert body["tools"] == [tool]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                              "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]


async def test_vision_parts_and_json_modes(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions").respond(json=openai_chat_json("{}"))
    parts = [{"type": "text", "text": "What is this?"},
             {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
             {"type": "image_url", "image_url": "data:image/png;base64,iVBORw0KGgo="}]
    await conn.generate_chat(None, [{"role": "user", "content": parts}], response_format={"type": "json_object"})
    body = sent(route)
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    assert body["response_format"] == {"type": "json_object"}
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    await conn.generate_chat(None, USER, response_format={
        "type": "json_schema", "json_schema": {"name": "num", "schema": schema, "strict": True}})
    assert sent(route)["response_format"] == {"type": "json_schema",
                                              "json_schema": {"name": "num", "schema": schema, "strict": True}}


async def test_extra_and_provider_options_deep_merge(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions").respond(json=openai_chat_json("x"))
    await conn.generate_chat(None, USER, metadata={"a": "1"}, extra={"metadata": {"b": "2"}, "x": 1},
                             provider_options={"openai": {"x": 2}, "claude": {"ignored": True}})
    body = sent(route)
    assert body["metadata"] == {"a": "1", "b": "2"} and body["x"] == 2 and "ignored" not in body


async def test_organization_and_project_headers(mock: Any) -> None:
    route = mock.post("/chat/completions").respond(json=openai_chat_json("x"))
    async with build_connector("openai", organization="org-1", project="proj-1", headers={"x-trace": "t"}) as conn:
        await conn.generate_chat(None, USER)
    headers = route.calls[0].request.headers
    assert (headers["openai-organization"], headers["openai-project"], headers["x-trace"]) == (
        "org-1", "proj-1", "t")


# -- responses --------------------------------------------------------------------------------------

async def test_response_parsing(mock: Any, conn: OpenAIConnector) -> None:
    body = openai_chat_json("", finish_reason="tool_calls", tool_calls=[
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": [1, 2]}'}},
        {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{not json"}}],
        usage={"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
               "prompt_tokens_details": {"cached_tokens": 64},
               "completion_tokens_details": {"reasoning_tokens": 12}})
    mock.post("/chat/completions").respond(json=body, headers={"x-request-id": "req_9"})
    resp = await conn.generate_chat(None, USER)
    assert resp.content == "" and resp.finish_reason == "tool_calls" and resp.provider == "openai"
    assert resp.tool_calls[0].arguments == {"a": [1, 2]}
    assert resp.tool_calls[1].arguments == {} and resp.tool_calls[1].parse_error
    assert resp.usage == lc.Usage(100, 20, 120, cache_read_tokens=64, reasoning_tokens=12)
    assert resp.raw == body and resp.id == "chatcmpl-fake"


async def test_refusal_and_odd_finish_reasons(mock: Any, conn: OpenAIConnector) -> None:
    body = openai_chat_json("", finish_reason="stop")
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "I can't help."}
    route = mock.post("/chat/completions").respond(json=body)
    resp = await conn.generate_chat(None, USER)
    assert (resp.content, resp.finish_reason) == ("I can't help.", "content_filter")
    route.respond(json=openai_chat_json("x", finish_reason="something_new"))
    resp = await conn.generate_chat(None, USER)
    assert (resp.finish_reason, resp.native_finish_reason) == ("other", "something_new")


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"choices": []}', b'{"x": NaN}', b"[" * 50_000])
async def test_malformed_responses_are_protocol_errors(mock: Any, conn: OpenAIConnector, body: bytes) -> None:
    mock.post("/chat/completions").respond(200, content=body)
    with pytest.raises(lc.ProtocolError):
        await conn.generate_chat(None, USER)


async def test_error_mapping(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions")
    cases = [
        (401, {"message": "Incorrect API key provided", "type": "invalid_request_error",
               "code": "invalid_api_key"}, {}, lc.AuthenticationError),
        (429, {"message": "Rate limit reached. Please try again in 1.5s.", "type": "requests",
               "code": "rate_limit_exceeded"}, {"retry-after-ms": "1500"}, lc.RateLimitError),
        (429, {"message": "You exceeded your current quota", "type": "insufficient_quota",
               "code": "insufficient_quota"}, {}, lc.QuotaExceededError),
        (400, {"message": "This model's maximum context length is 128000 tokens.", "type":
               "invalid_request_error", "code": "context_length_exceeded"}, {}, lc.ContextWindowExceededError),
        (500, {"message": "The server had an error", "type": "server_error", "code": None}, {},
         lc.ProviderError),
    ]
    for status, error, headers, cls in cases:
        route.respond(status, json={"error": {**error, "param": None}},
                      headers={"x-request-id": "req_1", **headers})
        with pytest.raises(cls) as info:
            await conn.generate_chat(None, USER)
        assert info.value.status_code == status and info.value.request_id == "req_1"
        assert info.value.message == error["message"] and info.value.provider == "openai"
    assert info.value.retryable
    route.respond(429, json={"error": {"message": "m"}}, headers={"retry-after-ms": "1500"})
    with pytest.raises(lc.RateLimitError) as rate:
        await conn.generate_chat(None, USER)
    assert rate.value.retry_after == 1.5


async def test_redirect_is_not_followed(mock: Any, conn: OpenAIConnector) -> None:
    mock.post("/chat/completions").respond(307, headers={"location": "https://evil.example/v1"})
    with pytest.raises(lc.ConfigurationError, match=r"redirect to evil\.example"):
        await conn.generate_chat(None, USER)


async def test_network_errors_are_typed(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions")
    route.side_effect = httpx.ConnectError("refused")
    with pytest.raises(lc.NetworkError, match="could not connect") as info:
        await conn.generate_chat(None, USER)
    assert info.value.retryable and isinstance(info.value.__cause__, httpx.ConnectError)
    route.side_effect = httpx.ReadTimeout("slow")
    with pytest.raises(lc.TimeoutError, match="read timeout"):
        await conn.generate_chat(None, USER)


async def test_overall_deadline(mock: Any, conn: OpenAIConnector) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(5)
        return httpx.Response(200, json=openai_chat_json("late"))

    mock.post("/chat/completions").mock(side_effect=slow)
    with anyio.fail_after(3):
        with pytest.raises(lc.TimeoutError, match="deadline"):
            await conn.generate_chat(None, USER, timeout=0.2)


# -- streaming ------------------------------------------------------------------------------------

async def test_stream_request_and_chunks(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions").mock(return_value=stream_reply(
        openai_sse_events(["Hel", "lo", "!"], usage={"prompt_tokens": 5, "completion_tokens": 3,
                                                     "total_tokens": 8})))
    chunks = [c async for c in conn.generate_chat_stream(None, USER, max_tokens=9)]
    body = sent(route)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 9
    assert [c.delta for c in chunks] == ["Hel", "lo", "!", ""]
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage == lc.Usage(5, 3, 8)


async def test_stream_tool_call_fragments_assembled_by_index(mock: Any, conn: OpenAIConnector) -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({**base, "choices": [{"index": 0, "delta": d, "finish_reason": finish}]})

    events = [
        delta({"role": "assistant", "content": None}),
        delta({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "f", "arguments": ""}}]}),
        delta({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "g", "arguments": '{"y"'}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"x": '}}]}),
        delta({"tool_calls": [{"index": 1, "function": {"arguments": ": 2}"}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        delta({}, "tool_calls"),
        sse({**base, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}),
        sse("[DONE]"),
    ]
    mock.post("/chat/completions").mock(return_value=stream_reply(events))
    async with conn.generate_chat_stream(None, USER, tools=[{"name": "f"}, {"name": "g"}]) as stream:
        chunks = [c async for c in stream]
    assert len(chunks) == 1  # no text: one final chunk carries the calls, reason and usage
    assert [(c.id, c.name, c.arguments) for c in chunks[0].tool_calls] == [
        ("call_a", "f", {"x": 1}), ("call_b", "g", {"y": 2})]
    assert stream.response.finish_reason == "tool_calls" and stream.response.usage.total_tokens == 3


async def test_stream_vs_non_stream_parity(mock: Any, conn: OpenAIConnector) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    text = "The answer is 42."
    mock.post("/chat/completions").mock(side_effect=lambda request: (
        stream_reply(openai_sse_events(["The answer", " is", " 42."], usage=usage))
        if json.loads(request.content).get("stream")
        else httpx.Response(200, json=openai_chat_json(text, usage=usage))))
    plain = await conn.generate_chat(None, USER)
    streamed = await conn.generate_chat_stream(None, USER).collect()
    for field in ("content", "finish_reason", "usage", "tool_calls", "provider", "model", "id", "reasoning"):
        assert getattr(streamed, field) == getattr(plain, field), field


async def test_stream_in_band_error_before_first_delta(mock: Any, conn: OpenAIConnector) -> None:
    events = [sse({"error": {"message": "overloaded", "type": "server_error", "code": "overloaded_error"}})]
    mock.post("/chat/completions").mock(return_value=stream_reply(events))
    with pytest.raises(lc.OverloadedError):
        await conn.generate_chat_stream(None, USER).collect()


async def test_stream_broken_after_delta_carries_partial(mock: Any, conn: OpenAIConnector) -> None:
    events = openai_sse_events(["one", " two"], done=False, include_usage=False)[:-1]
    mock.post("/chat/completions").mock(return_value=stream_reply(events))  # ends without [DONE]
    received = []
    with pytest.raises(lc.StreamInterruptedError) as info:
        async with conn.generate_chat_stream(None, USER) as stream:
            async for chunk in stream:
                received.append(chunk.delta)
    assert info.value.partial == "one two" == "".join(received)
    assert isinstance(info.value.__cause__, lc.ProtocolError)


async def test_stream_http_error_raised_on_first_iteration(mock: Any, conn: OpenAIConnector) -> None:
    mock.post("/chat/completions").respond(401, json={"error": {"message": "bad key"}})
    stream = conn.generate_chat_stream(None, USER)
    with pytest.raises(lc.AuthenticationError):
        await stream.__anext__()
    with pytest.raises(StopAsyncIteration):  # a failed stream stays finished
        await stream.__anext__()


async def test_stream_response_before_drained(mock: Any, conn: OpenAIConnector) -> None:
    mock.post("/chat/completions").mock(return_value=stream_reply(openai_sse_events(["a", "b"])))
    async with conn.generate_chat_stream(None, USER) as stream:
        first = await stream.__anext__()
        assert first.delta == "a" and stream.text == "a"
        with pytest.raises(RuntimeError, match="not finished"):
            _ = stream.response
    with pytest.raises(RuntimeError, match="closed before it finished"):
        await stream.collect()


async def test_options_validated_before_stream_is_sent(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions")
    with pytest.raises(lc.InvalidRequestError):
        conn.generate_chat_stream(None, USER, temperature=9)
    assert not route.calls


# -- embeddings, models, health ------------------------------------------------------------------

def b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def test_embeddings_single_and_base64(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/embeddings").respond(json={
        "object": "list", "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": b64([0.5, -1.0, 2.25])}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4}})
    emb = await conn.generate_embedding(None, "Text to embed", dimensions=3)
    assert sent(route) == {"model": "text-embedding-3-small", "input": ["Text to embed"],
                           "encoding_format": "base64", "dimensions": 3}
    assert emb.embeddings == [[0.5, -1.0, 2.25]] and emb.usage == lc.Usage(4, None, 4)
    assert emb.provider == "openai"


async def test_embeddings_order_kept_by_index(mock: Any, conn: OpenAIConnector) -> None:
    mock.post("/embeddings").respond(json={"object": "list", "model": "m", "data": [
        {"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}], "usage": {}})
    emb = await conn.generate_embedding(None, ["a", "b"])
    assert emb.embeddings == [[1.0], [2.0]]


async def test_embeddings_split_over_the_input_limit(mock: Any) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        return httpx.Response(200, json={"model": "m", "usage": {"prompt_tokens": len(inputs),
                                                                  "total_tokens": len(inputs)},
                                         "data": [{"index": i, "embedding": [float(text)]}
                                                  for i, text in enumerate(inputs)]})

    route = mock.post("/embeddings").mock(side_effect=answer)
    texts = [str(i) for i in range(5000)]
    async with build_connector("openai") as conn:
        conn.embedding_encoding = None  # type: ignore[misc]  # floats, to keep the check readable
        emb = await conn.generate_embedding(None, texts)
    assert len(route.calls) == 3  # 2048 + 2048 + 904
    assert [v[0] for v in emb.embeddings] == [float(t) for t in texts]
    assert emb.usage.input_tokens == 5000


async def test_embedding_input_validation(mock: Any, conn: OpenAIConnector) -> None:
    for bad in ([], [1], ""):
        with pytest.raises(lc.InvalidRequestError):
            await conn.generate_embedding(None, bad)  # type: ignore[arg-type]
    with pytest.raises(lc.InvalidRequestError, match="Did you mean 'dimensions'"):
        await conn.generate_embedding(None, "x", dimension=3)
    assert not mock.calls


async def test_embedding_count_mismatch(mock: Any, conn: OpenAIConnector) -> None:
    mock.post("/embeddings").respond(json={"data": [{"index": 0, "embedding": [1.0]}]})
    with pytest.raises(lc.ProtocolError, match="1 vectors for 2 inputs"):
        await conn.generate_embedding(None, ["a", "b"])


async def test_list_models_and_health(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.get("/models").respond(json={"object": "list", "data": [
        {"id": "gpt-5.4", "object": "model", "created": 1, "owned_by": "openai"}]})
    models = await conn.list_models()
    # what OpenAI reported; the rest of each ModelInfo is filled in from the model catalog
    assert [(m.id, m.name, m.created) for m in models] == [("gpt-5.4", "gpt-5.4", 1)]
    assert await conn.health_check() is True
    route.respond(401, json={"error": {"message": "bad key"}})
    assert await conn.health_check() is False


async def test_capabilities_and_model_compatibility(conn: OpenAIConnector) -> None:
    assert "embeddings" in conn.capabilities and conn.definition.id == "openai"
    assert conn.is_compatible_model("gpt-4.1") and conn.is_compatible_model("openai:o3-mini")
    assert not conn.is_compatible_model("claude-sonnet-4-5")


async def test_stats_count_requests_errors_and_tokens(mock: Any, conn: OpenAIConnector) -> None:
    route = mock.post("/chat/completions").respond(json=openai_chat_json("x", usage={
        "prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}))
    await conn.generate_chat(None, USER)
    route.respond(500, json={"error": {"message": "boom"}})
    with pytest.raises(lc.ProviderError):
        await conn.generate_chat(None, USER)
    stats = conn.stats()["openai"]
    assert (stats["requests"], stats["successes"], stats["errors"]) == (2, 1, {"ProviderError": 1})
    assert (stats["input_tokens"], stats["output_tokens"]) == (3, 1)
    assert stats["latency_s"]["p50"] is not None


async def test_lifecycle_and_own_client(mock: Any) -> None:
    mock.post("/chat/completions").respond(json=openai_chat_json("x"))
    client = httpx.AsyncClient()
    conn = build_connector("openai", http_client=client)
    await conn.generate_chat(None, USER)
    await conn.aclose()
    assert not client.is_closed  # the caller's client is the caller's to close
    await client.aclose()
    with pytest.raises(lc.ConfigurationError, match="closed"):
        await conn.generate_chat(None, USER)


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(lc.ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIConnector()
