"""Ollama connector (native API): request bodies, SDK parity, parsing, streaming, errors, config."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from builders import build_connector
from hypothesis import given, settings, strategies as st

import llm_connectors as lc
from llm_connectors.connectors.ollama import OllamaConnector, normalize_done_reason, parse_ollama_host
from llm_connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ContextWindowExceededError,
    InvalidRequestError,
    LLMConnectorError,
    NotFoundError,
    OverloadedError,
    ProtocolError,
    ProviderError,
    RateLimitError,
    StreamInterruptedError,
    UnsupportedCapabilityError,
)
from llm_connectors.testing import FakeServer
from llm_connectors.testing.ollama_wire import BUSY, OllamaFake, OllamaWireKit
from llm_connectors.types import ChatChunk, ChatResponse, ToolCall, Usage
from llm_connectors.wire.framing import NDJSONDecoder

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ollama"
SDK_REQUESTS = FIXTURES / "sdk_requests" / "ollama-0.6.3"
BASE = "http://ollama.test:11434"
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
SYSTEM_USER = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]
WEATHER_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                   "required": ["city"]}}}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}
ROUND_TRIP = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"},
]
# The earlier answer as ChatResponse.message gives it back: a synthesised call id, the thinking.
THINKING_ROUND_TRIP = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "reasoning": [{"text": "The user wants the weather; call the tool."}],
     "tool_calls": [{"id": "call_0", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp_c\": 21}"},
]
IMAGE_MESSAGE = {"role": "user", "content": [
    {"type": "text", "text": "What is in this picture?"},
    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}]}

# Each SDK fixture's neutral input, said through our API: (kind, kwargs).
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "system_user": ("chat", {"messages": SYSTEM_USER}),
    "temperature": ("chat", {"messages": SYSTEM_USER, "temperature": 0.2}),
    "max_tokens": ("chat", {"messages": SYSTEM_USER, "max_tokens": 64}),
    "seed": ("chat", {"messages": SYSTEM_USER, "seed": 42}),
    "stop": ("chat", {"messages": SYSTEM_USER, "stop": ["\n\n", "END"]}),
    "sampling_all": ("chat", {"messages": SYSTEM_USER, "temperature": 0.2, "top_p": 0.9, "max_tokens": 64,
                              "seed": 42, "stop": "END"}),
    "provider_options": ("chat", {"messages": SYSTEM_USER, "top_k": 40, "num_ctx": 4096,
                                  "repeat_penalty": 1.1, "min_p": 0.05}),
    "stream_true": ("stream", {"messages": SYSTEM_USER}),
    "one_tool": ("chat", {"messages": [{"role": "user", "content": "Weather in Paris?"}],
                          "tools": [WEATHER_TOOL]}),
    "tool_round_trip": ("chat", {"messages": ROUND_TRIP, "tools": [WEATHER_TOOL]}),
    "image": ("chat", {"messages": [IMAGE_MESSAGE]}),
    "json_mode": ("chat", {"messages": SYSTEM_USER, "response_format": {"type": "json_object"}}),
    "json_schema": ("chat", {"messages": SYSTEM_USER, "response_format": {
        "type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}}),
    "keep_alive_think": ("chat", {"messages": SYSTEM_USER,
                                  "provider_options": {"ollama": {"keep_alive": "5m", "think": True}}}),
    "think_level": ("chat", {"messages": SYSTEM_USER, "reasoning_effort": "high"}),
    "think_off": ("chat", {"messages": SYSTEM_USER, "reasoning_effort": "none"}),
    "thinking_round_trip": ("chat", {"messages": THINKING_ROUND_TRIP, "tools": [WEATHER_TOOL],
                                     "provider_options": {"ollama": {"think": True}}}),
    "embed_two": ("embed", {"input": ["first text", "second text"]}),
    "embed_dimensions": ("embed", {"input": ["first text", "second text"], "dimensions": 256,
                                   "truncate": False}),
    "list_models": ("models", {}),
}


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture_lines(name: str) -> list[Any]:
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()]


def done_line(**extra: Any) -> dict[str, Any]:
    return {"model": "llama3.2", "created_at": "2024-07-22T20:33:28Z",
            "message": {"role": "assistant", "content": "hi"}, "done": True, "done_reason": "stop",
            "prompt_eval_count": 3, "eval_count": 1, **extra}


def _chat_answer(request: httpx.Request) -> httpx.Response:
    if json.loads(request.content).get("stream"):
        return httpx.Response(200, content=json.dumps(done_line()).encode() + b"\n",
                              headers={"content-type": "application/x-ndjson"})
    return httpx.Response(200, json=done_line())


def _embed_answer(request: httpx.Request) -> httpx.Response:
    count = len(json.loads(request.content)["input"])
    return httpx.Response(200, json={"model": "nomic-embed-text", "embeddings": [[0.5, 0.25]] * count,
                                     "prompt_eval_count": 4})


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post("/api/chat", name="chat").mock(side_effect=_chat_answer)
        router.post("/api/embed", name="embed").mock(side_effect=_embed_answer)
        tags = httpx.Response(200, json=fixture_json("tags.json"))
        router.get("/api/tags", name="tags").mock(return_value=tags)
        version = httpx.Response(200, json={"version": "1"})
        router.get("/api/version", name="version").mock(return_value=version)
        yield router


conn = partial(build_connector, "ollama", BASE)


async def run(kind: str, kwargs: dict[str, Any]) -> Any:
    async with conn() as c:
        kwargs = dict(kwargs)
        if kind == "chat":
            return await c.generate_chat(None, kwargs.pop("messages"), **kwargs)
        if kind == "stream":
            async with c.generate_chat_stream(None, kwargs.pop("messages"), **kwargs) as stream:
                return await stream.collect()
        if kind == "embed":
            return await c.generate_embedding(None, kwargs.pop("input"), **kwargs)
        return await c.list_models()


async def sent(mock: respx.MockRouter, kind: str, **kwargs: Any) -> dict[str, Any]:
    await run(kind, kwargs)
    request = mock.calls.last.request
    return json.loads(request.content) if request.content else {}


# -- exact request bodies ---------------------------------------------------------------------

MSGS = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]


async def test_body_system_and_user(mock: respx.MockRouter) -> None:
    body = await sent(mock, "chat", messages=SYSTEM_USER)
    assert body == {"model": "llama3.2", "messages": MSGS, "stream": False}
    request = mock.calls.last.request
    assert request.url == f"{BASE}/api/chat"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers  # local Ollama: no key


async def test_body_sampling_options(mock: respx.MockRouter) -> None:
    body = await sent(mock, "chat", messages=SYSTEM_USER, temperature=0.2, top_p=0.9, max_tokens=64, seed=42,
                      stop=["\n\n", "END"])
    assert body == {"model": "llama3.2", "messages": MSGS, "stream": False, "options": {
        "temperature": 0.2, "top_p": 0.9, "num_predict": 64, "seed": 42, "stop": ["\n\n", "END"]}}


@pytest.mark.parametrize(("option", "value", "wire"), [
    ("temperature", 0.0, {"temperature": 0.0}),
    ("max_tokens", 1, {"num_predict": 1}),
    ("seed", 0, {"seed": 0}),
    ("stop", "END", {"stop": ["END"]}),
    ("top_k", 40, {"top_k": 40}),
    ("num_ctx", 8192, {"num_ctx": 8192}),
    ("repeat_penalty", 1.1, {"repeat_penalty": 1.1}),
    ("min_p", 0.05, {"min_p": 0.05}),
    ("typical_p", 0.7, {"typical_p": 0.7}),
    ("repeat_last_n", -1, {"repeat_last_n": -1}),
    ("presence_penalty", 0.5, {"presence_penalty": 0.5}),
    ("frequency_penalty", -0.5, {"frequency_penalty": -0.5}),
])
async def test_each_option_goes_into_options(mock: respx.MockRouter, option: str, value: Any,
                                             wire: dict[str, Any]) -> None:
    body = await sent(mock, "chat", messages="Hi", **{option: value})
    assert body["options"] == wire
    assert set(body) == {"model", "messages", "stream", "options"}


async def test_stream_is_always_explicit(mock: respx.MockRouter) -> None:
    assert (await sent(mock, "chat", messages="Hi"))["stream"] is False
    assert (await sent(mock, "stream", messages="Hi"))["stream"] is True


async def test_body_one_tool(mock: respx.MockRouter) -> None:
    strict = copy.deepcopy(WEATHER_TOOL)
    strict["function"]["strict"] = True  # no meaning for Ollama: not sent
    body = await sent(mock, "chat", messages="Weather in Paris?", tools=[strict], tool_choice="auto")
    assert body == {"model": "llama3.2", "messages": [{"role": "user", "content": "Weather in Paris?"}],
                    "stream": False, "tools": [WEATHER_TOOL]}


async def test_body_tool_call_round_trip(mock: respx.MockRouter) -> None:
    body = await sent(mock, "chat", messages=ROUND_TRIP)
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "{\"temp_c\": 21}", "tool_name": "get_weather"},
    ]


async def test_tool_result_name_comes_from_the_latest_call_with_that_id(mock: respx.MockRouter) -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "tool_calls": [{"id": "call_0", "name": "first", "arguments": {}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "1"},
        {"role": "assistant", "tool_calls": [{"id": "call_0", "name": "second", "arguments": {"x": 1}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "2"},
        {"role": "tool", "tool_call_id": "external", "name": "given_name", "content": "3"},
    ]
    body = await sent(mock, "chat", messages=messages)
    names = [m.get("tool_name") for m in body["messages"]]
    assert names == [None, None, "first", None, "second", "given_name"]


async def test_body_image_from_data_url(mock: respx.MockRouter) -> None:
    body = await sent(mock, "chat", messages=[IMAGE_MESSAGE])
    assert body["messages"] == [{"role": "user", "content": "What is in this picture?", "images": [PNG_B64]}]


async def test_percent_encoded_data_url_is_base64_encoded(mock: respx.MockRouter) -> None:
    svg = "data:image/svg+xml,%3Csvg%2F%3E"
    message = {"role": "user", "content": [{"type": "image_url", "image_url": svg}]}
    body = await sent(mock, "chat", messages=[message])
    assert body["messages"][0] == {"role": "user", "content": "", "images": ["PHN2Zy8+"]}  # "<svg/>"


async def test_body_json_mode_and_schema(mock: respx.MockRouter) -> None:
    body = await sent(mock, "chat", messages="Hi", response_format={"type": "json_object"})
    assert body["format"] == "json"
    body = await sent(mock, "chat", messages="Hi", response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}})
    assert body["format"] == SCHEMA
    body = await sent(mock, "chat", messages="Hi", response_format={"type": "text"})
    assert "format" not in body


async def test_keep_alive_and_think_are_top_level(mock: respx.MockRouter) -> None:
    body = await sent(mock, "chat", messages="Hi", provider_options={
        "ollama": {"keep_alive": "5m", "think": "high"}, "openai": {"store": True}})
    assert body == {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}], "stream": False,
                    "keep_alive": "5m", "think": "high"}


async def test_thinking_is_sent_back_on_assistant_turns(mock: respx.MockRouter) -> None:
    messages = [{"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello", "reasoning": [{"text": "greet back"}]},
                {"role": "user", "content": "Bye"}]
    body = await sent(mock, "chat", messages=messages)
    assert body["messages"][1] == {"role": "assistant", "content": "Hello", "thinking": "greet back"}


async def test_body_embeddings_of_two_strings(mock: respx.MockRouter) -> None:
    body = await sent(mock, "embed", input=["first text", "second text"])
    assert mock.calls.last.request.url == f"{BASE}/api/embed"
    assert body == {"model": "nomic-embed-text", "input": ["first text", "second text"]}
    body = await sent(mock, "embed", input="one", dimensions=256, truncate=False,
                      provider_options={"ollama": {"keep_alive": 0}})
    assert body == {"model": "nomic-embed-text", "input": ["one"], "dimensions": 256, "truncate": False,
                    "keep_alive": 0}


async def test_list_models_request(mock: respx.MockRouter) -> None:
    await run("models", {})
    request = mock.calls.last.request
    assert (request.method, request.url.path, request.content) == ("GET", "/api/tags", b"")


async def test_api_key_is_a_bearer_token(mock: respx.MockRouter, canary_key: str) -> None:
    async with conn(api_key=canary_key, allow_insecure_http=True) as c:  # a keyed host over http needs opting in
        await c.generate_chat(None, "Hi")
        assert mock.calls.last.request.headers["authorization"] == f"Bearer {canary_key}"
        assert canary_key not in repr(c)


# -- official SDK parity -----------------------------------------------------------------------

def _sdk_normalised(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The client's documented quirks (sdk_requests/README.md), and nothing else."""
    if body is None or "messages" not in body:
        return body
    body = copy.deepcopy(body)
    if body.get("tools") == []:
        del body["tools"]
    for message in body["messages"]:
        message.setdefault("content", "")
    return body


