"""Mistral connector: request bodies (and parity with the official SDK), response and stream
parsing, error mapping, tool-call ids, embeddings, models, and the fake Mistral server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from builders import build_connector
from hypothesis import given, settings, strategies as st

import llm_connectors as lc
from llm_connectors.connectors.mistral import MistralConnector, mistral_tool_call_id
from llm_connectors.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    LLMConnectorError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    StreamInterruptedError,
    TimeoutError,
)
from llm_connectors.testing import FakeServer
from llm_connectors.testing.kit import TEST_KEY
from llm_connectors.testing.mistral_wire import MistralFake, MistralWireKit
from llm_connectors.types import ChatChunk, ChatResponse, ReasoningBlock, ToolCall, Usage
from llm_connectors.wire.framing import SSEDecoder

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mistral"
BASE = "https://api.mistral.ai/v1"
MODEL = "mistral-small-latest"
VALID_ID = re.compile(r"[A-Za-z0-9]{9}")

SYSTEM_USER = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]
ASK = [{"role": "user", "content": "Weather in Paris?"}]
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}


def round_trip(call_id: str) -> list[dict[str, Any]]:
    return [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": call_id, "name": "get_weather", "content": "18C and sunny"},
    ]


# Neutral inputs, keyed by the fixture in sdk_requests/ the official SDK produced for them.
CHAT_CASES: dict[str, dict[str, Any]] = {
    "system_user": {"messages": SYSTEM_USER},
    "multi_turn": {"messages": [*SYSTEM_USER, {"role": "assistant", "content": "Hi."},
                                {"role": "user", "content": "And?"}]},
    "temperature": {"messages": SYSTEM_USER, "temperature": 0.3},
    "max_tokens": {"messages": SYSTEM_USER, "max_tokens": 64},
    "seed": {"messages": SYSTEM_USER, "seed": 42},
    "stop": {"messages": SYSTEM_USER, "stop": ["END", "\n\n"]},
    "one_tool": {"messages": ASK, "tools": [TOOL]},
    "tool_choice_any": {"messages": ASK, "tools": [TOOL], "tool_choice": "required"},
    "tool_choice_named": {"messages": ASK, "tools": [TOOL],
                          "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    "tool_round_trip": {"messages": round_trip("D681PevKs"), "tools": [TOOL]},
    "image": {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]},
    "json_mode": {"messages": SYSTEM_USER, "response_format": {"type": "json_object"}},
    "json_schema": {"messages": SYSTEM_USER, "response_format": {
        "type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}},
    "options": {"messages": SYSTEM_USER, "top_p": 0.9, "safe_prompt": True, "frequency_penalty": 0.5,
                "presence_penalty": 0.25, "parallel_tool_calls": False, "prompt_mode": "reasoning",
                "reasoning_effort": "high", "prediction": {"type": "content", "content": "Hello"}},
    "reasoning_effort_max": {"messages": SYSTEM_USER, "reasoning_effort": "max"},
    # An earlier Mistral answer sent back as ChatResponse.message gives it: the signed thinking block.
    "thinking_round_trip": {"messages": [
        {"role": "user", "content": "How do I cross the road?"},
        {"role": "assistant", "content": "Look both ways, then cross.",
         "reasoning": [{"text": "Okay, the user asks how to cross.", "signature": "c2lnbmF0dXJlLTE="}]},
        {"role": "user", "content": "And at night?"}]},
    "documents": {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarise these."},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQKJcOkw7zDtsOfCg==",
                                  "filename": "report.pdf"}},
        {"type": "file", "file": {"url": "https://example.com/paper.pdf"}, "cache_control": {"type": "ephemeral"}},
        {"type": "file", "file": {"file_id": "0b4f5a1e-6a7d-4d2e-9c1f-3a2b1c0d9e8f"}}]}]},
}
STREAM_CASES = ("system_user", "one_tool")
EMBEDDING_CASES: dict[str, dict[str, Any]] = {
    "embeddings": {},
    "embeddings_dimension": {"dimensions": 256},
}


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


def sdk_request(name: str) -> dict[str, Any]:
    return fixture_json(f"sdk_requests/mistralai-3.7.0/{name}.json")  # type: ignore[no-any-return]


#: The SDK requests in fixtures/mistral/sdk_requests/mistralai-3.7.0 were captured with this key.
make = partial(build_connector, "mistral", api_key="test-key")


def sse_response(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "text/event-stream"},
                          content=(FIXTURES / name).read_bytes())


def sent_body(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


async def chat(**case: Any) -> respx.Route:
    """Send one non-streaming chat and return the mocked route that received it."""
    case = dict(case)
    messages = case.pop("messages")
    with respx.mock(base_url=BASE) as router:
        route = router.post("/chat/completions").respond(json=fixture_json("chat.json"))
        async with make() as conn:
            await conn.generate_chat(MODEL, messages, **case)
    return route


async def collect_stream(conn: lc.BaseConnector, messages: Any = "Hi", **options: Any) -> list[ChatChunk]:
    chunks = []
    async with conn.generate_chat_stream(MODEL, messages, **options) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


async def failure(response: httpx.Response, *, stream: bool = False, **kwargs: Any) -> LLMConnectorError:
    """The error a chat (or a stream) raises when Mistral answers ``response``."""
    with respx.mock(base_url=BASE) as router:
        router.post("/chat/completions").mock(return_value=response)
        async with make(**kwargs) as conn:
            with pytest.raises(LLMConnectorError) as info:
                if stream:
                    await collect_stream(conn)
                else:
                    await conn.generate_chat(None, "Hi")
    return info.value


# -- request bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CHAT_CASES))
async def test_body_matches_official_sdk(case: str) -> None:
    expected = sdk_request(case)
    route = await chat(**CHAT_CASES[case])
    request = route.calls.last.request
    assert request.url.path == expected["path"]
    assert json.loads(request.content) == expected["body"]
    for name, value in expected["headers"].items():
        assert request.headers[name] == value


@pytest.mark.parametrize("case", STREAM_CASES)
async def test_stream_body_matches_official_sdk(case: str) -> None:
    expected = sdk_request("stream_" + case)
    options = dict(CHAT_CASES[case])
    messages = options.pop("messages")
    with respx.mock(base_url=BASE) as router:
        route = router.post("/chat/completions").mock(return_value=sse_response("chat_stream.sse"))
        async with make() as conn:
            await collect_stream(conn, messages, **options)
    request = route.calls.last.request
    assert json.loads(request.content) == expected["body"]
    assert "stream_options" not in expected["body"]
    for name, value in expected["headers"].items():
        assert request.headers[name] == value


@pytest.mark.parametrize("case", sorted(EMBEDDING_CASES))
async def test_embedding_body_matches_official_sdk(case: str) -> None:
    expected = sdk_request(case)
    with respx.mock(base_url=BASE) as router:
        route = router.post("/embeddings").respond(json=fixture_json("embeddings.json"))
        async with make() as conn:
            await conn.generate_embedding("mistral-embed", ["first text", "second text"],
                                          **EMBEDDING_CASES[case])
    request = route.calls.last.request
    assert request.url.path == expected["path"]
    assert json.loads(request.content) == expected["body"]
    for name, value in expected["headers"].items():
        assert request.headers[name] == value


async def test_neutral_options_use_mistral_field_names() -> None:
    body = sent_body(await chat(messages="Hi", seed=7, max_tokens=10, temperature=1.5, stop="END",
                                tool_choice="any", tools=[TOOL]))
    assert body["random_seed"] == 7 and "seed" not in body
    assert body["max_tokens"] == 10 and "max_completion_tokens" not in body
    assert body["temperature"] == 1.5
    assert body["stop"] == ["END"]
    assert body["tool_choice"] == "any"  # our "any" alias is "required", which Mistral calls "any"
    assert body["stream"] is False


async def test_names_only_on_tool_messages() -> None:
    messages = [{"role": "system", "content": "s", "name": "boss"}, {"role": "user", "content": "u", "name": "ann"},
                {"role": "assistant", "content": "a", "name": "bot"}, {"role": "user", "content": "again"}]
    body = sent_body(await chat(messages=messages))
    assert all("name" not in m for m in body["messages"])  # Mistral answers 422 extra_forbidden


async def test_extra_and_provider_options_are_merged() -> None:
    body = sent_body(await chat(messages="Hi", extra={"n": 1},
                                provider_options={"mistral": {"guardrails": []}, "claude": {"x": 1}}))
    assert body["n"] == 1 and body["guardrails"] == [] and "x" not in body


# -- tool-call ids -------------------------------------------------------------------------------


def test_tool_call_id_mapping() -> None:
    assert mistral_tool_call_id("D681PevKs") == "D681PevKs"  # already valid: untouched
    mapped = mistral_tool_call_id("call_9ZkPp1b2c3d4e5f6")
    assert VALID_ID.fullmatch(mapped)
    assert mistral_tool_call_id("call_9ZkPp1b2c3d4e5f6") == mapped  # deterministic
    for foreign in ("toolu_01A09q90qw90lq917835lq9", "call_0", "", "abc", "abcdefgh_", "ab-defghi", "ÀBCDEFGHI"):
        assert VALID_ID.fullmatch(mistral_tool_call_id(foreign)), foreign
    ids = {mistral_tool_call_id(f"call_{i}") for i in range(5000)}
    assert len(ids) == 5000  # no collisions among related ids


async def test_foreign_tool_call_ids_are_mapped_consistently() -> None:
    foreign = "call_9ZkPp1b2c3d4e5f6g7h8"
    bodies = [sent_body(await chat(messages=round_trip(foreign), tools=[TOOL])) for _ in range(2)]
    expected = mistral_tool_call_id(foreign)
    for body in bodies:
        assistant, tool = body["messages"][1], body["messages"][2]
        assert assistant["tool_calls"] == [{"id": expected, "type": "function", "index": 0, "function": {
            "name": "get_weather", "arguments": '{"city":"Paris"}'}}]
        assert tool == {"role": "tool", "tool_call_id": expected, "name": "get_weather", "content": "18C and sunny"}


async def test_tool_results_keep_images_as_chunks() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [*round_trip("D681PevKs")[:2],
                {"role": "tool", "tool_call_id": "D681PevKs", "content": [{"type": "text", "text": "see"}, image]},
                {"role": "tool", "tool_call_id": "D681PevKs", "content": [{"type": "text", "text": "a"},
                                                                          {"type": "text", "text": "b"}]}]
    body = sent_body(await chat(messages=messages, tools=[TOOL]))
    assert body["messages"][2]["content"] == [{"type": "text", "text": "see"}, image]
    assert body["messages"][3]["content"] == "ab"  # text-only results stay a string


# -- validation before any I/O -------------------------------------------------------------------


@pytest.mark.parametrize(("options", "words"), [
    ({"temperature": 1.6}, "between 0 and 1.5"),
    ({"top_p": 0}, "greater than 0"),
    ({"top_p": 1.1}, "between 0 and 1"),
    ({"seed": -1}, ">= 0"),
    ({"reasoning_effort": "ultra"}, "'max'"),
    ({"prompt_mode": "fast"}, "'reasoning'"),
    ({"safe_prompt": "yes"}, "True or False"),
    ({"frequency_penalty": 3}, "between -2 and 2"),
    ({"prediction": {"type": "text", "content": "x"}}, "prediction"),
    ({"prediction": {"content": 1}}, "prediction"),
    ({"service_tier": "priority"}, "standard_only"),
    ({"max_completion_tokens": 5}, "max_tokens"),
])
def test_invalid_options_raise_before_sending(options: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        make().prepare_chat(None, "Hi", options, stream=False)
    assert words in str(info.value)


def test_prediction_type_defaults_to_content() -> None:
    request = make().prepare_chat(None, "Hi", {"prediction": {"content": "x"}}, stream=False)
    assert request.params["prediction"] == {"type": "content", "content": "x"}


def test_images_in_system_messages_are_refused() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    with pytest.raises(InvalidRequestError, match="system messages take text only"):
        make().prepare_chat(None, [{"role": "system", "content": [image]}, {"role": "user", "content": "Hi"}],
                            {}, stream=False)


# -- definition, configuration -------------------------------------------------------------------


def test_definition() -> None:
    conn = make()
    assert conn.base_url == BASE
    assert conn.default_model == "mistral-small-latest"
    assert conn.default_embedding_model == "mistral-embed"
    for model in ("mistral-large-latest", "open-mistral-nemo", "codestral-2508", "pixtral-large-latest",
                  "ministral-8b-latest", "magistral-medium-latest", "devstral-small-latest",
                  "voxtral-mini-latest", "mistral-embed", "mistral:mistral-small-latest"):
        assert conn.is_compatible_model(model), model
    assert not conn.is_compatible_model("gpt-5.4-mini")
    data = lc.describe("mistral")
    assert data["base_url_env"] == "MISTRAL_BASE_URL" and data["auth"]["env_var"] == "MISTRAL_API_KEY"


@pytest.mark.parametrize(("given", "used"), [
    ("https://api.mistral.ai", BASE), ("https://api.mistral.ai/", BASE), (BASE + "/", BASE),
    ("http://127.0.0.1:9/proxy", "http://127.0.0.1:9/proxy"),
])
def test_base_url(given: str, used: str) -> None:
    assert MistralConnector(api_key="test-key", base_url=given).base_url == used  # as given, no kit path added


async def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "env-key")
    monkeypatch.setenv("MISTRAL_BASE_URL", "https://eu.example.com/v1")
    async with lc.get_connector("mistral:magistral-medium-latest") as conn:
        assert isinstance(conn, MistralConnector)
        assert conn.base_url == "https://eu.example.com/v1"
        assert conn.default_model == "magistral-medium-latest"
        assert conn.auth_headers() == {"authorization": "Bearer env-key"}
    monkeypatch.delenv("MISTRAL_API_KEY")
    with pytest.raises(lc.ConfigurationError, match="MISTRAL_API_KEY"):
        await lc.get_connector("mistral")


# -- responses -----------------------------------------------------------------------------------


def parse(name: str) -> ChatResponse:
    conn = make()
    return conn.parse_chat_response(fixture_json(name), conn.prepare_chat(None, "Hi", {}, stream=False))


def test_parse_text_response() -> None:
    resp = parse("chat.json")
    assert resp.content == "Paris is the capital of France."
    assert resp.finish_reason == "stop" and resp.native_finish_reason == "stop"
    assert resp.usage == Usage(12, 9, 21)
    assert (resp.provider, resp.model, resp.id) == ("mistral", "mistral-small-latest",
                                                     "1474ffaa42904bf3b040345bc85c775b")
    assert resp.tool_calls == [] and resp.reasoning == ""


def test_parse_tool_calls_without_type_string_and_object_arguments() -> None:
    resp = parse("chat_tool_calls.json")
    assert resp.finish_reason == "tool_calls" and resp.content == ""
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [
        ("FI5qQGzDE", "get_weather", {"city": "Paris"}), ("ot1MIoEMA", "get_time", {"tz": "Europe/Paris"})]
    # Sent back, the calls keep their ids and become JSON strings.
    wire = make().wire_message(resp.message)
    assert [c["id"] for c in wire["tool_calls"]] == ["FI5qQGzDE", "ot1MIoEMA"]
    assert json.loads(wire["tool_calls"][1]["function"]["arguments"]) == {"tz": "Europe/Paris"}


def test_parse_thinking_content_chunks() -> None:
    resp = parse("chat_thinking.json")
    assert resp.content == "Look both ways, then cross."
    assert resp.reasoning == "Okay, the user asks how to cross."
    assert resp.reasoning_blocks == [ReasoningBlock(text="Okay, the user asks how to cross.")]


@pytest.mark.parametrize(("native", "normalised"), [
    ("stop", "stop"), ("length", "length"), ("model_length", "length"), ("tool_calls", "tool_calls"),
    ("error", "error"), ("something_new", "other"),
])
def test_finish_reasons(native: str, normalised: str) -> None:
    data = fixture_json("chat.json")
    data["choices"][0]["finish_reason"] = native
    conn = make()
    resp = conn.parse_chat_response(data, conn.prepare_chat(None, "Hi", {}, stream=False))
    assert (resp.finish_reason, resp.native_finish_reason) == (normalised, native)


def test_placeholder_tool_call_id_is_not_an_id() -> None:
    data = fixture_json("chat_tool_calls.json")
    data["choices"][0]["message"]["tool_calls"] = [{"id": "null", "function": {"name": "f", "arguments": "{}"}}]
    conn = make()
    resp = conn.parse_chat_response(data, conn.prepare_chat(None, "Hi", {}, stream=False))
    assert resp.tool_calls[0].id != "null"
    assert VALID_ID.fullmatch(conn.wire_tool_call_id(resp.tool_calls[0].id))


def test_error_object_in_a_200_body_raises() -> None:
    conn = make()
    body = fixture_json("errors/429_rate_limited.json")["body"]
    with pytest.raises(RateLimitError, match="Rate limit exceeded"):
        conn.parse_chat_response(body, conn.prepare_chat(None, "Hi", {}, stream=False))


# -- streams -------------------------------------------------------------------------------------

STREAM_FIXTURES = ["chat_stream.sse", "chat_stream_tools.sse", "chat_stream_tools_split.sse",
                   "chat_stream_thinking.sse"]


def decode(pieces: list[bytes]) -> tuple[list[ChatChunk], ChatResponse]:
    """Framing plus the connector's decoder, exactly as the base class runs them."""
    conn = make()
    decoder = conn.create_stream_decoder(conn.prepare_chat(None, "Hi", {}, stream=True))
    framer = SSEDecoder()
    chunks = []
    for piece in pieces:
        for event in framer.feed(piece):
            chunk = decoder.feed(event)
            if chunk is not None:
                chunks.append(chunk)
    framer.close()
    assert decoder.finish() is None
    return chunks, decoder.response()


