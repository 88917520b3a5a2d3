"""Every request shape the OpenAI connector builds, validated against OpenAI's OpenAPI spec.

Bodies are built without I/O (``build_chat_request(prepare_chat(...))``) and checked against
``CreateChatCompletionRequest`` / ``CreateEmbeddingRequest`` from the official spec
(WIRE.md §6) with ``openapi_schema_validator``. The spec does not forbid unknown fields on
chat requests, so the top-level keys and each message's keys are also checked against the
properties the spec declares: a misspelt field fails here instead of at OpenAI. The replies of
the reference wire kit are validated against the response schemas, so the fakes the other
tests rely on speak real OpenAI.

Loading the 3 MB YAML takes ~0.7 s; the parsed spec is cached in pytest's cache directory,
keyed by the file's sha256 (~0.03 s to load from there).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import build_connector
from jsonschema import validators
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit
from llm_connectors.types import ToolCall

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "openai-openapi.yaml"
SPEC_URI = "urn:openai-openapi"

Validate = Callable[[str, Any], list[str]]


# -- loading the spec once per session ---------------------------------------------------------

def _load_spec(config: pytest.Config) -> tuple[dict[str, Any], str]:
    raw = SPEC_PATH.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
    cached = cache.mkdir("openai-openapi") / f"{digest}.pickle" if cache is not None else None
    if cached is not None and cached.exists():
        try:
            spec = pickle.loads(cached.read_bytes())  # our own file, written below
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            spec = None
        if isinstance(spec, dict):
            return spec, "pickle cache"
    spec = yaml.load(raw, Loader=yaml.CSafeLoader)
    if cached is not None:
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(cached)  # atomic: parallel sessions never read half a file
    return spec, "yaml"


@pytest.fixture(scope="session")
def spec(pytestconfig: pytest.Config) -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"OpenAI OpenAPI spec not found at {SPEC_PATH} (WIRE.md §6 says where it comes from)")
    started = time.perf_counter()
    data, source = _load_spec(pytestconfig)
    pytestconfig.stash[_LOAD_TIME] = (time.perf_counter() - started, source)
    return data


_LOAD_TIME = pytest.StashKey[tuple[float, str]]()


def _nullable(keyword: Callable[..., Iterator[ValidationError]]) -> Callable[..., Iterator[ValidationError]]:
    def check(validator: Any, value: Any, instance: Any,
              schema: Mapping[str, Any]) -> Iterator[ValidationError]:
        if instance is None and schema.get("nullable") is True:
            return iter(())
        return keyword(validator, value, instance, schema)

    return check


# The spec says OpenAPI 3.1 yet keeps 111 OpenAPI 3.0 `nullable: true` flags (stream chunks'
# `finish_reason`, for one). 3.1 dropped the keyword, so a plain 3.1 validator rejects the nulls
# OpenAI really sends; honour it on `type` and `enum`, where 3.0 defined it.
_Validator = validators.extend(OAS31Validator, {
    "type": _nullable(OAS31Validator.VALIDATORS["type"]),
    "enum": _nullable(OAS31Validator.VALIDATORS["enum"]),
})


@pytest.fixture(scope="session")
def validate(spec: dict[str, Any]) -> Validate:
    """``validate(schema_name, instance)`` -> the validation errors as readable strings."""
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    by_name: dict[str, Any] = {}

    def run(name: str, instance: Any) -> list[str]:
        validator = by_name.get(name)
        if validator is None:
            assert name in spec["components"]["schemas"], f"no schema {name} in the spec"
            validator = by_name[name] = _Validator(
                {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, registry=registry)
        return [_describe(err) for err in validator.iter_errors(instance)]

    return run


def _describe(err: ValidationError) -> str:
    where = "/".join(str(p) for p in err.absolute_path) or "<body>"
    causes = sorted({c.message[:120] for c in err.context or ()})[:4]
    return f"{where}: {err.message[:200]}" + (f" (tried: {'; '.join(causes)})" if causes else "")


def _properties(spec: dict[str, Any], schema: Mapping[str, Any], depth: int = 0) -> set[str]:
    """Property names a schema declares, following ``$ref`` and ``allOf``."""
    assert depth < 20, "runaway $ref chain"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _properties(spec, spec["components"]["schemas"][ref.rpartition("/")[2]], depth + 1)
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", ()):
        names |= _properties(spec, part, depth + 1)
    return names


_MESSAGE_SCHEMAS = {role: f"ChatCompletionRequest{role.capitalize()}Message"
                    for role in ("system", "user", "assistant", "tool", "developer")}


def _undeclared(spec: dict[str, Any], body: Mapping[str, Any]) -> list[str]:
    schemas = spec["components"]["schemas"]
    problems = [f"top-level {k!r}" for k in body
                if k not in _properties(spec, schemas["CreateChatCompletionRequest"])]
    for index, message in enumerate(body.get("messages", ())):
        declared = _properties(spec, schemas[_MESSAGE_SCHEMAS[message["role"]]])
        problems += [f"messages[{index}] ({message['role']}) {k!r}" for k in message if k not in declared]
    return problems


def _check_chat(spec: dict[str, Any], validate: Validate, body: Mapping[str, Any]) -> None:
    errors = validate("CreateChatCompletionRequest", body)
    assert not errors, "body does not match CreateChatCompletionRequest:\n" + "\n".join(errors) \
        + "\n" + json.dumps(body, indent=1)[:2000]
    undeclared = _undeclared(spec, body)
    assert not undeclared, f"fields the spec does not declare: {undeclared}"


# -- building bodies without I/O ---------------------------------------------------------------

@pytest.fixture(scope="module")
def connector() -> OpenAIConnector:
    # Never sends: build_* and prepare_* do no I/O, so no client is ever created.
    return build_connector("openai")


def chat_body(conn: OpenAIConnector, messages: Any = "Hello", *, stream: bool = False,
              model: str = "gpt-5.4-mini", **options: Any) -> dict[str, Any]:
    request = conn.prepare_chat(model, messages, options, stream=stream)
    built = conn.build_chat_request(request)
    assert (built.method, built.path) == ("POST", "/chat/completions")
    assert isinstance(built.json, dict)
    return built.json


_WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
_STRICT = {"type": "function", "function": {
    "name": "lookup", "strict": True,
    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"],
                   "additionalProperties": False}}}
_SCHEMA = {"type": "json_schema", "json_schema": {
    "name": "answer", "description": "The answer.", "strict": True,
    "schema": {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"],
               "additionalProperties": False}}}
_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGA"
        "hKmMIQAAAABJRU5ErkJggg==")
_ROUND_TRIP = [
    {"role": "system", "content": "Use tools."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "unknown city"}]},
    {"role": "assistant", "content": "It is 18C.", "tool_calls": [
        ToolCall(id="call_3", name="get_weather", arguments={"city": "Lyon"})]},
    {"role": "tool", "tool_call_id": "call_3", "content": "20C"},
]

#: (case id, messages, options). Every option OpenAI declares appears at least once (checked).
CHAT_CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("minimal", "Hello", {}),
    ("system-user-assistant", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                               {"role": "assistant", "content": "Hello!"},
                               {"role": "user", "content": "Bye", "name": "alice"}], {}),
    ("temperature", "Hi", {"temperature": 1.3}),
    ("temperature-bounds", "Hi", {"temperature": 0, "top_p": 1}),
    ("top_p", "Hi", {"top_p": 0.25}),
    ("max_tokens", "Hi", {"max_tokens": 256}),
    ("stop-string", "Hi", {"stop": "END"}),
    ("stop-four", "Hi", {"stop": ["a", "b", "c", "d"]}),
    ("seed", "Hi", {"seed": 42}),
    ("tools", "Hi", {"tools": [_WEATHER, _STRICT]}),
    ("tools-flat-shorthand", "Hi", {"tools": [{"name": "ping", "description": "Ping."}]}),
    ("tool_choice-auto", "Hi", {"tools": [_WEATHER], "tool_choice": "auto"}),
    ("tool_choice-none", "Hi", {"tools": [_WEATHER], "tool_choice": "none"}),
    ("tool_choice-required", "Hi", {"tools": [_WEATHER], "tool_choice": "required"}),
    ("tool_choice-any-alias", "Hi", {"tools": [_WEATHER], "tool_choice": "any"}),
    ("tool_choice-named", "Hi", {"tools": [_WEATHER], "tool_choice": {"type": "function",
                                                                      "function": {"name": "get_weather"}}}),
    ("tool_choice-named-short", "Hi", {"tools": [_WEATHER], "tool_choice": {"name": "get_weather"}}),
    ("parallel_tool_calls", "Hi", {"tools": [_WEATHER], "parallel_tool_calls": False}),
    ("response_format-text", "Hi", {"response_format": {"type": "text"}}),
    ("response_format-json_object", "Reply in JSON", {"response_format": {"type": "json_object"}}),
    ("response_format-json_schema", "Hi", {"response_format": _SCHEMA}),
    ("frequency_presence_penalty", "Hi", {"frequency_penalty": -2.0, "presence_penalty": 1.5}),
    *[(f"reasoning_effort-{v}", "Hi", {"reasoning_effort": v})
      for v in ("none", "minimal", "low", "medium", "high", "xhigh", "max")],
    ("logprobs", "Hi", {"logprobs": True, "top_logprobs": 5}),
    ("logit_bias", "Hi", {"logit_bias": {"50256": -100}}),
    *[(f"service_tier-{v}", "Hi", {"service_tier": v})
      for v in ("auto", "default", "flex", "scale", "priority", "fast")],
    *[(f"verbosity-{v}", "Hi", {"verbosity": v}) for v in ("low", "medium", "high")],
    ("prompt-cache", "Hi", {"prompt_cache_key": "k1", "prompt_cache_options": {"mode": "explicit", "ttl": "30m"},
                            "prompt_cache_retention": "24h"}),
    ("developer-role", [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}], {}),
    ("documents", [{"role": "user", "content": [
        {"type": "text", "text": "Summarise.", "cache_control": {"type": "ephemeral"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK", "filename": "a.pdf"}},
        {"type": "file", "file": {"file_id": "file-abc123"}}]}], {}),
    ("store-metadata", "Hi", {"store": True, "metadata": {"run": "spec-test"}}),
    ("identifiers", "Hi", {"safety_identifier": "user-123", "prompt_cache_key": "k1", "user": "legacy"}),
    ("tool-round-trip", _ROUND_TRIP, {"tools": [_WEATHER]}),
    ("vision-http", [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}}]}], {}),
    ("vision-data-url", [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": _PNG}}, "and this text part"]}], {}),
    ("vision-string-shorthand", [{"role": "user", "content": [
        {"type": "image_url", "image_url": "https://example.com/dog.jpg"}]}], {}),
    ("everything", _ROUND_TRIP, {
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "stop": ["\n\n"], "seed": 7,
        "tools": [_WEATHER], "tool_choice": "auto", "response_format": {"type": "json_object"},
        "frequency_penalty": 0.1, "presence_penalty": 0.1, "parallel_tool_calls": True,
        "reasoning_effort": "low", "logprobs": False, "service_tier": "auto", "store": False,
        "metadata": {"a": "b"}, "safety_identifier": "s", "prompt_cache_key": "p"}),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("messages", "options"), [pytest.param(m, o, id=i) for i, m, o in CHAT_CASES])
def test_chat_request_matches_spec(spec: dict[str, Any], validate: Validate, connector: OpenAIConnector,
                                   messages: Any, options: dict[str, Any], stream: bool) -> None:
    body = chat_body(connector, messages, stream=stream, **options)
    _check_chat(spec, validate, body)
    if stream:
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
    else:
        assert "stream" not in body
        assert "stream_options" not in body  # "only set this when you set stream: true"


def test_every_declared_option_is_covered() -> None:
    covered = {name for _, _, options in CHAT_CASES for name in options}
    # reasoning_summary exists only on the Responses API (test_openai_responses_spec.py covers it)
    declared = {p.name for p in OpenAIConnector.definition.parameters} - {"reasoning_summary"}
    assert declared <= covered, f"options without a spec case: {sorted(declared - covered)}"


def test_option_mapping(connector: OpenAIConnector) -> None:
    body = chat_body(connector, max_tokens=100, stop="END", tool_choice="any", tools=[_WEATHER])
    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body  # deprecated, and rejected by reasoning models (WIRE.md §2.2)
    assert body["stop"] == ["END"]
    assert body["tool_choice"] == "required"
    image = chat_body(connector, [{"role": "user", "content": [
        {"type": "image_url", "image_url": "https://example.com/a.png"}]}])
    assert image["messages"][0]["content"][0]["image_url"] == {"url": "https://example.com/a.png"}


def test_tool_message_name_is_not_sent(spec: dict[str, Any], validate: Validate, connector: OpenAIConnector) -> None:
    """ChatCompletionRequestToolMessage declares no ``name``: the dialect leaves it out for OpenAI."""
    named = {"role": "tool", "tool_call_id": "call_1", "content": "x", "name": "get_weather"}
    messages = [*_ROUND_TRIP[:3], named]
    body = chat_body(connector, messages)
    assert "name" not in body["messages"][-1]
    _check_chat(spec, validate, body)


# -- embeddings --------------------------------------------------------------------------------

@pytest.mark.parametrize(("inputs", "options"), [
    pytest.param("Text to embed", {}, id="str"),
    pytest.param(["one", "two", "three"], {}, id="list"),
    pytest.param(["one"], {"dimensions": 256}, id="dimensions"),
])
def test_embedding_request_matches_spec(validate: Validate, connector: OpenAIConnector, inputs: Any,
                                        options: dict[str, Any]) -> None:
    request = connector.prepare_embedding("text-embedding-3-small", inputs, options)
    built = connector.build_embedding_request(request)
    assert (built.method, built.path) == ("POST", "/embeddings")
    body = built.json
    errors = validate("CreateEmbeddingRequest", body)  # additionalProperties: false in the spec
    assert not errors, "\n".join(errors)
    assert body["encoding_format"] == "base64"  # half the bytes; decoded locally (WIRE.md §2.5)
    assert body["input"] == ([inputs] if isinstance(inputs, str) else inputs)


# -- the validator really rejects wrong bodies -------------------------------------------------

@pytest.mark.parametrize(("schema", "mutate"), [
    pytest.param("CreateChatCompletionRequest", lambda b: b["messages"][0].update(
        content=[{"type": "image_url", "image_url": "https://example.com/a.png"}]),
        id="image_url-bare-string"),
    pytest.param("CreateChatCompletionRequest", lambda b: b.update(tool_choice="sometimes"),
                 id="unknown-tool_choice"),
    pytest.param("CreateChatCompletionRequest", lambda b: b.update(stop=["1", "2", "3", "4", "5"]),
                 id="five-stop-sequences"),
    pytest.param("CreateChatCompletionRequest", lambda b: b.update(temperature=2.5),
                 id="temperature-above-2"),
    pytest.param("CreateChatCompletionRequest", lambda b: b.update(messages=[]), id="no-messages"),
    pytest.param("CreateChatCompletionRequest",
                 lambda b: b["messages"].append({"role": "tool", "content": "x"}),
                 id="tool-message-without-id"),
    pytest.param("CreateChatCompletionRequest", lambda b: b.update(response_format={"type": "yaml"}),
                 id="unknown-response_format"),
    pytest.param("CreateEmbeddingRequest", lambda b: b.update(encoding="float"),
                 id="embedding-unknown-field"),
    pytest.param("CreateEmbeddingRequest", lambda b: b.update(dimensions=0), id="embedding-zero-dimensions"),
])
def test_wrong_bodies_fail(validate: Validate, connector: OpenAIConnector, schema: str,
                           mutate: Callable[[dict[str, Any]], None]) -> None:
    if schema == "CreateEmbeddingRequest":
        request = connector.prepare_embedding("text-embedding-3-small", "x", {})
        body = connector.build_embedding_request(request).json
    else:
        body = chat_body(connector)
    assert validate(schema, body) == []  # valid before the mutation...
    mutate(body)
    assert validate(schema, body), f"the validator accepted a wrong body: {body}"  # ...and not after


def test_undeclared_fields_fail(spec: dict[str, Any], validate: Validate, connector: OpenAIConnector) -> None:
    body = chat_body(connector)
    body["max_completion_token"] = 5  # a typo the schema alone would let through
    body["messages"][0]["contents"] = "x"
    assert _undeclared(spec, body) == ["top-level 'max_completion_token'", "messages[0] (user) 'contents'"]


# -- the reference kit's replies are real OpenAI -----------------------------------------------

_CALL = ToolCall(id="call_9", name="get_weather", arguments={"city": "Paris"})


def _sse_objects(chunks: Any) -> list[Any]:
    out = []
    for chunk in chunks:
        assert isinstance(chunk, bytes)
        data = chunk.decode().removeprefix("data: ").strip()
        if data != "[DONE]":
            out.append(json.loads(data))
    return out


def test_kit_replies_match_response_schemas(validate: Validate) -> None:
    kit = OpenAIWireKit()
    for reply in (kit.chat_reply("Hi"), kit.chat_reply("", tool_calls=[_CALL], finish="tool_calls"),
                  kit.chat_reply("cut", finish="length")):
        assert not validate("CreateChatCompletionResponse", json.loads(reply.body))
    for deltas, calls in ((["He", "llo"], []), (["x"], [_CALL])):
        for event in _sse_objects(kit.stream_reply(deltas, tool_calls=calls).chunks):
            assert not validate("CreateChatCompletionStreamResponse", event), event
    assert not validate("CreateEmbeddingResponse", json.loads(kit.embedding_reply([[0.1, 0.2]]).body))
    assert not validate("ListModelsResponse", json.loads(kit.models_reply(["a", "b"]).body))
    for status in (400, 401, 403, 404, 429, 500):
        assert not validate("ErrorResponse", json.loads(kit.error_reply(status, "boom").body))


def test_fake_answers_match_response_schemas(validate: Validate) -> None:
    fake = OpenAIFake()
    assert not validate("CreateChatCompletionResponse", json.loads(fake.chat({"model": "m"}).body))
    stream = fake.chat({"model": "m", "stream": True, "stream_options": {"include_usage": True}})
    for event in _sse_objects(stream.chunks):
        assert not validate("CreateChatCompletionStreamResponse", event), event
    # Floats only: the spec types `embedding` as an array and does not model the base64 answer
    # that `encoding_format: base64` gets (WIRE.md §2.5).
    embeddings = fake.embeddings({"model": "e", "input": ["a", "b"]})
    assert not validate("CreateEmbeddingResponse", json.loads(embeddings.body))


def test_spec_is_the_pinned_version(spec: dict[str, Any], pytestconfig: pytest.Config) -> None:
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["version"] == "2.3.0", "a new spec: update WIRE.md §6 and re-check the mapping"
    assert {"CreateChatCompletionRequest", "CreateEmbeddingRequest"} <= set(spec["components"]["schemas"])
    seconds, source = pytestconfig.stash[_LOAD_TIME]
    assert seconds < 30, f"loading the spec from {source} took {seconds:.1f}s"
