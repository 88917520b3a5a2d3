"""OpenAI's Responses API, the request side: parity with ``client.responses.create`` (openai 3.63.0
captures in fixtures/openai/sdk_requests), which API a call uses, what only one API refuses (before
any I/O), built-in tools, and reasoning items carried across a two-turn tool conversation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from builders import build_connector

import llm_connectors as lc
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.connectors.openai_responses import reasoning_signature, split_reasoning_signature
from llm_connectors.testing.openai_responses_wire import responses_json
from llm_connectors.testing.openai_wire import openai_chat_json
from llm_connectors.types import Message, ReasoningBlock

pytestmark = pytest.mark.anyio
BASE = "https://api.openai.com/v1"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "openai"
SDK = FIXTURES / "sdk_requests" / "openai-3.63.0"
PRO = "gpt-5.5-pro"  # catalog: api "responses"
PDF = "data:application/pdf;base64,JVBERi0xLjQKJcOkw7zDtsOfCg=="
ENCRYPTED = "gAAAAABoEncryptedReasoning=="
SYSTEM_USER = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TURN_ONE = [{"role": "user", "content": "Weather in Paris?"}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}

#: The neutral input of each Responses capture (capture.py there says what the SDK was given).
CASES: dict[str, dict[str, Any]] = {
    "responses_system_user": {"messages": SYSTEM_USER},
    "responses_options": {
        "messages": [{"role": "system", "content": "Answer in French."}, *TURN_ONE],
        "tools": [WEATHER, {"type": "web_search"}], "tool_choice": "required", "parallel_tool_calls": False,
        "max_tokens": 2048, "reasoning_effort": "high", "reasoning_summary": "auto",
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "strict": True, "schema": {"type": "object", "properties": {"v": {"type": "string"}}}}},
        "verbosity": "low", "service_tier": "flex", "prompt_cache_key": "tenant-42", "metadata": {"run": "capture"}},
    "responses_tool_round_trip": {
        "messages": [*TURN_ONE,
                     Message(role="assistant", tool_calls=(lc.ToolCall.from_json_text("call_1", "get_weather",
                                                                                     '{"city":"Paris"}'),),
                             reasoning=(ReasoningBlock(text="Look it up.", signature=f"rs_1:{ENCRYPTED}",
                                                       provider="openai"),)),
                     {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"}],
        "tools": [WEATHER], "reasoning_effort": "medium"},
    "responses_images_files": {
        "model": "gpt-5.5", "provider_options": {"openai": {"api": "responses"}},
        "messages": [{"role": "user", "content": [
            "Compare these.",
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
            {"type": "image_url", "image_url": "data:image/png;base64,iVBORw0KGgo="},
            {"type": "file", "file": {"file_data": PDF, "filename": "report.pdf"}},
            {"type": "file", "file": {"url": "https://example.com/a.pdf"}},
            {"type": "file", "file": {"file_id": "file-abc123"}}]}]},
}


@pytest.fixture
def mock() -> Any:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def conn() -> Any:
    async with build_connector("openai") as c:
        yield c


@pytest.fixture
def offline() -> OpenAIConnector:
    return build_connector("openai")  # type: ignore[return-value]  # prepare/build only: no I/O


def built(conn: OpenAIConnector, messages: Any, model: str | None = PRO, *, stream: bool = False,
          **options: Any) -> tuple[str, dict[str, Any]]:
    """``(path, body)`` the connector would send, with the caller's extra fields merged (no I/O)."""
    wire = conn._chat_wire(conn.prepare_chat(model, messages, options, stream=stream))
    assert isinstance(wire.json, dict)
    return wire.path, wire.json


# -- parity with the official SDK -----------------------------------------------------------------

def test_every_responses_capture_has_a_case() -> None:
    assert {p.stem for p in SDK.glob("responses_*.json")} == set(CASES)
    assert (SDK / "stream_responses_system_user.json").exists()


@pytest.mark.parametrize("case", sorted(CASES))
async def test_body_matches_client_responses_create(mock: Any, case: str) -> None:
    expected = json.loads((SDK / f"{case}.json").read_text())
    route = mock.post("/responses").respond(json=responses_json("hi", model=PRO))
    options = dict(CASES[case])
    messages, model = options.pop("messages"), options.pop("model", PRO)
    async with build_connector("openai", api_key="test-key") as c:
        response = await c.generate_chat(model, messages, **options)
    request = route.calls.last.request
    assert request.url.path == expected["path"] == "/v1/responses"
    assert json.loads(request.content) == expected["body"]
    for name, value in expected["headers"].items():
        assert request.headers[name] == value
    assert (response.content, response.finish_reason) == ("hi", "stop")