@pytest.mark.parametrize("name", STREAM_FIXTURES)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_network_split_gives_the_same_chunks(name: str, data: st.DataObject) -> None:
    raw = (FIXTURES / name).read_bytes()
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(raw)), max_size=40))))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert decode(pieces) == decode([raw])


def test_stream_chunks() -> None:
    chunks, resp = decode([(FIXTURES / "chat_stream.sse").read_bytes()])
    assert "".join(c.delta for c in chunks) == "Paris is the capital of France."
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert (last.delta, last.finish_reason, last.usage) == ("", "stop", Usage(12, 9, 21))
    assert resp.usage == Usage(12, 9, 21)


@pytest.mark.parametrize("name", ["chat_stream_tools.sse", "chat_stream_tools_split.sse"])
def test_stream_tool_calls_with_one_index(name: str) -> None:
    chunks, resp = decode([(FIXTURES / name).read_bytes()])
    assert [(c.id, c.name, c.arguments) for c in chunks[-1].tool_calls] == [
        ("FI5qQGzDE", "get_weather", {"city": "Paris"}), ("ot1MIoEMA", "get_time", {"tz": "Europe/Paris"})]
    assert chunks[-1].finish_reason == "tool_calls"
    assert resp.tool_calls == list(chunks[-1].tool_calls)


