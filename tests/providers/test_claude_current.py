"""Claude on API version 2026-10-21 and the current models: the version setting and its rules,
reasoning_effort and thinking, default max_tokens, documents, prompt caching, token counting and
the model list's lifecycle fields. Request shapes the official SDK sends for the same inputs are
compared in ``test_claude.py`` (the anthropic-2.17.0 captures).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
import respx
from builders import build_connector

import llm_connectors as lc
from llm_connectors import catalog, errors
from llm_connectors.connectors.claude import ANTHROPIC_VERSION, LEGACY_API_VERSION, ClaudeConnector
from llm_connectors.requests import ChatRequest
from llm_connectors.testing import FakeServer
from llm_connectors.testing.claude_wire import ClaudeFake, count_tokens_of, sse_event
from llm_connectors.types import Message

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]

BASE = "https://api.anthropic.com"
KEY = "test-key"
OLD = "claude-sonnet-4-6"  # takes sampling options (on 2023-06-01), thinking disabled and budgets
CURRENT = "claude-sonnet-5-5"  # the default: adaptive or between_tools thinking only, no forced tools
HELLO = [{"role": "user", "content": "Hello"}]
PDF = "data:application/pdf;base64,JVBERi0xLjQK"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}
LEGACY = {"api_version": LEGACY_API_VERSION}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": CURRENT, "stop_reason": "end_turn",
           "content": [{"type": "text", "text": "ok"}], "usage": {"input_tokens": 3, "output_tokens": 1}}

connector = partial(build_connector, "claude", api_key=KEY)

# Test-only catalog entries (unique ids, so registering them once per process is harmless).
catalog.register_model("claude", "claude-test-adaptive-only", source="test", rules=[
    {"option": "thinking", "allowed": ["adaptive"], "why": "adaptive thinking only"}])
catalog.register_model("claude", "claude-test-short", source="test", max_output_tokens=8000,
                       default_max_tokens=16000)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


async def sent(mock: respx.MockRouter, model: str, messages: Any = HELLO, settings: dict[str, Any] | None = None,
               **options: Any) -> dict[str, Any]:
    """The body one non-streaming call sends."""
    route = mock.post("/v1/messages").mock(return_value=httpx.Response(200, json=MESSAGE))
    async with connector(**(settings or {})) as conn:
        await conn.generate_chat(model, messages, **options)
    body: dict[str, Any] = json.loads(route.calls.last.request.content)
    return body


async def refused(mock: respx.MockRouter, model: str, match: str, messages: Any = HELLO,
                  settings: dict[str, Any] | None = None, error: type[Exception] = errors.InvalidRequestError,
                  **options: Any) -> None:
    """The call raises ``error`` matching ``match`` and sends nothing."""
    async with connector(**(settings or {})) as conn:
        with pytest.raises(error, match=match):
            await conn.generate_chat(model, messages, **options)
    assert not mock.calls


# -- the API version ------------------------------------------------------------------------------

async def test_api_version_setting_is_checked_and_reaches_the_factory() -> None:
    assert ClaudeConnector(api_key=KEY).api_version == ANTHROPIC_VERSION == "2026-10-21"
    with pytest.raises(errors.ConfigurationError, match=r"'2026-10-21' .* or '2023-06-01', got '2024-01-01'"):
        ClaudeConnector(api_key=KEY, api_version="2024-01-01")
    with pytest.raises(errors.ConfigurationError, match="disagree"):
        ClaudeConnector(api_key=KEY, api_version=LEGACY_API_VERSION, headers={"anthropic-version": "2026-10-21"})
    async with lc.get_connector("claude", api_key=KEY, api_version=LEGACY_API_VERSION) as conn:
        assert isinstance(conn, ClaudeConnector) and conn.api_version == LEGACY_API_VERSION
        assert conn.auth_headers() == {"x-api-key": KEY}
    async with lc.get_connector(primary="claude", fallbacks=["ollama"],
                                providers={"claude": {"api_key": KEY, **LEGACY}}) as chain:
        assert chain.members[0].api_version == LEGACY_API_VERSION  # type: ignore[attr-defined]


@pytest.mark.parametrize(("option", "value"), [("temperature", 0.5), ("top_p", 0.9), ("top_k", 40)])
@pytest.mark.parametrize("model", [OLD, "claude-future-9"])  # a model without catalog rules, an unknown one
async def test_sampling_options_are_refused_for_every_model_under_2026(mock: respx.MockRouter, option: str,
                                                                       value: float, model: str) -> None:
    await refused(mock, model, rf"does not take '{option}': removed in API version 2026-10-21; pin "
                               r"api_version='2023-06-01'", **{option: value})


async def test_sampling_options_follow_the_catalog_under_2023(mock: respx.MockRouter) -> None:
    body = await sent(mock, OLD, settings=LEGACY, temperature=0.5, top_p=0.9, top_k=40)
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.5, 0.9, 40)
    mock.reset()
    await refused(mock, CURRENT, "deprecated for this model", settings=LEGACY, temperature=0.5)


async def test_dropped_sampling_never_reaches_the_body(mock: respx.MockRouter) -> None:
    body = await sent(mock, OLD, drop_params=True, temperature=0.5, top_p=0.9, top_k=40, max_tokens=10)
    assert not {"temperature", "top_p", "top_k"} & set(body) and body["max_tokens"] == 10
    # Defence in depth: a request built by hand (no rules checked) still never carries them on 2026-10-21.
    request = ChatRequest(OLD, (Message(role="user", content="x"),), {"temperature": 0.5, "top_k": 3})
    assert not {"temperature", "top_k"} & set(connector().build_chat_request(request).json or {})
    assert (connector(**LEGACY).build_chat_request(request).json or {})["temperature"] == 0.5


# -- reasoning and thinking -----------------------------------------------------------------------

@pytest.mark.parametrize(("model", "options", "thinking", "effort"), [
    (OLD, {"reasoning_effort": "none"}, {"type": "disabled"}, None),
    (CURRENT, {"reasoning_effort": "none"}, {"type": "between_tools"}, None),  # 5.5 refuses disabled
    (CURRENT, {"reasoning_effort": "minimal"}, {"type": "adaptive"}, "low"),
    (CURRENT, {"reasoning_effort": "max"}, {"type": "adaptive"}, "max"),
    (OLD, {"reasoning_effort": "high", "thinking": {"type": "adaptive", "display": "omitted"}},
     {"type": "adaptive", "display": "omitted"}, "high"),
    (OLD, {"reasoning_effort": "none", "thinking": {"type": "between_tools"}}, {"type": "between_tools"}, None),
    (CURRENT, {"thinking": {"type": "between_tools"}}, {"type": "between_tools"}, None),
    (OLD, {"effort": "low"}, None, "low"),  # Claude's own name: the effort alone
])
async def test_reasoning_effort_and_thinking_on_the_wire(mock: respx.MockRouter, model: str, options: dict[str, Any],
                                                         thinking: Any, effort: str | None) -> None:
    body = await sent(mock, model, **options)
    assert body.get("thinking") == thinking
    assert body.get("output_config", {}).get("effort") == effort


@pytest.mark.parametrize(("model", "options", "match"), [
    (OLD, {"reasoning_effort": "none", "thinking": {"type": "adaptive"}}, "turns thinking off"),
    (OLD, {"reasoning_effort": "low", "effort": "high"}, "pass one"),
    ("claude-test-adaptive-only", {"reasoning_effort": "none"}, "cannot turn thinking off"),
    ("claude-fable-5", {"reasoning_effort": "none"}, "cannot turn thinking off"),  # from the catalog
    ("claude-haiku-4-5", {"reasoning_effort": "low"}, "no adaptive thinking"),
    ("claude-opus-4-6", {"max_tokens": 200_000}, "at most 128000"),
    (OLD, {"reasoning_effort": "extreme"}, "reasoning_effort"),
    (OLD, {"thinking": {"type": "adaptive", "display": "full"}}, "thinking"),
    (OLD, {"thinking": {"type": "between_tools", "budget_tokens": 2048}}, "thinking"),
    (CURRENT, {"thinking": {"type": "enabled", "budget_tokens": 2048}}, "only as 'adaptive' or 'between_tools'"),
    (CURRENT, {"thinking": {"type": "disabled"}}, "thinking"),
    (CURRENT, {"tools": [WEATHER], "tool_choice": "required"}, "tool_choice.*forced tool use"),
    (CURRENT, {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
     "tool_choice.*not 'named'"),
])
async def test_reasoning_and_tool_choice_refusals_before_io(mock: respx.MockRouter, model: str,
                                                            options: dict[str, Any], match: str) -> None:
    await refused(mock, model, match, **options)


async def test_current_model_refuses_a_final_assistant_turn(mock: respx.MockRouter) -> None:
    prefill = [*HELLO, {"role": "assistant", "content": "{"}]
    await refused(mock, CURRENT, "prefill", messages=prefill)
    assert (await sent(mock, OLD, prefill))["messages"][-1] == {"role": "assistant", "content": "{"}


# -- max_tokens -----------------------------------------------------------------------------------

async def test_default_max_tokens_follows_the_catalog_within_the_output_limit(mock: respx.MockRouter) -> None:
    assert (await sent(mock, CURRENT))["max_tokens"] == 16000  # room for default adaptive thinking
    assert (await sent(mock, "claude-future-9"))["max_tokens"] == 4096  # unknown: the old default
    assert (await sent(mock, "claude-test-short"))["max_tokens"] == 8000  # never above the limit
    mock.reset()
    await refused(mock, "claude-test-short", "max_tokens.*at most 8000", max_tokens=9000)


# -- documents, tool errors, prompt caching -------------------------------------------------------

async def test_documents_map_to_document_blocks_with_cache_markers(mock: respx.MockRouter) -> None:
    cached = {"type": "ephemeral", "ttl": "1h"}
    body = await sent(mock, CURRENT, [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:text/plain,hello%20world"}, "cache_control": cached},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}, "cache_control": cached},
    ]}, {"role": "assistant", "tool_calls": [{"id": "t1", "name": "fetch", "arguments": {}}]},
        {"role": "tool", "tool_call_id": "t1", "content": [{"type": "file", "file": {"file_data": PDF}}]}])
    assert body["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello world"},
         "cache_control": cached},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}, "cache_control": cached}]
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "t1", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}}]}]
    async with connector() as conn:
        assert lc.Capability.DOCUMENTS in conn.capabilities


@pytest.mark.parametrize(("messages", "match"), [
    ([{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:image/png;base64,iVBORw=="}}]}],
     r"messages\[0\]\.content\[0\]: .*application/pdf or text/plain"),
    ([{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:text/plain;base64,/w=="}}]}],
     "UTF-8"),
    ([*HELLO, {"role": "assistant", "content": [{"type": "file", "file": {"file_data": PDF}}]}, *HELLO],
     "images and documents in user and tool messages only"),
    ([{"role": "system", "content": [{"type": "file", "file": {"file_data": PDF}}]}, *HELLO],
     "system prompt takes text only"),
])
async def test_documents_claude_cannot_take_are_refused_before_io(mock: respx.MockRouter, messages: Any,
                                                                  match: str) -> None:
    await refused(mock, CURRENT, match, messages=messages)


async def test_tool_result_is_error_is_sent_only_when_set(mock: respx.MockRouter) -> None:
    turns = [*HELLO, {"role": "assistant", "tool_calls": [{"id": "t1", "name": "f", "arguments": {}},
                                                           {"id": "t2", "name": "f", "arguments": {}}]},
             {"role": "tool", "tool_call_id": "t1", "content": "boom", "is_error": True},
             {"role": "tool", "tool_call_id": "t2", "content": "fine"}]
    body = await sent(mock, OLD, turns)
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True},
        {"type": "tool_result", "tool_use_id": "t2", "content": "fine"}]


CACHE_USAGE = {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 100,
               "cache_creation_input_tokens": 300,
               "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}}


async def test_cache_ttl_split_is_kept_in_raw_streamed_or_not(mock: respx.MockRouter) -> None:
    mock.post("/v1/messages").mock(side_effect=[
        httpx.Response(200, json={**MESSAGE, "usage": CACHE_USAGE}),
        httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join([
            sse_event({"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None,
                                                            "usage": CACHE_USAGE}}),
            sse_event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            sse_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}}),
            sse_event({"type": "content_block_stop", "index": 0}),
            sse_event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
            sse_event({"type": "message_stop"})])),
    ])
    async with connector() as conn:
        whole = await conn.generate_chat(OLD, HELLO)
        streamed = await conn.generate_chat_stream(OLD, HELLO).collect()
    for resp in (whole, streamed):
        assert resp.raw["usage"]["cache_creation"] == CACHE_USAGE["cache_creation"]
        assert resp.usage.cache_write_tokens == 300 and resp.usage.input_tokens == 405


# -- token counting --------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [{"tokens": 3}, {"input_tokens": -1}, {"input_tokens": "3"}, [], "3"])
async def test_count_tokens_refuses_garbage(mock: respx.MockRouter, answer: Any) -> None:
    mock.post("/v1/messages/count_tokens").mock(return_value=httpx.Response(200, json=answer))
    async with connector() as conn:
        with pytest.raises(errors.ProtocolError):
            await conn.count_tokens(CURRENT, HELLO)


async def test_count_tokens_is_checked_like_a_chat_and_maps_errors(mock: respx.MockRouter) -> None:
    route = mock.post("/v1/messages/count_tokens").mock(return_value=httpx.Response(
        404, json={"type": "error", "error": {"type": "not_found_error", "message": "model: nope"}}))
    async with connector() as conn:
        with pytest.raises(errors.InvalidRequestError, match="temperature"):
            await conn.count_tokens(CURRENT, HELLO, temperature=0.5)
        assert not route.called
        with pytest.raises(errors.NotFoundError, match="model: nope"):
            await conn.count_tokens("claude-nope", HELLO)
    request = route.calls.last.request
    assert request.url.path == "/v1/messages/count_tokens"
    assert request.headers["authorization"] == f"Bearer {KEY}" and request.headers["anthropic-version"] == "2026-10-21"


# -- the model list ---------------------------------------------------------------------------------

def test_model_list_lifecycle_fields() -> None:
    models, _ = connector().parse_list_models({"data": [
        {"type": "model", "id": "claude-a", "lifecycle": "deprecated", "deprecated_at": "2026-10-01T00:00:00Z",
         "retires_at": "2027-01-22T00:00:00Z", "max_tokens": 64000},
        {"type": "model", "id": "claude-b", "lifecycle": "active", "deprecated_at": None, "retires_at": None},
        {"type": "model", "id": "claude-c", "lifecycle": "retired", "retires_at": "not a date"},
        {"type": "model", "id": "claude-d"},
    ], "has_more": False})
    assert [(m.deprecated, m.deprecated_on, m.retires_on) for m in models] == [
        (True, "2026-10-01", "2027-01-22"), (False, None, None), (True, None, None), (False, None, None)]
    assert models[0].max_output_tokens == 64000


# -- the loopback fake server -----------------------------------------------------------------------

@pytest.fixture
def claude_fake() -> ClaudeFake:
    return ClaudeFake("Bonjour.")


@pytest.fixture
def claude_server(claude_fake: ClaudeFake) -> Iterator[FakeServer]:
    with FakeServer(claude_fake) as server:
        yield server


async def test_integration_count_tokens_documents_and_lifecycle(claude_fake: ClaudeFake,
                                                                claude_server: FakeServer) -> None:
    claude_fake.retiring = {"claude-fake-2": "2027-01-22T00:00:00Z"}
    messages = [{"role": "system", "content": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": [{"type": "file", "file": {"file_data": PDF, "filename": "r.pdf"}},
                                             {"type": "text", "text": "Summarise."}]}]
    async with build_connector("claude", claude_server.url) as conn:
        counted = await conn.count_tokens(None, messages, tools=[WEATHER], reasoning_effort="low", max_tokens=50)
        resp = await conn.generate_chat(None, messages, reasoning_effort="none", drop_params=True, temperature=0.2)
        models = await conn.list_models()
    count_request, chat_request = claude_server.requests[:2]
    assert count_request.path == "/v1/messages/count_tokens"
    assert counted.exact and counted.input_tokens == count_tokens_of(count_request.json())
    assert "max_tokens" not in count_request.json() and count_request.json()["output_config"] == {"effort": "low"}
    assert resp.content == "Bonjour."
    assert chat_request.json()["thinking"] == {"type": "between_tools"}
    assert "temperature" not in chat_request.json()
    assert [(m.id, m.deprecated, m.retires_on) for m in models] == [
        ("claude-fake-1", False, None), ("claude-fake-2", True, "2027-01-22"), ("claude-fake-3", False, None)]


async def test_fake_refuses_what_2026_10_21_refuses(claude_server: FakeServer) -> None:
    async def post(path: str, body: dict[str, Any], version: str = "2026-10-21") -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(f"{claude_server.url}{path}", json=body,
                                     headers={"authorization": f"Bearer {KEY}", "anthropic-version": version})

    chat = {"model": OLD, "max_tokens": 5, "messages": HELLO, "temperature": 0.5}
    assert (await post("/v1/messages", chat)).status_code == 400
    assert (await post("/v1/messages", chat, LEGACY_API_VERSION)).status_code == 200
    doc = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    assistant_doc = {"model": OLD, "max_tokens": 5, "messages": [*HELLO, {"role": "assistant", "content": [doc]}]}
    assert "assistant" in (await post("/v1/messages", assistant_doc)).text
    assert (await post("/v1/messages/count_tokens", {"model": OLD, "messages": HELLO, "max_tokens": 5})
            ).status_code == 400