async def test_stream_body_matches_client_responses_create(mock: Any) -> None:
    expected = json.loads((SDK / "stream_responses_system_user.json").read_text())
    route = mock.post("/responses").respond(
        200, content=(FIXTURES / "responses_refusal.sse").read_bytes(), headers={"content-type": "text/event-stream"})
    async with build_connector("openai", api_key="test-key") as c:
        await c.generate_chat_stream(PRO, SYSTEM_USER).collect()
    assert json.loads(route.calls.last.request.content) == expected["body"]


# -- which API a call uses ------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "options", "path"), [
    ("gpt-5.4-mini", {}, "/chat/completions"),
    ("gpt-5.4-mini", {"tools": [WEATHER]}, "/chat/completions"),
    (PRO, {}, "/responses"),  # the catalog's api: "responses"
    ("o3-pro", {}, "/responses"),
    ("gpt-5.4-mini", {"tools": [{"type": "web_search"}]}, "/responses"),  # built-in tools exist only there
    ("gpt-6-astra", {}, "/chat/completions"),
    ("gpt-6-astra", {"tools": [WEATHER]}, "/responses"),  # a catalog rule lifted by api: "responses"
    ("gpt-6-sol", {"tools": [WEATHER], "reasoning_effort": "none"}, "/chat/completions"),
    ("gpt-6-sol", {"tools": [WEATHER], "reasoning_effort": "high"}, "/responses"),
    ("an-uncatalogued-model", {}, "/chat/completions"),
    ("gpt-5.4-mini", {"provider_options": {"openai": {"api": "responses"}}}, "/responses"),
    (PRO, {"provider_options": {"openai": {"api": "auto"}}}, "/responses"),
])
def test_auto_chooses_the_api_per_model_and_call(offline: OpenAIConnector, model: str, options: dict[str, Any],
                                                 path: str) -> None:
    assert built(offline, "Hi", model, **options)[0] == path


def test_the_connector_setting_and_the_call_override_it() -> None:
    responses = build_connector("openai", api="responses")
    assert built(responses, "Hi", "gpt-5.4-mini")[0] == "/responses"  # type: ignore[arg-type]
    chat = {"provider_options": {"openai": {"api": "chat"}}}
    assert built(responses, "Hi", "gpt-5.4-mini", **chat)[0] == "/chat/completions"  # type: ignore[arg-type]
    assert built(build_connector("openai", api="chat"), "Hi", "gpt-5.4-mini")[0] == "/chat/completions"  # type: ignore[arg-type]


def test_the_api_choice_never_reaches_the_body(offline: OpenAIConnector) -> None:
    _, body = built(offline, "Hi", "gpt-5.4-mini", provider_options={"openai": {"api": "responses",
                                                                                "truncation": "auto"}})
    assert body["truncation"] == "auto" and "api" not in body
    _, chat = built(offline, "Hi", "gpt-5.4-mini", provider_options={"openai": {"api": "chat", "store": True}})
    assert chat["store"] is True and "api" not in chat


def test_a_wrong_api_is_refused() -> None:
    with pytest.raises(lc.ConfigurationError, match="api must be one of"):
        OpenAIConnector(api_key="k", api="assistants")  # type: ignore[arg-type]
    with pytest.raises(lc.InvalidRequestError, match=r"provider_options\['openai'\]\['api'\]"):
        built(build_connector("openai"), "Hi", provider_options={"openai": {"api": "completions"}})  # type: ignore[arg-type]


# -- what one API refuses, before any I/O ---------------------------------------------------------