def test_stream_tool_calls_without_ids_or_with_fragments() -> None:
    def event(*calls: dict[str, Any]) -> bytes:
        chunk = {"id": "x", "model": MODEL, "choices": [{"index": 0, "delta": {"tool_calls": list(calls)},
                                                          "finish_reason": None}]}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    raw = b"".join([
        event({"function": {"name": "a", "arguments": '{"x": 1}'}, "index": 0}),  # no id at all
        event({"id": "null", "function": {"name": "b", "arguments": "{}"}, "index": 0}),  # placeholder id
        # OpenAI-style fragments at a new index still assemble (models hosted behind the same API).
        event({"id": "Frag00001", "function": {"name": "c", "arguments": '{"y"'}, "index": 1}),
        event({"id": "null", "function": {"arguments": ": 2}"}, "index": 1}),
        b"data: [DONE]\n\n",
    ])
    chunks, _ = decode([raw])
    calls = chunks[-1].tool_calls
    assert [(c.name, c.arguments) for c in calls] == [("a", {"x": 1}), ("b", {}), ("c", {"y": 2})]
    assert calls[2].id == "Frag00001" and "null" not in {c.id for c in calls}


def test_stream_thinking() -> None:
    chunks, resp = decode([(FIXTURES / "chat_stream_thinking.sse").read_bytes()])
    assert "".join(c.reasoning for c in chunks) == "Okay, the user asks how to cross."
    assert "".join(c.delta for c in chunks) == "Look both ways, then cross."
    assert not any(c.delta and c.reasoning for c in chunks)
    assert resp.model == "magistral-medium-latest"