def test_every_sdk_fixture_has_a_case() -> None:
    assert {p.stem for p in SDK_REQUESTS.glob("*.json")} == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
async def test_body_matches_official_sdk(mock: respx.MockRouter, case: str) -> None:
    expected = json.loads((SDK_REQUESTS / f"{case}.json").read_text())
    kind, kwargs = CASES[case]
    await run(kind, kwargs)
    request = mock.calls.last.request
    assert (request.method, request.url.path) == (expected["method"], expected["path"])
    ours = json.loads(request.content) if request.content else None
    assert ours == _sdk_normalised(expected["body"])


# -- validation before any I/O -----------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://10.0.0.1/x.jpg"])
async def test_remote_image_url_is_refused_before_io(mock: respx.MockRouter, url: str) -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "?"},
                                           {"type": "image_url", "image_url": url}]}
    async with conn() as c:
        with pytest.raises(UnsupportedCapabilityError, match="base64") as info:
            await c.generate_chat(None, [message])
        with pytest.raises(UnsupportedCapabilityError):
            c.generate_chat_stream(None, [message])  # refused when the stream is created
    assert info.value.fallback  # a fallback chain can hand it to a provider that fetches URLs
    assert "cat.png" not in info.value.message
    assert not mock.calls


@pytest.mark.parametrize(("url", "error"), [
    ("data:image/png;base64,***", "not valid base64"),
    ("data:text/plain;base64,aGk=", "names its image type"),
    ("data:image/png;base64,", "no data"),
])
async def test_bad_data_urls(mock: respx.MockRouter, url: str, error: str) -> None:
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
    with pytest.raises(InvalidRequestError, match=error):
        await run("chat", {"messages": [message]})
    assert not mock.calls