@pytest.mark.parametrize(("model", "options", "error", "words"), [
    (PRO, {"provider_options": {"openai": {"api": "chat"}}}, lc.UnsupportedCapabilityError, "only on OpenAI's Resp"),
    ("gpt-5.4-mini", {"tools": [{"type": "web_search"}], "provider_options": {"openai": {"api": "chat"}}},
     lc.UnsupportedCapabilityError, "built-in tools"),
    ("gpt-5.4-mini", {"reasoning_summary": "auto", "provider_options": {"openai": {"api": "chat"}}},
     lc.UnsupportedCapabilityError, "reasoning_summary"),
    ("gpt-6-astra", {"tools": [WEATHER], "provider_options": {"openai": {"api": "chat"}}}, lc.InvalidRequestError,
     "api='responses'"),
    (PRO, {"stop": ["END"]}, lc.InvalidRequestError, "'stop'"),
    (PRO, {"seed": 1}, lc.InvalidRequestError, "'seed'"),
    (PRO, {"frequency_penalty": 0.5}, lc.InvalidRequestError, "'frequency_penalty'"),
    (PRO, {"max_tokens": 8}, lc.InvalidRequestError, "at least 16"),
    (PRO, {"tools": [{"type": ""}]}, lc.InvalidRequestError, "string 'type'"),
    ("computer-use-preview", {"tools": [{"type": "web_search"}]}, lc.UnsupportedCapabilityError,
     "computer_use_preview"),
    (PRO, {"prompt_cache_options": {"ttl": "1h"}}, lc.InvalidRequestError, "'12h'"),
])
async def test_refused_before_io(mock: Any, conn: OpenAIConnector, model: str, options: dict[str, Any],
                                 error: type[Exception], words: str) -> None:
    routes = [mock.post("/responses").respond(json=responses_json("hi")),
              mock.post("/chat/completions").respond(json=openai_chat_json("hi"))]
    with pytest.raises(error, match=words):
        await conn.generate_chat(model, "Hi", **options)
    with pytest.raises(error, match=words):
        conn.generate_chat_stream(model, "Hi", **options)
    assert not any(route.called for route in routes)


def test_drop_params_drops_what_the_chosen_api_lacks(offline: OpenAIConnector) -> None:
    _, body = built(offline, "Hi", PRO, stop=["END"], seed=3, temperature=0.5, drop_params=True)
    assert "stop" not in body and "seed" not in body and body["temperature"] == 0.5
    path, chat = built(offline, "Hi", "gpt-6-astra", tools=[WEATHER], drop_params=True,
                       provider_options={"openai": {"api": "chat"}})
    assert path == "/chat/completions" and "tools" not in chat