@pytest.mark.parametrize(("json_name", "sse_name"), [
    ("chat.json", "chat_stream.sse"),
    ("chat_tool_calls.json", "chat_stream_tools.sse"),
    ("chat_tool_calls.json", "chat_stream_tools_split.sse"),
    ("chat_thinking.json", "chat_stream_thinking.sse"),
])
async def test_stream_and_non_stream_give_the_same_response(json_name: str, sse_name: str) -> None:
    with respx.mock(base_url=BASE) as router:
        router.post("/chat/completions").mock(side_effect=lambda request: (
            sse_response(sse_name) if json.loads(request.content)["stream"]
            else httpx.Response(200, json=fixture_json(json_name))))
        async with make() as conn:
            whole = await conn.generate_chat(None, "Hi")
            stream = conn.generate_chat_stream(None, "Hi")
            streamed = await stream.collect()
    for field in ("content", "finish_reason", "native_finish_reason", "usage", "tool_calls", "reasoning",
                  "reasoning_blocks", "model", "id", "provider"):
        assert getattr(streamed, field) == getattr(whole, field), field


async def test_in_band_error_before_the_first_delta_is_the_typed_error() -> None:
    err = await failure(sse_response("chat_stream_error_before.sse"), stream=True)
    assert type(err) is OverloadedError and err.retryable
    assert "capacity exceeded" in err.message and err.code == "3505"


