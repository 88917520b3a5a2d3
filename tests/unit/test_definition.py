"""Service definitions: validation before I/O, did-you-mean, ranges, JSON-able description."""

from __future__ import annotations

import json

import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.definition import ParameterDefinition, common_parameters
from llm_connectors.errors import InvalidRequestError, UnsupportedCapabilityError


@pytest.fixture
def conn() -> OpenAIConnector:
    return build_connector("openai")  # validation only: nothing is sent


def prepare(conn: OpenAIConnector, **options: object) -> dict[str, object]:
    return conn.prepare_chat(None, "hi", options, stream=False).params


def test_unknown_option_did_you_mean(conn: OpenAIConnector) -> None:
    with pytest.raises(InvalidRequestError) as info:
        prepare(conn, max_token=5)
    assert "'max_token'" in str(info.value) and "Did you mean 'max_tokens'?" in str(info.value)


def test_unknown_option_without_close_match_lists_accepted(conn: OpenAIConnector) -> None:
    with pytest.raises(InvalidRequestError, match=r"Accepted options: .*temperature") as info:
        prepare(conn, zzz=1)
    assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("temperature", 2.5, "between 0 and 2"),
    ("temperature", -0.1, "between 0 and 2"),
    ("temperature", "hot", "a number"),
    ("temperature", True, "a number"),
    ("temperature", float("nan"), "a number"),
    ("top_p", 1.5, "between 0 and 1"),
    ("max_tokens", 0, ">= 1"),
    ("max_tokens", 2.5, "an integer"),
    ("seed", -1, ">= 0"),
    ("stop", ["a", "b", "c", "d", "e"], "at most 4"),
    ("stop", [1], "non-empty string"),
    ("reasoning_effort", "extreme", "one of"),
    ("tools", "nope", "list of tool"),
    ("tool_choice", "sometimes", "'auto', 'none', 'required'"),
    ("response_format", {"type": "yaml"}, "json_object"),
    ("parallel_tool_calls", "yes", "True or False"),
])
def test_out_of_range_values_name_the_allowed_range(conn: OpenAIConnector, option: str, value: object,
                                                    expected: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        prepare(conn, **{option: value})
    assert option in str(info.value) and expected in str(info.value)


def test_normalisation(conn: OpenAIConnector) -> None:
    params = prepare(conn, stop="END", max_tokens=10.0, tool_choice="any", temperature=None,
                     tools=[{"name": "f", "description": "d", "parameters": {"type": "object"}}])
    assert params["stop"] == ["END"]
    assert params["max_tokens"] == 10 and isinstance(params["max_tokens"], int)
    assert params["tool_choice"] == "required"
    assert "temperature" not in params  # None means "provider default"
    assert params["tools"] == [{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object"}}}]


def test_tools_validation(conn: OpenAIConnector) -> None:
    with pytest.raises(InvalidRequestError, match="duplicate tool name"):
        prepare(conn, tools=[{"name": "f"}, {"type": "function", "function": {"name": "f"}}])
    with pytest.raises(InvalidRequestError, match=r"tools\[0\]"):
        prepare(conn, tools=[{"type": "function", "function": {"description": "no name"}}])
    with pytest.raises(InvalidRequestError, match="JSON-schema"):
        prepare(conn, tools=[{"name": "f", "parameters": "not a schema"}])
    with pytest.raises(InvalidRequestError, match="not among tools"):
        prepare(conn, tools=[{"name": "f"}], tool_choice={"type": "function", "function": {"name": "g"}})
    params = prepare(conn, tools=[{"name": "f"}], tool_choice={"name": "f"})
    assert params["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert params["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}


def test_response_format(conn: OpenAIConnector) -> None:
    assert prepare(conn, response_format={"type": "json_object"})["response_format"] == {"type": "json_object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = prepare(conn, response_format={"type": "json_schema",
                                         "json_schema": {"name": "x", "schema": schema, "strict": True}})
    assert out["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "x", "schema": schema, "strict": True}}
    with pytest.raises(InvalidRequestError, match="json_schema needs"):
        prepare(conn, response_format={"type": "json_schema"})


def test_reserved_options(conn: OpenAIConnector) -> None:
    req = conn.prepare_chat(None, "hi", {"timeout": 5, "extra": {"a": {"b": 1}},
                                         "provider_options": {"openai": {"a": {"c": 2}}, "ollama": {"x": 1}}},
                            stream=False)
    assert req.timeout == 5.0
    assert req.extra == {"a": {"b": 1, "c": 2}}
    for bad in ({"timeout": 0}, {"timeout": "5"}, {"extra": [1]}, {"provider_options": ["openai"]},
                {"provider_options": {"openai": 3}}):
        with pytest.raises(InvalidRequestError):
            conn.prepare_chat(None, "hi", bad, stream=False)


def test_provider_options_unknown_provider_id(conn: OpenAIConnector) -> None:
    with pytest.raises(InvalidRequestError, match=r"unknown provider 'olama'.*Did you mean 'ollama'"):
        prepare(conn, provider_options={"olama": {}})


def test_capabilities_checked_before_io() -> None:
    class NoTools(OpenAIConnector):
        definition = OpenAIConnector.definition.with_changes(
            capabilities=frozenset({lc.Capability.CHAT}), id="notools")

    conn = NoTools(api_key="k")
    with pytest.raises(UnsupportedCapabilityError, match="does not support option 'tools'"):
        prepare(conn, tools=[{"name": "f"}])  # type: ignore[arg-type]
    with pytest.raises(UnsupportedCapabilityError, match="streaming"):
        conn.generate_chat_stream(None, "hi")
    with pytest.raises(UnsupportedCapabilityError, match="image content"):
        conn.prepare_chat(None, [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}], {}, stream=False)


def test_describe_is_json_and_complete() -> None:
    data = lc.describe("openai")
    assert json.loads(json.dumps(data)) == data
    assert data["id"] == "openai" and data["auth"]["env_var"] == "OPENAI_API_KEY"
    assert "embeddings" in data["capabilities"]
    assert data["model"]["options_source"] == "list_models"
    temperature = next(p for p in data["parameters"] if p["name"] == "temperature")
    assert temperature == {"name": "temperature", "type": "number", "description": "Sampling temperature.",
                           "minimum": 0.0, "maximum": 2.0}


def test_parameter_definition_describe_range() -> None:
    assert ParameterDefinition("x", "number", minimum=1).describe_range() == ">= 1"
    assert ParameterDefinition("x", "number", maximum=1.5).describe_range() == "<= 1.5"
    assert ParameterDefinition("x", "string", choices=("a",)).describe_range() == "one of 'a'"
    names = [p.name for p in common_parameters(temperature_max=1, seed=False, tools=False,
                                               response_format=False)]
    assert names == ["temperature", "top_p", "max_tokens", "stop"]


def test_tools_keep_a_cache_marker(conn: OpenAIConnector) -> None:
    tool = {"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}
    (checked,) = conn.definition.validate_options({"tools": [tool]})["tools"]
    assert checked["cache_control"] == {"type": "ephemeral"}
    with pytest.raises(InvalidRequestError, match=r"tools\[0\].cache_control must be"):
        conn.definition.validate_options({"tools": [{**tool, "cache_control": {"type": "forever"}}]})