@pytest.mark.parametrize("choice", ["none", "required", "any",
                                    {"type": "function", "function": {"name": "get_weather"}}])
async def test_tool_choice_other_than_auto_is_unsupported(mock: respx.MockRouter, choice: Any) -> None:
    with pytest.raises(UnsupportedCapabilityError, match="tool_choice"):
        await run("chat", {"messages": "Hi", "tools": [WEATHER_TOOL], "tool_choice": choice})
    assert not mock.calls


async def test_tool_result_without_a_known_call_is_refused(mock: respx.MockRouter) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "nope", "content": "1"}]
    with pytest.raises(InvalidRequestError, match="'nope'"):
        await run("chat", {"messages": messages})
    assert not mock.calls


@pytest.mark.parametrize(("options", "error"), [
    ({"provider_options": {"ollama": {"keep_alive": True}}}, "keep_alive"),
    ({"provider_options": {"ollama": {"keep_alive": [5]}}}, "keep_alive"),
    ({"extra": {"think": "extreme"}}, "think"),
    ({"top_k": -1}, "top_k"),
    ({"min_p": 1.5}, "min_p"),
    ({"top_kk": 3}, "top_k"),
    ({"max_tokens": 0}, "max_tokens"),
])
async def test_invalid_options(mock: respx.MockRouter, options: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidRequestError, match=error):
        await run("chat", {"messages": "Hi", **options})
    assert not mock.calls