async def test_in_band_error_after_the_first_delta_interrupts_with_the_partial_text() -> None:
    err = await failure(sse_response("chat_stream_error_after.sse"), stream=True)
    assert isinstance(err, StreamInterruptedError) and err.partial == "Paris is"
    assert isinstance(err.__cause__, ProviderError)
    assert "Internal server error" in err.message


async def test_stream_cut_before_done_is_an_error() -> None:
    raw = (FIXTURES / "chat_stream.sse").read_bytes().replace(b"data: [DONE]\n\n", b"")
    err = await failure(httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw),
                        stream=True)
    assert isinstance(err, StreamInterruptedError) and "end-of-stream marker" in err.message


# -- errors --------------------------------------------------------------------------------------

CORRELATION = "019aa61b-0c5e-7900-b0c9-3f66c5ad6b1a"
ERROR_CASES: dict[str, tuple[type[LLMConnectorError], str, str | None, str | None]] = {
    # fixture: (class, words in the message, code, request id)
    "422_detail_list": (InvalidRequestError, "stream_options: Extra inputs are not permitted", None, CORRELATION),
    "422_message_object": (InvalidRequestError, "stream_options: Extra inputs are not permitted",
                           "invalid_request_error", CORRELATION),
    "422_message_json_string": (InvalidRequestError, "stream_options: Extra inputs are not permitted", "1000",
                                CORRELATION),
    "400_invalid_function_call": (InvalidRequestError, "must be a-z, A-Z, 0-9, with a length of 9", "3280",
                                  CORRELATION),
    "400_context": (ContextWindowExceededError, "too large for model with 131072 maximum context length",
                    "invalid_request_error", CORRELATION),
    "401_detail": (AuthenticationError, "Unauthorized", None, CORRELATION),
    "401_message": (AuthenticationError, "Unauthorized", None, "5bd4b0a5a0b74c5c9f3a5a2b5e1d7c20"),  # id from the body
    "404_detail": (NotFoundError, "Not Found", None, CORRELATION),
    "429_rate_limited": (RateLimitError, "Rate limit exceeded", "1300", CORRELATION),
    "429_message": (RateLimitError, "Requests rate limit exceeded", None, CORRELATION),
    "429_capacity": (OverloadedError, "Service tier capacity exceeded", "invalid_request_error", CORRELATION),
    "503_capacity": (OverloadedError, "Service tier capacity exceeded", "3505", CORRELATION),
    "500_html": (ProviderError, "HTTP 500 with no readable error body", None, None),
}