def test_computer_use_preview_takes_its_own_tool(offline: OpenAIConnector) -> None:
    tool = {"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "browser"}
    assert built(offline, "Open the site", "computer-use-preview", tools=[tool])[1]["tools"] == [tool]


# -- the mapping ----------------------------------------------------------------------------------

def test_defaults_are_stateless_and_the_caller_can_override_them(offline: OpenAIConnector) -> None:
    _, body = built(offline, "Hi")
    assert (body["store"], body["include"]) == (False, ["reasoning.encrypted_content"])
    _, stored = built(offline, "Hi", store=True, logprobs=True, top_logprobs=2)
    assert stored["store"] is True and stored["top_logprobs"] == 2
    assert stored["include"] == ["reasoning.encrypted_content", "message.output_text.logprobs"]
    _, none = built(offline, "Hi", provider_options={"openai": {"include": []}})
    assert none["include"] == []


def test_messages_map_to_instructions_and_input_items(offline: OpenAIConnector) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "developer", "content": [
        {"type": "text", "text": "Cite sources.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        {"role": "developer", "content": "Now in French."}, {"role": "user", "content": "Bye"}]
    _, body = built(offline, messages)
    assert body["instructions"] == "Be brief.\n\nCite sources."
    assert body["input"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                             {"role": "developer", "content": "Now in French."}, {"role": "user", "content": "Bye"}]


def test_tools_choices_and_formats(offline: OpenAIConnector) -> None:
    strict = {"type": "function", "function": {"name": "lookup", "strict": True, "parameters": {"type": "object"}}}
    _, body = built(offline, "Hi", tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}, strict,
                                          {"name": "ping"}],
                    tool_choice={"name": "lookup"}, response_format={"type": "json_object"})
    assert body["tools"] == [
        {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": True},
        {"type": "function", "name": "ping", "parameters": {"type": "object", "properties": {}}, "strict": False},
        {"type": "file_search", "vector_store_ids": ["vs_1"]}]
    assert body["tool_choice"] == {"type": "function", "name": "lookup"}
    assert body["text"] == {"format": {"type": "json_object"}}


def test_tool_results_with_images_are_input_parts(offline: OpenAIConnector) -> None:
    messages = [*TURN_ONE, {"role": "assistant", "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": [
                    {"type": "text", "text": "see"}, {"type": "image_url", "image_url": "https://x.test/a.png"}]}]
    _, body = built(offline, messages)
    assert body["input"][-1] == {"type": "function_call_output", "call_id": "call_1", "output": [
        {"type": "input_text", "text": "see"},
        {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "auto"}]}


# -- reasoning items across turns -----------------------------------------------------------------

def test_the_signature_convention_round_trips() -> None:
    assert split_reasoning_signature(reasoning_signature("rs_1", "gAAA:b==")) == ("rs_1", "gAAA:b==")
    assert split_reasoning_signature(reasoning_signature(None, "enc")) == (None, "enc")
    assert split_reasoning_signature(reasoning_signature("rs_1", None)) == ("rs_1", None)
    assert reasoning_signature(None, None) is None
    assert split_reasoning_signature("a-claude-signature") == (None, None)


async def test_two_turn_tool_conversation_carries_its_reasoning(mock: Any, conn: OpenAIConnector) -> None:
    first = json.loads((FIXTURES / "responses_tool_call.json").read_text())
    route = mock.post("/responses").mock(side_effect=[
        httpx.Response(200, json=first), httpx.Response(200, json=json.loads(
            (FIXTURES / "responses_answer.json").read_text()))])
    turn = await conn.generate_chat(PRO, TURN_ONE, tools=[WEATHER])
    assert [c.id for c in turn.tool_calls] == ["call_Paris1", "call_Lyon2"]
    conversation: list[Any] = [*TURN_ONE, turn.message]
    conversation += [{"role": "tool", "tool_call_id": c.id, "content": f"{c.arguments['city']}: 18C"}
                     for c in turn.tool_calls]
    # the conversation survives JSON (a stored chat history), signature and provider included
    conversation = json.loads(json.dumps([m.to_dict() if isinstance(m, Message) else m for m in conversation]))
    final = await conn.generate_chat(PRO, conversation, tools=[WEATHER])
    assert final.content == "Paris: 18C and cloudy. Lyon: 20C."
    sent = json.loads(route.calls.last.request.content)["input"]
    reasoning = first["output"][0]
    assert sent == [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "reasoning", "id": reasoning["id"], "encrypted_content": reasoning["encrypted_content"],
         "summary": [{"type": "summary_text", "text": "\n\n".join(s["text"] for s in reasoning["summary"])}]},
        {"type": "function_call", "call_id": "call_Paris1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_Lyon2", "name": "get_weather", "arguments": '{"city":"Lyon"}'},
        {"type": "function_call_output", "call_id": "call_Paris1", "output": "Paris: 18C"},
        {"type": "function_call_output", "call_id": "call_Lyon2", "output": "Lyon: 18C"}]
    # the second turn's reasoning (no summary, encrypted only) is kept for a third
    assert final.message.reasoning == (ReasoningBlock(text="", signature="rs_68f2a:" + final.raw["output"][0][
        "encrypted_content"], provider="openai"),)


def test_reasoning_from_elsewhere_is_left_out_cleanly(offline: OpenAIConnector) -> None:
    blocks = (ReasoningBlock(text="Claude thought.", signature="EqQBCkgIARABGAIiQL", provider="claude"),
              ReasoningBlock(text="Chat Completions text, no item", provider="openai"),
              ReasoningBlock(text="mine", signature="rs_9:enc", provider=None))
    messages = [*TURN_ONE, Message(role="assistant", content="Done.", reasoning=blocks),
                {"role": "user", "content": "Ok"}]
    _, body = built(offline, messages)
    assert body["input"][1:] == [{"type": "reasoning", "id": "rs_9", "summary": [{"type": "summary_text",
                                                                                   "text": "mine"}],
                                  "encrypted_content": "enc"},
                                 {"role": "assistant", "content": "Done."}, {"role": "user", "content": "Ok"}]
    # and Chat Completions sends none of them
    chat = offline._chat_wire(offline.prepare_chat("gpt-5.4-mini", messages, {}, stream=False)).json
    assert "reasoning" not in json.dumps(chat["messages"][1])