@pytest.mark.parametrize(("options", "error"), [
    ({"truncate": "no"}, "truncate"),
    ({"dimensions": 0}, "dimensions"),
    ({"encoding_format": "float"}, "truncate"),  # unknown: the error lists what is accepted
])
async def test_invalid_embedding_options(mock: respx.MockRouter, options: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidRequestError, match=error):
        await run("embed", {"input": "x", **options})
    assert not mock.calls


# -- parsing responses -------------------------------------------------------------------------

CONNECTOR = build_connector("ollama")
REQUEST = CONNECTOR.prepare_chat(None, "Hi", {}, stream=True)
STREAMS = sorted(p.name for p in FIXTURES.glob("*.ndjson"))
PAIRS = sorted(p.stem for p in FIXTURES.glob("chat_*.ndjson") if (FIXTURES / f"{p.stem}.json").exists())


def decode(pieces: list[bytes]) -> tuple[list[ChatChunk], ChatResponse | None, LLMConnectorError | None]:
    """Network reads -> NDJSON framer -> decoder, as the base class drives them."""
    framer = NDJSONDecoder(provider="ollama")
    decoder = CONNECTOR.create_stream_decoder(REQUEST)
    chunks: list[ChatChunk] = []

    def take(chunk: ChatChunk | None) -> None:
        if chunk is not None:
            chunks.append(chunk)

    try:
        for piece in pieces:
            for event in framer.feed(piece):
                take(decoder.feed(event))
        for event in framer.close():
            take(decoder.feed(event))
        take(decoder.finish())
    except LLMConnectorError as exc:
        return chunks, None, exc
    return chunks, decoder.response(), None


def parse(name: str) -> ChatResponse:
    return CONNECTOR.parse_chat_response(fixture_json(name), REQUEST)


def stream(name: str) -> ChatResponse:
    chunks, response, error = decode([(FIXTURES / name).read_bytes()])
    assert error is None and response is not None
    assert chunks[-1].finish_reason is not None and chunks[-1].usage is not None
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    return response


def test_plain() -> None:
    response = parse("chat_plain.json")
    assert response.content == "The sky is blue because of Rayleigh scattering."
    assert (response.finish_reason, response.native_finish_reason) == ("stop", "stop")
    assert response.usage == Usage(26, 6, 32)
    assert (response.provider, response.model, response.id) == ("ollama", "llama3.2", None)
    assert response.raw == fixture_json("chat_plain.json")
    chunks, _, _ = decode([(FIXTURES / "chat_plain.ndjson").read_bytes()])
    deltas = ["The", " sky", " is", " blue", " because", " of Rayleigh scattering.", ""]
    assert [c.delta for c in chunks] == deltas
    assert (chunks[-1].finish_reason, chunks[-1].usage) == ("stop", Usage(26, 6, 32))


