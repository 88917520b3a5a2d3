"""The Gemini connector: request mapping, answer parsing, safety blocks, errors, streams, paging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_connectors import errors as e
from llm_connectors.connectors.gemini import GeminiConnector
from llm_connectors.connectors.gemini_stream import SafetyBlockError
from llm_connectors.testing import FakeServer
from llm_connectors.testing.gemini_wire import GeminiFake, gemini_error
from llm_connectors.testing.server import Reply
from llm_connectors.types import ToolCall

FIXTURES = Path(__file__).parent.parent / "fixtures" / "gemini"
KEY = "gm-test-key-0123456789"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]


def _conn(**kwargs: Any) -> GeminiConnector:
    kwargs.setdefault("retry", False)
    kwargs.setdefault("circuit_breaker", False)
    return GeminiConnector(api_key=KEY, **kwargs)


def _body(model: str | None = None, messages: Any = "hi", stream: bool = False, **options: Any) -> Any:
    conn = _conn()
    return conn.build_chat_request(conn.prepare_chat(model, messages, options, stream=stream))


def test_request_shape_system_config_tools_thinking() -> None:
    wire = _body("gemini-2.5-flash", [{"role": "system", "content": "Be brief."},
                                      {"role": "developer", "content": "No emoji."},
                                      {"role": "user", "content": "Weather?"}],
                 temperature=0.2, top_p=0.9, top_k=20, max_tokens=64, stop=["END"], seed=7,
                 tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_weather"}},
                 reasoning_effort="low", response_format={"type": "json_object"})
    assert (wire.method, wire.path, wire.params) == ("POST", "/models/gemini-2.5-flash:generateContent", None)
    assert wire.json == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "No emoji."}], "role": "user"},
        "contents": [{"role": "user", "parts": [{"text": "Weather?"}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather for a city.",
                                             "parametersJsonSchema": TOOLS[0]["function"]["parameters"]}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {"temperature": 0.2, "topP": 0.9, "topK": 20, "maxOutputTokens": 64,
                             "stopSequences": ["END"], "seed": 7, "responseMimeType": "application/json",
                             "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}},
    }


@pytest.mark.parametrize(("model", "effort", "config"), [
    ("gemini-2.5-pro", "none", {"thinkingBudget": 0}),
    ("gemini-3-pro-preview", "high", {"thinkingLevel": "HIGH", "includeThoughts": True}),
    ("gemini-3-flash-preview", "none", {"thinkingLevel": "MINIMAL"}),
])
def test_thinking_config(model: str, effort: str, config: dict[str, Any]) -> None:
    assert _body(model, reasoning_effort=effort).json["generationConfig"]["thinkingConfig"] == config


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}), ("required", {"mode": "ANY"}), ("none", {"mode": "NONE"})])
def test_tool_choice_modes(choice: str, config: dict[str, Any]) -> None:
    assert _body(tools=TOOLS, tool_choice=choice).json["toolConfig"] == {"functionCallingConfig": config}


def test_json_schema_and_stream_path() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    wire = _body("gemini-2.5-flash", stream=True,
                 response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert (wire.path, wire.params) == ("/models/gemini-2.5-flash:streamGenerateContent", {"alt": "sse"})
    assert wire.json["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_parts_images_documents_and_cache_control_dropped() -> None:
    content = [{"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
               {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "r.pdf"}},
               {"type": "file", "file": {"file_id": "files/abc123"}}]
    parts = _body(messages=[{"role": "user", "content": content}]).json["contents"][0]["parts"]
    assert parts == [{"text": "look"},
                     {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                     {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
                     {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                     {"fileData": {"fileUri": "files/abc123"}}]


def test_function_call_round_trip_request() -> None:
    call = ToolCall(id="call_0_x", name="get_weather", arguments={"city": "Paris"})
    messages = [{"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_0_x", "content": '{"temp": 18}'},
                {"role": "tool", "tool_call_id": "call_0_x", "content": "sunny"}]
    assert _body(messages=messages, tools=TOOLS).json["contents"] == [
        {"role": "user", "parts": [{"text": "Weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 18}}},
                                   {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]},
    ]


def test_tool_result_without_call_is_refused_before_io() -> None:
    with pytest.raises(e.InvalidRequestError, match="function's name"):
        _body(messages=[{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "1"}])


def _parse(data: Any) -> Any:
    conn = _conn()
    return conn.parse_chat_response(data, conn.prepare_chat(None, "hi", {}, stream=False))


def test_parses_fixture_text_thoughts_usage() -> None:
    resp = _parse(json.loads((FIXTURES / "generate_content_thinking.json").read_text()))
    assert resp.content == "The sky is blue because of Rayleigh scattering."
    assert resp.reasoning == "Thinking about light."
    assert resp.finish_reason == "stop"
    assert resp.model == "gemini-2.5-flash"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.cache_read_tokens,
            resp.usage.reasoning_tokens) == (12, 30, 4, 20)


def test_parses_function_call_with_and_without_id_and_signature() -> None:
    data = json.loads((FIXTURES / "generate_content_function_call.json").read_text())
    first, second = _parse(data), _parse(data)
    assert first.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("get_weather", {"city": "Paris"}),
                                                                 ("get_time", {})]
    assert first.tool_calls[1].id == "fc-2"
    assert first.tool_calls[0].id == second.tool_calls[0].id  # synthesised, stable
    assert [b.signature for b in first.reasoning_blocks] == ["c2lnbmF0dXJl"]
    # The signature goes back on the first function call of the turn.
    body = _body(messages=[{"role": "user", "content": "hi"}, first.message], tools=TOOLS).json
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == "c2lnbmF0dXJl"


@pytest.mark.parametrize(("native", "finish"), [("MAX_TOKENS", "length"), ("RECITATION", "content_filter"),
                                                ("OTHER", "other"), ("MALFORMED_FUNCTION_CALL", "error")])
def test_finish_reasons(native: str, finish: str) -> None:
    data = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": native}]}
    assert _parse(data).finish_reason == finish


def test_blocked_prompt_is_content_filter_error() -> None:
    with pytest.raises(SafetyBlockError) as info:
        _parse(json.loads((FIXTURES / "prompt_blocked.json").read_text()))
    assert isinstance(info.value, e.ContentFilterError)
    assert info.value.categories == ["HARM_CATEGORY_DANGEROUS_CONTENT"]
    assert info.value.code == "SAFETY"


def test_safety_finish_is_content_filter_error() -> None:
    data = {"candidates": [{"finishReason": "SAFETY", "safetyRatings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True},
        {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}]}]}
    with pytest.raises(e.ContentFilterError, match="HARM_CATEGORY_HARASSMENT"):
        _parse(data)


@pytest.mark.parametrize("data", [{"candidates": [{"content": {"parts": [{"text": 3}]}, "finishReason": "STOP"}]},
                                  {"candidates": [{"content": {"parts": []}, "finishReason": "STOP"}]},
                                  {"candidates": []}, [1]])
def test_garbage_is_protocol_error(data: Any) -> None:
    with pytest.raises(e.ProtocolError):
        _parse(data)


@pytest.mark.parametrize(("status", "code", "cls"), [
    (400, "INVALID_ARGUMENT", e.InvalidRequestError), (403, "PERMISSION_DENIED", e.PermissionDeniedError),
    (429, "RESOURCE_EXHAUSTED", e.RateLimitError), (503, "UNAVAILABLE", e.ProviderError),
    (504, "DEADLINE_EXCEEDED", e.TimeoutError), (404, "NOT_FOUND", e.NotFoundError)])
def test_error_bodies(status: int, code: str, cls: type[Exception]) -> None:
    err = _conn().error_from_payload(gemini_error(status, "boom"), status=status)
    assert isinstance(err, cls)
    assert code in _conn().parse_error(status, json.dumps(gemini_error(status, "boom")).encode()).codes


def test_keys_from_env_in_sdk_order() -> None:
    both = GeminiConnector.from_env({"GEMINI_API_KEY": "k-gemini", "GOOGLE_API_KEY": "k-google"})
    google = GeminiConnector.from_env({"GOOGLE_API_KEY": "k-google"})
    assert both.auth_headers() == {"x-goog-api-key": "k-gemini"}
    assert google.auth_headers() == {"x-goog-api-key": "k-google"}
    with pytest.raises(e.ConfigurationError):
        GeminiConnector.from_env({})


@pytest.mark.anyio
async def test_fake_server_stream_tools_models_embeddings() -> None:
    fake = GeminiFake()
    with FakeServer(fake) as server:
        async with _conn(base_url=server.url + "/v1beta") as conn:
            stream = await conn.generate_chat_stream("gemini-2.5-flash", "hi").collect()
            called = await conn.generate_chat("gemini-2.5-flash", "hi", tools=TOOLS)
            models = await conn.list_models()
            emb = await conn.generate_embedding(None, ["a", "b"], dimensions=8)
            fake.replies.append(Reply.json(gemini_error(429, "Quota exceeded"), 429))
            with pytest.raises(e.RateLimitError):
                await conn.generate_chat(None, "hi")
    assert stream.content == "Hello from the fake provider."
    assert (stream.usage.input_tokens, stream.usage.output_tokens) == (7, 3)
    assert called.tool_calls[0].name == "get_weather"
    assert [m.id for m in models] == ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"]
    assert len(emb.embeddings) == 2
    stream_request = server.requests[0]
    assert stream_request.path.endswith(":streamGenerateContent")
    assert stream_request.query.get("alt") == "sse"
    assert stream_request.headers["x-goog-api-key"] == KEY
    assert [r.query.get("pageToken") for r in server.requests[2:4]] == [None, "2"]
    assert server.requests[4].json()["requests"][0]["outputDimensionality"] == 8


# -- parity with google-genai 3.6.1 (captures made by tests/fixtures/gemini/sdk_requests/capture.py) --------

SDK = FIXTURES / "sdk_requests" / "google-genai-3.6.1"
PARAMS = {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
          "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
                                            "parameters": PARAMS}}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}
SYSTEM_USER = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]
HELLO = [{"role": "user", "content": "Hello"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
ROUND_TRIP = [{"role": "user", "content": "Weather in Paris?"},
              {"role": "assistant", "content": None,
               "tool_calls": [ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})]},
              {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": 21}'}]
SDK_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "system_user": (SYSTEM_USER, {}),
    "sampling_all": (SYSTEM_USER, {"temperature": 0.2, "top_p": 0.9, "top_k": 20, "max_tokens": 64,
                                   "stop": ["END"], "seed": 42}),
    "json_mode": (HELLO, {"response_format": {"type": "json_object"}}),
    "json_schema": (HELLO, {"response_format": {"type": "json_schema",
                                                "json_schema": {"name": "p", "schema": SCHEMA}}}),
    "thinking_budget": (HELLO, {"reasoning_effort": "low"}),
    "one_tool_forced": ([{"role": "user", "content": "Weather in Paris?"}],
                        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
    "tool_round_trip": (ROUND_TRIP, {"tools": [WEATHER]}),
    "image": ([{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}}]}], {}),
}


_USER_DATA = ("args", "response", "parameters_json_schema", "responseJsonSchema")


def _camel(value: Any) -> Any:
    """The SDK passes some keys through in snake_case (proto JSON takes both); compare in camelCase.

    Caller data (arguments, results, schemas) is left as it is."""
    if isinstance(value, dict):
        return {k.split("_")[0] + "".join(w.title() for w in k.split("_")[1:]):
                v if k in _USER_DATA else _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _sdk_body(case: str) -> tuple[dict[str, Any], str]:
    record = json.loads((SDK / f"{case}.json").read_text())
    body = _camel(record["body"])
    if body.get("generationConfig") == {}:  # the SDK always sends the object; we leave it out when empty
        del body["generationConfig"]
    if "topK" in body.get("generationConfig", {}):  # a float in the SDK's schema
        body["generationConfig"]["topK"] = int(body["generationConfig"]["topK"])
    return body, record["path"].split("/models/", 1)[1]


@pytest.mark.parametrize("case", sorted(SDK_CASES))
def test_requests_match_google_genai(case: str) -> None:
    messages, options = SDK_CASES[case]
    expected, endpoint = _sdk_body(case)
    wire = _body("gemini-2.5-flash", messages, **options)
    assert wire.path.split("/models/", 1)[1] == endpoint
    assert wire.json == expected


def test_stream_and_embedding_requests_match_google_genai() -> None:
    stream, endpoint = _sdk_body("stream")
    wire = _body("gemini-2.5-flash", SYSTEM_USER, stream=True)
    assert (wire.path.split("/models/", 1)[1], wire.params, wire.json) == (endpoint, {"alt": "sse"}, stream)
    embed, endpoint = _sdk_body("embed_two")
    conn = _conn()
    ours = conn.build_embedding_request(conn.prepare_embedding("gemini-embedding-001", ["first text", "second text"],
                                                               {"dimensions": 256}))
    assert (ours.path.split("/models/", 1)[1], ours.json) == (endpoint, embed)


def test_sdk_captures_are_all_checked() -> None:
    assert {p.stem for p in SDK.glob("*.json")} == {*SDK_CASES, "stream", "embed_two", "thinking_level"}
    level, _ = _sdk_body("thinking_level")
    assert _body("gemini-3-pro-preview", HELLO, reasoning_effort="high").json == level