def error_response(name: str) -> httpx.Response:
    fixture = fixture_json(f"errors/{name}.json")
    body = fixture["body"]
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return httpx.Response(fixture["status"], headers=fixture["headers"], content=content)


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
@pytest.mark.parametrize("stream", [False, True])
async def test_error_bodies(name: str, stream: bool) -> None:
    cls, words, code, request_id = ERROR_CASES[name]
    err = await failure(error_response(name), stream=stream)
    assert type(err) is cls
    assert words in err.message and err.message == err.message.strip()
    assert (err.code, err.request_id, err.provider) == (code, request_id, "mistral")
    assert err.status_code == fixture_json(f"errors/{name}.json")["status"]


async def test_rate_limit_headers() -> None:
    err = await failure(error_response("429_rate_limited"))
    assert isinstance(err, RateLimitError) and err.retry_after == 2.0 and err.retryable


async def test_request_id_falls_back_to_kong_header() -> None:
    err = await failure(httpx.Response(404, json={"detail": "Not Found"}, headers={"x-kong-request-id": "kong-1"}))
    assert isinstance(err, NotFoundError) and err.request_id == "kong-1"


@pytest.mark.parametrize(("status", "cls"), [
    (400, InvalidRequestError), (401, AuthenticationError), (403, PermissionDeniedError), (404, NotFoundError),
    (408, TimeoutError), (409, ProviderError), (413, InvalidRequestError), (422, InvalidRequestError),
    (429, RateLimitError), (500, ProviderError), (502, ProviderError), (503, ProviderError),
    (504, ProviderError),
])
async def test_error_class_by_status(status: int, cls: type[LLMConnectorError]) -> None:
    reply = MistralWireKit().error_reply(status, "something went wrong")
    err = await failure(httpx.Response(status, headers=reply.headers, content=reply.body))
    assert type(err) is cls and "something went wrong" in err.message


