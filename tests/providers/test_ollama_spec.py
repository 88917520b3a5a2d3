"""Every request shape the Ollama connector builds, validated against Ollama's official OpenAPI spec.

The spec is ``docs/openapi.yaml`` from ollama/ollama, copied to ``shared/specs/`` (see
``SOURCES.md`` there). Responses in our fixtures and from ``OllamaFake`` are validated too, so
the tests parse what the server really sends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import respx
import yaml
from builders import build_connector
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from llm_connectors.testing.ollama_wire import OllamaFake
from llm_connectors.testing.server import Request

pytestmark = pytest.mark.anyio

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "ollama-openapi.yaml"
SPEC_URI = "urn:ollama-openapi"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "ollama"
BASE = "http://localhost:11434"  # where the connector sends by default: respx answers there
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather.", "strict": True,
                                         "parameters": {"type": "object",
                                                        "properties": {"city": {"type": "string"}}}}}
BARE_TOOL = {"type": "function", "function": {"name": "now"}}
HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Look:"},
                                 {"type": "image_url",
                                  "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                                 {"type": "image_url", "image_url": "data:image/svg+xml,%3Csvg%2F%3E"}]},
    {"role": "assistant", "content": None, "reasoning": [{"text": "They want weather."}],
     "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
                    {"id": "c2", "name": "now", "arguments": {"tz": "UTC"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "21C"}]},
    {"role": "tool", "tool_call_id": "c2", "content": ""},
    {"role": "assistant", "content": "It is 21C."},
    {"role": "user", "content": "Thanks"},
]

# (label, call kwargs) for chat; every branch of build_chat_request is reached at least once.
CHAT_SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("minimal", {}),
    ("history", {"messages": HISTORY, "tools": [TOOL, BARE_TOOL], "tool_choice": "auto"}),
    ("all_options", {"temperature": 0.7, "top_p": 0.9, "max_tokens": 128, "stop": ["\n", "END"], "seed": 7,
                     "top_k": 40, "min_p": 0.05, "typical_p": 0.7, "num_ctx": 8192, "repeat_penalty": 1.1,
                     "repeat_last_n": 64, "presence_penalty": 0.1, "frequency_penalty": 0.2}),
    ("json_mode", {"response_format": {"type": "json_object"}}),
    ("json_schema", {"response_format": {"type": "json_schema", "json_schema": {
        "name": "p", "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}),
    ("text_format", {"response_format": {"type": "text"}}),
    ("keep_alive_string_think_bool", {"provider_options": {"ollama": {"keep_alive": "5m", "think": True}}}),
    ("keep_alive_number_think_level", {"provider_options": {"ollama": {"keep_alive": -1, "think": "max"}}}),
    ("extra_options_merge", {"temperature": 0.1, "extra": {"options": {"num_gpu": 1}}}),
]
EMBED_SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("one", {"input": "one text"}),
    ("many", {"input": ["a", "b", "c"]}),
    ("dimensions_truncate", {"input": ["a"], "dimensions": 64, "truncate": True}),
    ("keep_alive", {"input": ["a"], "provider_options": {"ollama": {"keep_alive": "10m"}}}),
]


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"Ollama OpenAPI spec not found at {SPEC_PATH} (it lives in the shared workspace)")
    with SPEC_PATH.open("rb") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=yaml.CSafeLoader)
    return loaded


@pytest.fixture(scope="session")
def validate(spec: dict[str, Any]) -> Callable[[str, Any], None]:
    """``validate(schema_name, instance)`` against ``#/components/schemas/<name>``, refs resolved."""
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
    validators: dict[str, OAS31Validator] = {}

    def check(name: str, instance: Any) -> None:
        assert name in spec["components"]["schemas"], name
        validator = validators.get(name)
        if validator is None:
            validator = validators[name] = OAS31Validator(
                {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, registry=registry,
                format_checker=oas31_format_checker)
        validator.validate(instance)

    return check


@contextmanager
def captured() -> Iterator[list[httpx.Request]]:
    """The requests a connector sends to Ollama's default address (respx), each answered briefly."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        if request.url.path == "/api/embed":
            return httpx.Response(200, json={"model": "m", "embeddings": [[0.0]] * len(body["input"])})
        line = {"model": "m", "message": {"role": "assistant", "content": "ok"}, "done": True,
                "done_reason": "stop"}
        return httpx.Response(200, content=json.dumps(line).encode() + b"\n")

    with respx.mock(base_url=BASE) as router:
        router.post(path__regex=r"^/api/(chat|embed)$").mock(side_effect=handle)
        yield seen


@pytest.mark.parametrize("stream", [False, True], ids=["json", "ndjson"])
@pytest.mark.parametrize(("label", "kwargs"), CHAT_SHAPES, ids=[s[0] for s in CHAT_SHAPES])
async def test_chat_requests_match_the_spec(validate: Callable[[str, Any], None], label: str,
                                            kwargs: dict[str, Any], stream: bool) -> None:
    kwargs = dict(kwargs)
    messages = kwargs.pop("messages", [{"role": "user", "content": "Hi"}])
    with captured() as seen:
        async with build_connector("ollama") as conn:
            if stream:
                await conn.generate_chat_stream(None, messages, **kwargs).collect()
            else:
                await conn.generate_chat(None, messages, **kwargs)
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/api/chat")
    body = json.loads(request.content)
    validate("ChatRequest", body)
    assert body["stream"] is stream


@pytest.mark.parametrize(("label", "kwargs"), EMBED_SHAPES, ids=[s[0] for s in EMBED_SHAPES])
async def test_embed_requests_match_the_spec(validate: Callable[[str, Any], None], label: str,
                                             kwargs: dict[str, Any]) -> None:
    kwargs = dict(kwargs)
    with captured() as seen:
        async with build_connector("ollama") as conn:
            await conn.generate_embedding(None, kwargs.pop("input"), **kwargs)
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/api/embed")
    validate("EmbedRequest", json.loads(request.content))


def test_the_validator_is_not_vacuous(validate: Callable[[str, Any], None]) -> None:
    good = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
    validate("ChatRequest", good)
    for bad in ({**good, "format": "yaml"},
                {**good, "messages": [{"role": "user"}]},
                {**good, "messages": [{"role": "robot", "content": "x"}]},
                {**good, "think": "extreme"},
                {"messages": good["messages"]}):
        with pytest.raises(jsonschema.ValidationError):
            validate("ChatRequest", bad)
    with pytest.raises(jsonschema.ValidationError):
        validate("EmbedRequest", {"model": "m", "input": [1, 2]})


# -- what we parse is what the spec says the server sends --------------------------------------

@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("chat_*.json")))
def test_chat_fixtures_match_the_spec(validate: Callable[[str, Any], None], name: str) -> None:
    validate("ChatResponse", json.loads((FIXTURES / name).read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("chat_*.ndjson")))
def test_stream_fixtures_match_the_spec(validate: Callable[[str, Any], None], name: str) -> None:
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if "error" in event:
            validate("ErrorResponse", event)
        elif name == "chat_missing_metrics.ndjson" and event["message"].get("images", []) is None:
            continue  # an old server's `"images": null`, kept on purpose to test tolerance
        else:
            validate("ChatStreamEvent", event)


@pytest.mark.parametrize(("name", "schema"), [
    ("embed.json", "EmbedResponse"), ("tags.json", "ListResponse"), ("version.json", "VersionResponse")])
def test_other_fixtures_match_the_spec(validate: Callable[[str, Any], None], name: str, schema: str) -> None:
    validate(schema, json.loads((FIXTURES / name).read_text(encoding="utf-8")))


def _fake(method: str, path: str, body: Any = None) -> Any:
    request = Request(method, path, {}, {}, json.dumps(body).encode() if body is not None else b"")
    reply = OllamaFake()(request)
    if reply.chunks is not None:
        return [json.loads(piece) for piece in reply.chunks if isinstance(piece, bytes)]
    return json.loads(reply.body)


def test_fake_answers_match_the_spec(validate: Callable[[str, Any], None]) -> None:
    chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}
    validate("ChatResponse", _fake("POST", "/api/chat", {**chat, "stream": False}))
    validate("ChatResponse", _fake("POST", "/api/chat", {**chat, "stream": False, "tools": [TOOL]}))
    for event in _fake("POST", "/api/chat", {**chat, "think": True}):  # `stream` absent: NDJSON
        validate("ChatStreamEvent", event)
    validate("EmbedResponse", _fake("POST", "/api/embed", {"model": "nomic-embed-text", "input": ["a", "b"]}))
    validate("ListResponse", _fake("GET", "/api/tags"))
    validate("VersionResponse", _fake("GET", "/api/version"))
    validate("ErrorResponse", _fake("POST", "/api/chat", {**chat, "model": "nope"}))
