"""Every Responses body the OpenAI connector builds, and every Responses answer the fakes and fixtures
hold, validated against OpenAI's OpenAPI document (``CreateResponse``, ``Response``,
``ResponseStreamEvent`` in shared/specs/openai-openapi.yaml, info.version 2.3.0, which has /responses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import build_connector
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from test_openai_responses import CASES, WEATHER
from test_openai_spec import SPEC_PATH, SPEC_URI, _describe, _load_spec, _Validator

from llm_connectors.testing.openai_responses_wire import OpenAIResponsesWireKit, responses_sse_events
from llm_connectors.types import ToolCall

FIXTURES = Path(__file__).parents[1] / "fixtures" / "openai"
MORE: dict[str, dict[str, Any]] = {
    "everything": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                   "temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "tools": [WEATHER, {"type": "web_search"}],
                   "tool_choice": {"name": "get_weather"}, "response_format": {"type": "json_object"},
                   "store": True, "logprobs": True, "top_logprobs": 3, "safety_identifier": "u1", "user": "legacy",
                   "prompt_cache_options": {"mode": "explicit", "ttl": "30m"}, "prompt_cache_retention": "24h"},
}


@pytest.fixture(scope="module")
def validate(pytestconfig: pytest.Config) -> Any:
    if not SPEC_PATH.exists():
        pytest.skip(f"OpenAI OpenAPI spec not found at {SPEC_PATH}")
    spec, _ = _load_spec(pytestconfig)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, Resource.from_contents(
        spec, default_specification=DRAFT202012))
    validators: dict[str, Any] = {}

    def run(name: str, instance: Any) -> list[str]:
        if name not in validators:
            validators[name] = _Validator({"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, registry=registry)
        return [_describe(err) for err in validators[name].iter_errors(instance)]

    return run


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", sorted({**CASES, **MORE}))
def test_request_matches_create_response(validate: Any, case: str, stream: bool) -> None:
    options = dict({**CASES, **MORE}[case])
    messages, model = options.pop("messages"), options.pop("model", "gpt-5.5-pro")
    conn = build_connector("openai")
    wire = conn._chat_wire(conn.prepare_chat(model, messages, options, stream=stream))
    assert wire.path == "/responses"
    body = dict(wire.json)
    # The document's InputItem is a oneOf in which a typeless user message with a part list matches
    # both EasyInputMessage and InputMessage (openai 3.63.0 sends exactly that: the captures); check
    # such messages as EasyInputMessage, then the body with their parts as text.
    for index, item in enumerate(body["input"]):
        if "type" not in item and isinstance(item.get("content"), list):
            errors = validate("EasyInputMessage", item)
            assert not errors, f"input[{index}]: " + "\n".join(errors)
            body["input"] = [*body["input"][:index], {**item, "content": "parts"}, *body["input"][index + 1:]]
    errors = validate("CreateResponse", body)
    assert not errors, "\n".join(errors) + "\n" + json.dumps(wire.json, indent=1)[:2000]


def test_validator_rejects_a_wrong_body(validate: Any) -> None:
    assert validate("CreateResponse", {"model": "m", "input": "x", "max_output_tokens": 8})  # minimum 16
    assert validate("CreateResponse", {"model": "m", "input": [{"type": "function_call_output"}]})


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("responses_*.json")))
def test_fixtures_are_responses(validate: Any, name: str) -> None:
    assert not validate("Response", json.loads((FIXTURES / name).read_text()))


def _events(content: bytes) -> list[Any]:
    return [json.loads(line[6:]) for line in content.decode().splitlines() if line.startswith("data: ")]


def test_streams_are_response_stream_events(validate: Any) -> None:
    kit = OpenAIResponsesWireKit()
    call = ToolCall(id="call_9", name="get_weather", arguments={"city": "Paris"})
    streams = [(FIXTURES / name).read_bytes() for name in ("responses_tool_call.sse", "responses_refusal.sse")]
    streams += [b"".join(responses_sse_events(["He", "llo"], tool_calls=[call])),
                b"".join(responses_sse_events(["cut"], finish="length"))]
    streams += [b"".join(c for c in kit.stream_error_reply(["x"], kind=kind).chunks or () if isinstance(c, bytes))
                for kind in ("overloaded", "api")]
    for content in streams:
        for event in _events(content):
            assert not validate("ResponseStreamEvent", event), event["type"]
    for reply in (kit.chat_reply("Hi"), kit.chat_reply("", tool_calls=[call], finish="tool_calls"),
                  kit.chat_reply("cut", finish="length")):
        assert not validate("Response", json.loads(reply.body))