def test_tool_calls() -> None:
    for response in (parse("chat_tools.json"), stream("chat_tools.ndjson")):
        assert response.content == "Let me check."
        assert response.tool_calls == [
            ToolCall(id="call_k3p7zi0l", name="get_weather", arguments={"city": "Paris", "unit": "celsius"}),
            ToolCall(id="call_9xq2m1ab", name="get_time", arguments={"timezone": "Europe/Paris"}),
        ]
        assert (response.finish_reason, response.native_finish_reason) == ("tool_calls", "stop")
        assert response.usage == Usage(180, 41, 221)


def test_tool_calls_arrive_on_their_own_chunk() -> None:
    chunks, _, _ = decode([(FIXTURES / "chat_tools.ndjson").read_bytes()])
    assert [[c.name for c in chunk.tool_calls] for chunk in chunks] == [[], ["get_weather"], ["get_time"], []]


def test_missing_ids_are_synthesised_stably() -> None:
    parsed, streamed = parse("chat_tools_no_id.json"), stream("chat_tools_no_id.ndjson")
    ids = [c.id for c in parsed.tool_calls]
    assert ids == [c.id for c in streamed.tool_calls]
    assert ids == [c.id for c in parse("chat_tools_no_id.json").tool_calls]
    assert len(set(ids)) == 2 and all(i.startswith(("call_0_", "call_1_")) for i in ids)
    assert [c.arguments for c in parsed.tool_calls] == [{"city": "Paris"}, {"city": "Berlin"}]
    assert parsed.usage == Usage(0, 25, 25)  # prompt_eval_count absent (cached prompt) -> 0


def test_thinking_is_reasoning() -> None:
    response = stream("chat_thinking.ndjson")
    assert response.reasoning == "Okay, the user greets me."
    assert response.content == "Bonjour 👋 — ça va?"
    assert [b.text for b in response.reasoning_blocks] == ["Okay, the user greets me."]
    chunks, _, _ = decode([(FIXTURES / "chat_thinking.ndjson").read_bytes()])
    assert [c.reasoning for c in chunks[:3]] == ["Okay,", " the user", " greets me."]


def test_length_missing_metrics_and_load() -> None:
    assert stream("chat_length.ndjson").finish_reason == "length"
    legacy = stream("chat_missing_metrics.ndjson")
    assert (legacy.content, legacy.finish_reason, legacy.native_finish_reason) == ("Hi there", "other", None)
    assert legacy.usage == Usage(0, 2, 2)
    load = CONNECTOR.parse_chat_response(fixture_json("chat_load.json"), REQUEST)
    assert (load.finish_reason, load.native_finish_reason, load.usage) == ("other", "load", Usage(0, 0, 0))


@pytest.mark.parametrize(("native", "calls", "expected"), [
    ("stop", False, "stop"), ("stop", True, "tool_calls"),
    ("length", False, "length"), ("length", True, "length"),
    ("load", False, "other"), ("unload", False, "other"), ("", False, "other"), (None, False, "other"),
    (None, True, "tool_calls"), ("brand_new", False, "other"),
])
def test_done_reason_mapping(native: Any, calls: bool, expected: str) -> None:
    assert normalize_done_reason(native, calls) == expected


@pytest.mark.parametrize("name", PAIRS)
def test_stream_and_non_stream_give_the_same_response(name: str) -> None:
    streamed, parsed = stream(f"{name}.ndjson"), parse(f"{name}.json")
    streamed.raw = parsed.raw = None
    assert streamed == parsed


def test_pairs_cover_the_answer_shapes() -> None:
    assert PAIRS == ["chat_length", "chat_missing_metrics", "chat_plain", "chat_thinking", "chat_tools",
                     "chat_tools_no_id"]


def test_error_lines() -> None:
    chunks, response, error = decode([(FIXTURES / "chat_stream_error.ndjson").read_bytes()])
    assert [c.delta for c in chunks] == ["The", " sky"] and response is None
    assert isinstance(error, ProviderError) and error.status_code is None
    assert "unexpected EOF" in error.message
    chunks, _, error = decode([(FIXTURES / "chat_error_first.ndjson").read_bytes()])
    assert chunks == [] and isinstance(error, ProviderError) and "system memory" in error.message


@pytest.mark.parametrize(("lines", "error"), [
    (b'{"model":"m","message":{"role":"assistant","content":"x"},"done":false}\n', "end-of-stream"),
    (b'{"model":"m","message":{"role":"assistant","content":"x"},"done":false}\n{"model":', "JSON"),
    (b'[1, 2]\n', "not a JSON object"),
    (b'{"message":{"tool_calls":[{"function":{"arguments":{}}}]},"done":false}\n', "function name"),
])
def test_broken_streams_are_protocol_errors(lines: bytes, error: str) -> None:
    _, _, exc = decode([lines])
    assert isinstance(exc, ProtocolError) and error in exc.message


