"""Every request MistralConnector can build is valid against Mistral's official OpenAPI spec.

The spec's request schemas set ``additionalProperties: false`` (the server answers 422
``extra_forbidden``), so a field the real API would reject fails here, before any user sees it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import build_connector
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from llm_connectors.connectors.mistral import MISTRAL
from llm_connectors.types import ToolCall

pytestmark = pytest.mark.anyio

SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "mistral-openapi.yaml"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "mistral"
SPEC_URI = "urn:mistral-openapi"

TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
BARE_TOOL = {"name": "ping"}  # the flat shorthand, no description or parameters
IMAGE_URL = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}}
IMAGE_DATA = {"type": "image_url", "image_url": "data:image/png;base64,iVBORw0KGgo="}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
FOREIGN = ToolCall(id="toolu_01A09q90qw90lq917835lq9", name="get_weather", arguments={"city": "Paris"})

CONVERSATIONS: dict[str, list[Any]] = {
    "user": [{"role": "user", "content": "Hello"}],
    "system_user_named": [{"role": "system", "content": "Be terse.", "name": "rules"},
                          {"role": "user", "content": "Hello", "name": "ann"}],
    "system_parts": [{"role": "system", "content": [{"type": "text", "text": "Be"}, {"type": "text", "text": "terse"}]},
                     {"role": "user", "content": "Hello"}],
    "images": [{"role": "user", "content": ["Describe both.", IMAGE_URL, IMAGE_DATA]}],
    "multi_turn": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello.", "name": "bot"},
                   {"role": "user", "content": "Bye"}],
    "tool_round_trip_foreign_ids": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            FOREIGN, {"id": "call_abc", "type": "function", "function": {"name": "get_weather",
                                                                       "arguments": '{"city": "Lyon"}'}}]},
        {"role": "tool", "tool_call_id": FOREIGN.id, "content": "18C"},
        {"role": "tool", "tool_call_id": "call_abc", "name": "get_weather",
         "content": [{"type": "text", "text": "20C"}]},
    ],
    "tool_result_with_image": [
        {"role": "user", "content": "Show me"},
        {"role": "assistant", "tool_calls": [{"id": "D681PevKs", "name": "get_weather", "arguments": {}}]},
        {"role": "tool", "tool_call_id": "D681PevKs", "content": [{"type": "text", "text": "see"}, IMAGE_URL]},
    ],
    "assistant_text_and_calls": [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "Calling.", "tool_calls": [FOREIGN]},
        {"role": "tool", "tool_call_id": FOREIGN.id, "content": "ok"},
    ],
}

# A sample value for every declared parameter (a test checks none is missing).
OPTION_SAMPLES: dict[str, list[Any]] = {
    "temperature": [0, 0.7, 1.5],
    "top_p": [0.01, 1],
    "max_tokens": [1, 4096],
    "stop": ["END", ["a", "b", "c", "d", "e"]],
    "seed": [0, 42],
    "tools": [[TOOL], [TOOL, BARE_TOOL]],
    "tool_choice": ["auto", "none", "required", "any", {"type": "function", "function": {"name": "get_weather"}}],
    "response_format": [{"type": "text"}, {"type": "json_object"},
                        {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}},
                        {"type": "json_schema", "json_schema": {"schema": SCHEMA, "strict": True,
                                                                "description": "An answer"}}],
    "safe_prompt": [True, False],
    "frequency_penalty": [-2, 0.5, 2],
    "presence_penalty": [-2, 0.25, 2],
    "parallel_tool_calls": [True, False],
    "prompt_mode": ["reasoning"],
    "reasoning_effort": ["none", "minimal", "low", "medium", "high", "xhigh"],
    "prediction": [{"type": "content", "content": "expected"}, {"content": ""}],
    "service_tier": ["auto", "standard_only"],
    "prompt_cache_key": ["session-42"],
    "metadata": [{"user": "ann", "n": 1}],
}
NEEDS_TOOLS = {"tool_choice"}


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.skip(f"Mistral OpenAPI spec not found at {SPEC} (it lives in the shared/specs folder "
                    "next to the repository)")
    with SPEC.open("rb") as handle:
        return yaml.load(handle, Loader=yaml.CSafeLoader)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def registry(spec: dict[str, Any]) -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(spec, default_specification=DRAFT202012)
    with_spec: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return with_spec


def errors(registry: Registry[Any], schema: str, instance: Any) -> list[str]:
    validator = OAS31Validator({"$ref": f"{SPEC_URI}#/components/schemas/{schema}"}, registry=registry,
                               format_checker=oas31_format_checker)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message[:300]}"
            for e in validator.iter_errors(instance)]


def chat_body(messages: Any = "Hello", stream: bool = False, **options: Any) -> dict[str, Any]:
    conn = build_connector("mistral")
    body = conn.build_chat_request(conn.prepare_chat(None, messages, options, stream=stream)).json
    assert isinstance(body, dict)
    return body


def embedding_body(inputs: Any, **options: Any) -> dict[str, Any]:
    conn = build_connector("mistral")
    body = conn.build_embedding_request(conn.prepare_embedding(None, inputs, options)).json
    assert isinstance(body, dict)
    return body


# -- what we send is valid -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_conversations(registry: Registry[Any], name: str, stream: bool) -> None:
    assert errors(registry, "ChatCompletionRequest", chat_body(CONVERSATIONS[name], stream=stream)) == []


@pytest.mark.parametrize(("option", "value"), [(name, value) for name, values in OPTION_SAMPLES.items()
                                               for value in values])
def test_each_option(registry: Registry[Any], option: str, value: Any) -> None:
    options = {option: value}
    if option in NEEDS_TOOLS:
        options["tools"] = [TOOL]
    assert errors(registry, "ChatCompletionRequest", chat_body(**options)) == []


def test_every_declared_parameter_is_covered() -> None:
    assert {p.name for p in MISTRAL.parameters} == set(OPTION_SAMPLES)


def test_everything_at_once(registry: Registry[Any]) -> None:
    options = {name: values[-1] for name, values in OPTION_SAMPLES.items()}
    body = chat_body(CONVERSATIONS["tool_round_trip_foreign_ids"], stream=True, **options)
    assert errors(registry, "ChatCompletionRequest", body) == []


@pytest.mark.parametrize("inputs", ["one text", ["first", "second"]])
@pytest.mark.parametrize("options", [{}, {"dimensions": 256}])
def test_embeddings(registry: Registry[Any], inputs: Any, options: dict[str, Any]) -> None:
    assert errors(registry, "EmbeddingRequest", embedding_body(inputs, **options)) == []


@pytest.mark.parametrize("path", sorted((FIXTURES / "sdk_requests").glob("*/*.json")), ids=lambda p: p.stem)
def test_official_sdk_bodies_are_valid_too(registry: Registry[Any], path: Path) -> None:
    # A check of the checker: the bodies the official SDK sends must pass it as well.
    request = json.loads(path.read_text())
    schema = "EmbeddingRequest" if request["path"].endswith("/embeddings") else "ChatCompletionRequest"
    assert [e for e in errors(registry, schema, request["body"]) if e not in NEWER_THAN_SPEC] == []


#: What mistralai 3.7.0 sends that the spec copy (2026-08-13, shared/specs/SOURCES.md) predates.
NEWER_THAN_SPEC = frozenset({"reasoning_effort: 'max' is not valid under any of the given schemas"})


# -- what the real API rejects is caught ---------------------------------------------------------


def test_request_schemas_are_strict(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for name in ("ChatCompletionRequest", "EmbeddingRequest", "SystemMessage", "UserMessage",
                 "AssistantMessage", "ToolMessage", "ToolCall", "FunctionCall", "Tool", "Function",
                 "ImageURLChunk", "ImageURL", "TextChunk", "ResponseFormat", "JsonSchema", "Prediction"):
        assert schemas[name].get("additionalProperties") is False, name


@pytest.mark.parametrize(("change", "where"), [
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"max_completion_tokens": 10}, "max_completion_tokens"),
    ({"store": True}, "store"),
    ({"seed": 1}, "seed"),
    ({"user": "ann"}, "user"),
    ({"logit_bias": {}}, "logit_bias"),
    ({"top_p": 0}, "top_p"),
    ({"temperature": 2}, "temperature"),
    ({"reasoning_effort": "max"}, "reasoning_effort"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"prediction": {"type": "content", "content": "x", "extra": 1}}, "prediction"),
])
def test_spec_rejects_what_mistral_rejects(registry: Registry[Any], change: dict[str, Any], where: str) -> None:
    body = {**chat_body(), **change}
    found = errors(registry, "ChatCompletionRequest", body)
    assert found and any(where in e for e in found), found


@pytest.mark.parametrize("message", [
    {"role": "user", "content": "Hi", "name": "ann"},
    {"role": "system", "content": [IMAGE_URL]},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x", "size": "l"}}]},
    {"role": "assistant", "content": "x", "reasoning": []},
])
def test_spec_rejects_messages_mistral_rejects(registry: Registry[Any], message: dict[str, Any]) -> None:
    assert errors(registry, "ChatCompletionRequest", {**chat_body(), "messages": [message]})


def test_openai_shaped_bodies_would_be_rejected(registry: Registry[Any]) -> None:
    conn = build_connector("openai")
    body = conn.build_chat_request(conn.prepare_chat("mistral-small-latest", "Hi", {"max_tokens": 5, "seed": 1},
                                                     stream=True)).json
    found = " ".join(errors(registry, "ChatCompletionRequest", body))
    for field in ("stream_options", "max_completion_tokens", "'seed'"):
        assert field in found


def test_embedding_schema_is_strict(registry: Registry[Any]) -> None:
    assert errors(registry, "EmbeddingRequest", {**embedding_body("x"), "dimensions": 8})


# -- our fixtures look like what the spec says Mistral sends ---------------------------------------


@pytest.mark.parametrize("name", ["chat_stream.sse", "chat_stream_tools.sse", "chat_stream_tools_split.sse",
                                  "chat_stream_thinking.sse"])
def test_stream_fixture_chunks(registry: Registry[Any], name: str) -> None:
    datas = [line[6:] for line in (FIXTURES / name).read_text().splitlines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    for data in datas[:-1]:
        assert errors(registry, "CompletionChunk", json.loads(data)) == []


@pytest.mark.parametrize("name", ["chat.json", "chat_tool_calls.json", "chat_thinking.json"])
def test_chat_fixture_choices(registry: Registry[Any], name: str) -> None:
    data = json.loads((FIXTURES / name).read_text())
    assert errors(registry, "UsageInfo", data["usage"]) == []
    for choice in data["choices"]:
        assert errors(registry, "ChatCompletionChoice", choice) == []


@pytest.mark.parametrize(("name", "schema"), [("models.json", "ModelList"), ("embeddings.json", "EmbeddingResponse")])
def test_other_fixtures(registry: Registry[Any], name: str, schema: str) -> None:
    assert errors(registry, schema, json.loads((FIXTURES / name).read_text())) == []