async def test_api_key_never_appears_in_errors(canary_key: str) -> None:
    err = await failure(httpx.Response(401, json={"detail": f"Invalid key {canary_key}"}), api_key=canary_key)
    assert isinstance(err, AuthenticationError)
    assert canary_key not in str(err) and canary_key not in repr(err)
    assert canary_key not in repr(make(api_key=canary_key))


# -- embeddings and models -----------------------------------------------------------------------


async def test_embeddings_response_in_input_order() -> None:
    with respx.mock(base_url=BASE) as router:
        router.post("/embeddings").respond(json=fixture_json("embeddings.json"))
        async with make() as conn:
            emb = await conn.generate_embedding(None, ["first text", "second text"])
    assert emb.embeddings == [[-0.0321, 0.0654, -0.0987], [0.0123, -0.0456, 0.0789]]  # sorted by index
    assert (emb.model, emb.provider, emb.usage) == ("mistral-embed", "mistral", Usage(6, 0, 6))


async def test_embeddings_are_split_into_batches() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        assert len(inputs) <= MistralConnector.embedding_batch_size  # type: ignore[operator]
        return httpx.Response(200, json={"id": "e", "object": "list", "model": "mistral-embed",
                                         "data": [{"object": "embedding", "embedding": [float(t)], "index": i}
                                                  for i, t in enumerate(inputs)],
                                         "usage": {"prompt_tokens": len(inputs), "completion_tokens": 0,
                                                   "total_tokens": len(inputs)}})

    texts = [str(i) for i in range(300)]
    with respx.mock(base_url=BASE) as router:
        route = router.post("/embeddings").mock(side_effect=answer)
        async with make() as conn:
            emb = await conn.generate_embedding(None, texts)
    assert route.call_count == 3
    assert emb.embeddings == [[float(t)] for t in texts]
    assert emb.usage.input_tokens == 300


async def test_list_models() -> None:
    with respx.mock(base_url=BASE) as router:
        route = router.get("/models").respond(json=fixture_json("models.json"))
        async with make() as conn:
            models = await conn.list_models()
    assert route.calls.last.request.headers["authorization"] == "Bearer test-key"
    assert [m.id for m in models] == ["mistral-small-latest", "magistral-medium-latest", "mistral-embed",
                                      "ft:open-mistral-7b:9c9073a4:20240410:62a42f1b"]
    small = models[0]
    assert (small.name, small.context_length, small.created) == ("mistral-small-2506", 131072, 1766420335)
    assert small.raw["capabilities"]["function_calling"] is True
    assert models[3].name == models[3].id  # fine-tuned cards have no name


# -- against the fake Mistral over real HTTP -----------------------------------------------------


@pytest.fixture
def fake() -> MistralFake:
    return MistralFake()