def test_lines_after_done_are_ignored() -> None:
    done = json.dumps(done_line()).encode() + b"\n"
    chunks, response, error = decode([done + b'{"error":"late"}\n' + done])
    assert error is None and response is not None and response.content == "hi" and len(chunks) == 1


def test_non_stream_answer_must_be_done() -> None:
    with pytest.raises(ProtocolError, match="done"):
        CONNECTOR.parse_chat_response({"model": "m", "message": {"content": "x"}, "done": False}, REQUEST)
    with pytest.raises(ProviderError, match="boom"):
        CONNECTOR.parse_chat_response({"error": "boom"}, REQUEST)


def test_string_arguments_from_proxies_are_parsed() -> None:
    call = CONNECTOR.parse_tool_call({"function": {"name": "f", "arguments": "{\"a\": 1}"}}, 0)
    assert call.arguments == {"a": 1} and call.id.startswith("call_0_")


@pytest.mark.parametrize("name", STREAMS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_split_into_reads_gives_identical_chunks(name: str, data: st.DataObject) -> None:
    raw = (FIXTURES / name).read_bytes()
    if data.draw(st.booleans(), label="crlf"):
        raw = raw.replace(b"\n", b"\r\n")
    cuts = sorted(data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=60), label="cuts"))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    expected = decode([raw])
    chunks, response, error = decode(pieces)
    assert chunks == expected[0]
    assert response == expected[1]
    assert (type(error), error and error.message) == (type(expected[2]), expected[2] and expected[2].message)


def test_embedding_response() -> None:
    request = CONNECTOR.prepare_embedding(None, ["a", "b"], {})
    response = CONNECTOR.parse_embedding_response(fixture_json("embed.json"), request)
    assert response.embeddings == fixture_json("embed.json")["embeddings"]
    assert (response.model, response.provider) == ("nomic-embed-text", "ollama")
    assert response.usage == Usage(input_tokens=8, total_tokens=8)
    with pytest.raises(ProtocolError, match="1 vectors for 2 inputs"):
        CONNECTOR.parse_embedding_response({"embeddings": [[1.0]]}, request)


def test_model_list() -> None:
    models, cursor = CONNECTOR.parse_list_models(fixture_json("tags.json"))
    assert cursor is None
    assert [(m.id, m.name, m.created, m.context_length) for m in models] == [
        ("llama3.2:latest", "llama3.2:latest", 1727896110, None),
        ("nomic-embed-text:latest", "nomic-embed-text:latest", 1715607519, 8192),
    ]
    assert models[0].raw["size"] == 2019393189 and models[0].raw["details"]["parameter_size"] == "3.2B"
    with pytest.raises(ProtocolError):
        CONNECTOR.parse_list_models({"data": []})


# -- errors over HTTP -------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "message", "error"), [
    (400, "invalid options: num_gpu must be an integer", InvalidRequestError),
    (400, "registry.ollama.ai/library/gemma3:4b does not support tools", UnsupportedCapabilityError),
    (400, "the input length exceeds the context length", ContextWindowExceededError),
    (401, "unauthorized", AuthenticationError),
    (404, "model 'llama9' not found", NotFoundError),
    (404, 'model "llama9" not found, try pulling it first', NotFoundError),
    (429, "too many requests", RateLimitError),
    (500, "llama runner process has terminated: exit status 2", ProviderError),
    (502, "upstream cloud model unreachable", ProviderError),
    (503, BUSY, OverloadedError),
])
async def test_http_errors_are_typed(mock: respx.MockRouter, status: int, message: str,
                                     error: type[LLMConnectorError]) -> None:
    mock.routes["chat"].mock(return_value=httpx.Response(status, json={"error": message}))
    with pytest.raises(error) as info:
        await run("chat", {"messages": "Hi"})
    assert type(info.value) is error
    assert (info.value.message, info.value.status_code, info.value.provider) == (message, status, "ollama")


@pytest.mark.parametrize(("message", "error"), [
    ("model 'llama9' not found", NotFoundError),
    (BUSY, OverloadedError),
    ("gemma3 does not support thinking", UnsupportedCapabilityError),
    ("model runner has unexpectedly stopped", ProviderError),
])
def test_in_stream_error_text_is_typed(message: str, error: type[LLMConnectorError]) -> None:
    err = CONNECTOR.error_from_payload({"error": message})
    assert type(err) is error and err.status_code is None and err.message == message


async def test_plain_text_error_body(mock: respx.MockRouter) -> None:
    mock.routes["tags"].mock(return_value=httpx.Response(404, text="404 page not found"))
    with pytest.raises(NotFoundError, match="404 page not found"):
        await run("models", {})


async def test_error_line_before_first_chunk_raises_from_opening(mock: respx.MockRouter) -> None:
    mock.routes["chat"].mock(return_value=httpx.Response(
        200, content=(FIXTURES / "chat_error_first.ndjson").read_bytes()))
    async with conn() as c:
        with pytest.raises(ProviderError, match="system memory") as info:
            await c.generate_chat_stream(None, "Hi").__anext__()
    assert not isinstance(info.value, StreamInterruptedError)


async def test_error_line_after_text_interrupts_with_partial(mock: respx.MockRouter) -> None:
    mock.routes["chat"].mock(return_value=httpx.Response(
        200, content=(FIXTURES / "chat_stream_error.ndjson").read_bytes()))
    async with conn() as c, c.generate_chat_stream(None, "Hi") as stream:
        with pytest.raises(StreamInterruptedError) as info:
            await stream.collect()
    assert info.value.partial == "The sky"
    assert isinstance(info.value.__cause__, ProviderError)


# -- configuration -----------------------------------------------------------------------------

HOST_TABLE = json.loads((FIXTURES / "sdk_parse_host.json").read_text())["cases"]


@pytest.mark.parametrize("case", HOST_TABLE, ids=[c["input"] for c in HOST_TABLE])
def test_ollama_host_parsing_matches_the_official_client(case: dict[str, str]) -> None:
    expected = case["output"]
    if case["input"].startswith(":"):  # no host given: ours is localhost, the client's 127.0.0.1
        expected = expected.replace("127.0.0.1", "localhost")
    assert parse_ollama_host(case["input"]) == expected
    assert OllamaConnector.from_env({"OLLAMA_HOST": case["input"]}).base_url == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("  Example.COM:8080  ", "http://example.com:8080"),
    ("HTTPS://ollama.com", "https://ollama.com:443"),
    ("::1", "http://[::1]:11434"),
    ("host:11434/?x=1#frag", "http://host:11434"),
])
def test_ollama_host_edge_cases(value: str, expected: str) -> None:
    assert parse_ollama_host(value) == expected


@pytest.mark.parametrize("value", ["ftp://host", "user:pw@host", "host:0", "host:99999", "host:abc", "[::1"])
def test_bad_ollama_host(value: str) -> None:
    with pytest.raises(ConfigurationError, match="OLLAMA_HOST"):
        OllamaConnector.from_env({"OLLAMA_HOST": value})


def test_from_env_defaults_and_precedence() -> None:
    assert OllamaConnector.from_env({}).base_url == "http://localhost:11434"
    assert OllamaConnector.from_env({"OLLAMA_HOST": "  "}).base_url == "http://localhost:11434"
    explicit = OllamaConnector.from_env({"OLLAMA_HOST": "other"}, base_url="http://127.0.0.1:1234")
    assert explicit.base_url == "http://127.0.0.1:1234"
    keyed = OllamaConnector.from_env({"OLLAMA_HOST": "https://ollama.com", "OLLAMA_API_KEY": "k-123"})
    assert keyed.auth_headers() == {"authorization": "Bearer k-123"}
    assert OllamaConnector.from_env({}).auth_headers() == {}


async def test_registry_builds_it_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box")
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    async with lc.get_connector("ollama:qwen3") as c:
        assert isinstance(c, OllamaConnector)
        assert (c.base_url, c.default_model, c.default_embedding_model) == (
            "http://gpu-box:11434", "qwen3", "nomic-embed-text")
        assert c.is_compatible_model("anything:7b")
    assert lc.describe("ollama")["auth"] == {"kind": "bearer", "header": "authorization",
                                             "env_var": "OLLAMA_API_KEY", "required": False}


async def test_health_check(mock: respx.MockRouter) -> None:
    async with conn() as c:
        assert await c.health_check() is True
        assert mock.calls.last.request.url.path == "/api/version"
        mock.routes["version"].mock(side_effect=httpx.ConnectError("refused"))
        assert await c.health_check() is False
        mock.routes["version"].mock(return_value=httpx.Response(500, json={"error": "boom"}))
        assert await c.health_check() is False
    async with conn(api_key="k", allow_insecure_http=True) as c:  # ollama.com: checks the key
        assert await c.health_check() is True
        request = mock.calls.last.request
        assert (request.url.path, request.headers["authorization"]) == ("/api/tags", "Bearer k")


# -- integration against a real loopback server ------------------------------------------------

@pytest.fixture
def fake() -> OllamaFake:
    return OllamaFake(text="The sky is blue.")


@pytest.fixture
def server(fake: OllamaFake) -> Iterator[FakeServer]:
    with FakeServer(fake) as srv:
        yield srv