@pytest.fixture
def server(fake: MistralFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as running:
        yield running


@pytest.fixture
def kit() -> MistralWireKit:
    return MistralWireKit()


async def test_fake_chat(server: FakeServer, fake: MistralFake, kit: MistralWireKit) -> None:
    with anyio.fail_after(10):
        async with build_connector(kit, server.url) as conn:
            resp = await conn.generate_chat(None, SYSTEM_USER, seed=1, safe_prompt=True)
    assert resp.content == fake.text and resp.finish_reason == "stop"
    assert resp.usage.input_tokens == 7
    request = server.requests[-1]
    assert (request.path, request.headers["authorization"]) == ("/v1/chat/completions", f"Bearer {TEST_KEY}")


async def test_fake_stream(server: FakeServer, fake: MistralFake, kit: MistralWireKit) -> None:
    with anyio.fail_after(10):
        async with build_connector(kit, server.url) as conn:
            chunks = await collect_stream(conn, SYSTEM_USER, max_tokens=50)
    assert "".join(c.delta for c in chunks) == fake.text
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None
    assert server.requests[-1].headers["accept"] == "text/event-stream"


async def test_fake_tool_round_trip_with_foreign_ids(server: FakeServer, kit: MistralWireKit) -> None:
    with anyio.fail_after(10):
        async with build_connector(kit, server.url) as conn:
            first = await conn.generate_chat(None, ASK, tools=[TOOL], tool_choice="required")
            assert VALID_ID.fullmatch(first.tool_calls[0].id) and first.finish_reason == "tool_calls"
            # A conversation begun on another provider: its `call_…` ids would get a 400 unmapped.
            second = await conn.generate_chat(None, round_trip("call_9ZkPp1b2c3d4e5f6"), tools=[TOOL])
    assert second.content and second.finish_reason == "stop"


async def test_fake_rejects_fields_mistral_rejects(server: FakeServer, kit: MistralWireKit) -> None:
    with anyio.fail_after(10):
        async with build_connector(kit, server.url) as conn:
            with pytest.raises(InvalidRequestError, match="stream_options: Extra inputs are not permitted"):
                await conn.generate_chat(None, "Hi", extra={"stream_options": {"include_usage": True}})


async def test_fake_embeddings_and_models(server: FakeServer, kit: MistralWireKit) -> None:
    with anyio.fail_after(10):
        async with build_connector(kit, server.url) as conn:
            emb = await conn.generate_embedding(None, ["a", "b"], dimensions=4)
            models = await conn.list_models()
            healthy = await conn.health_check()
    assert [len(v) for v in emb.embeddings] == [4, 4]
    assert [m.id for m in models] == ["mistral-small-latest", "mistral-embed"]
    assert models[0].context_length == 131072 and healthy


async def test_fake_scripted_error(server: FakeServer, fake: MistralFake, kit: MistralWireKit) -> None:
    fake.replies.append(kit.error_reply(429, "Rate limit exceeded",
                                        headers={"retry-after": "3", "mistral-correlation-id": "corr-1"}))
    with anyio.fail_after(10):
        async with build_connector(kit, server.url) as conn:
            with pytest.raises(RateLimitError) as info:
                await conn.generate_chat(None, "Hi")
            resp = await conn.generate_chat(None, "Hi")  # the scripted reply is used once
    assert (info.value.retry_after, info.value.request_id, info.value.code) == (3.0, "corr-1", "1300")
    assert resp.finish_reason == "stop"


async def test_kit_replies(server: FakeServer, fake: MistralFake, kit: MistralWireKit) -> None:
    call = ToolCall(id="call_abc", name="get_weather", arguments={"city": "Paris"})
    fake.replies.extend([
        kit.chat_reply("", tool_calls=[call], finish="tool_calls", input_tokens=11, output_tokens=4),
        kit.stream_reply(["Hel", "lo"], tool_calls=[call], finish="tool_calls"),
        kit.stream_error_reply(["partial"], kind="api"),
        kit.embedding_reply([[0.5, 0.25]], input_tokens=2),
        kit.models_reply(["mistral-large-latest"]),
    ])
    with anyio.fail_after(10):
        async with build_connector(kit, server.url) as conn:
            whole = await conn.generate_chat(None, "Hi")
            streamed = await conn.generate_chat_stream(None, "Hi").collect()
            with pytest.raises(StreamInterruptedError) as info:
                await collect_stream(conn)
            emb = await conn.generate_embedding(None, "x")
            models = await conn.list_models()
    assert whole.tool_calls == [ToolCall(id="call_abc", name="get_weather", arguments={"city": "Paris"},
                                         raw_arguments='{"city":"Paris"}')]
    assert whole.usage == Usage(11, 4, 15)
    assert streamed.content == "Hello" and streamed.tool_calls == whole.tool_calls
    assert info.value.partial == "partial"
    assert emb.embeddings == [[0.5, 0.25]] and [m.id for m in models] == ["mistral-large-latest"]