async def test_integration_chat_and_stream(server: FakeServer) -> None:
    async with build_connector("ollama", server.url) as c:
        response = await c.generate_chat(None, "Why is the sky blue?", max_tokens=32)
        assert (response.content, response.finish_reason, response.usage) == (
            "The sky is blue.", "stop", Usage(5, 4, 9))
        async with c.generate_chat_stream(None, "Why is the sky blue?",
                                          provider_options={"ollama": {"think": True}}) as stream:
            deltas = [chunk.delta async for chunk in stream]
        assert deltas == ["", "", "The", " sky", " is", " blue.", ""]
        streamed = stream.response
        assert (streamed.content, streamed.reasoning) == (response.content, "Thinking about it.")
    bodies = [r.json() for r in server.requests]
    assert [b["stream"] for b in bodies] == [False, True]
    assert bodies[0]["options"] == {"num_predict": 32} and bodies[1]["think"] is True


async def test_integration_tool_round_trip(server: FakeServer) -> None:
    async with build_connector("ollama", server.url) as c:
        first = await c.generate_chat(None, "Weather in Paris?", tools=[WEATHER_TOOL])
        assert first.finish_reason == "tool_calls"
        assert [(t.id, t.name, t.arguments) for t in first.tool_calls] == [("call_fake_0", "get_weather", {})]
        history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}, first.message,
                   {"role": "tool", "tool_call_id": "call_fake_0", "content": "21C"}]
        second = await c.generate_chat(None, history, tools=[WEATHER_TOOL])
        assert (second.content, second.finish_reason) == ("The sky is blue.", "stop")
    sent_back = server.requests[-1].json()["messages"]
    assert sent_back[1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {}}}]
    assert sent_back[2] == {"role": "tool", "content": "21C", "tool_name": "get_weather"}


async def test_integration_mid_stream_error_line(server: FakeServer, fake: OllamaFake) -> None:
    kit = OllamaWireKit()
    fake.replies.append(kit.stream_error_reply(["Hello", " wor"]))
    fake.replies.append(kit.stream_error_reply([], kind="api"))
    async with build_connector(kit, server.url) as c:
        async with c.generate_chat_stream(None, "Hi") as stream:
            with pytest.raises(StreamInterruptedError) as info:
                async for _ in stream:
                    pass
        assert info.value.partial == "Hello wor"
        assert isinstance(info.value.__cause__, OverloadedError)
        with pytest.raises(ProviderError, match="while running the model"):
            await c.generate_chat_stream(None, "Hi").collect()


async def test_integration_embeddings_tags_health(server: FakeServer) -> None:
    async with build_connector("ollama", server.url) as c:
        embedded = await c.generate_embedding(None, ["first text", "second text"], dimensions=4)
        assert [len(v) for v in embedded.embeddings] == [4, 4]
        assert embedded.embeddings[0] != embedded.embeddings[1]
        assert (embedded.model, embedded.usage.input_tokens) == ("nomic-embed-text", 4)
        models = await c.list_models()
        assert [m.id for m in models] == ["llama3.2:latest", "nomic-embed-text:latest", "fake-model:latest"]
        assert await c.health_check() is True
        with pytest.raises(NotFoundError, match="'nope' not found"):
            await c.generate_chat("nope", "Hi")
    assert server.requests[-1].path == "/api/chat"


async def test_integration_health_false_when_nothing_listens() -> None:
    with FakeServer(OllamaFake()) as srv:
        url = srv.url
    async with build_connector("ollama", url, timeout=5) as c:
        assert await c.health_check() is False


async def test_integration_kit_replies(server: FakeServer, fake: OllamaFake) -> None:
    kit = OllamaWireKit()
    calls = [ToolCall(id="call_a", name="get_weather", arguments={"city": "Paris"})]
    fake.replies.extend([
        kit.chat_reply("", tool_calls=calls, finish="tool_calls", input_tokens=11, output_tokens=5),
        kit.stream_reply(["Hel", "lo"], tool_calls=calls, finish="tool_calls", input_tokens=11,
                         output_tokens=5),
        kit.error_reply(429, "rate limited", headers={"retry-after": "2"}),
        kit.embedding_reply([[1.0, 2.0]], input_tokens=3),
        kit.models_reply(["a:latest"]),
    ])
    async with build_connector(kit, server.url) as c:
        plain = await c.generate_chat(None, "Hi")
        streamed = await c.generate_chat_stream(None, "Hi").collect()
        for response in (plain, streamed):
            assert (response.tool_calls, response.finish_reason, response.usage) == (
                calls, "tool_calls", Usage(11, 5, 16))
        assert streamed.content == "Hello"
        with pytest.raises(RateLimitError) as info:
            await c.generate_chat(None, "Hi")
        assert info.value.retry_after == 2.0
        assert (await c.generate_embedding(None, "x")).embeddings == [[1.0, 2.0]]
        assert [m.id for m in await c.list_models()] == ["a:latest"]
    assert kit.stream_events(["a"])[-1].endswith(b"\n")
