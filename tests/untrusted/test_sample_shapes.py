"""MegaChat's answers are untrusted input: the template connector refuses every malformed one.

The same tables a real provider's connector should have (copy them with it): answers that differ
from a valid one in one field, read by the translator (the generate answer, each stream event,
embeddings, the model list), and one malformed 200 through a real socket. The shapes are in
Step 2 of ``llm_connectors/connectors/sample.py``; docs/providers/sample.md lists them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import build_connector
from shape_cases import (
    CANARY,
    MISSING,
    WRONG_COUNT,
    WRONG_OBJECT,
    WRONG_TEXT,
    assert_refused_over_http,
    cases,
    decode_stream,
    mutated,
    raises_protocol_error,
)

from llm_connectors.errors import ContentFilterError
from llm_connectors.requests import ChatRequest
from llm_connectors.testing import Reply
from llm_connectors.testing.sample_wire import (
    megachat_answer,
    megachat_event,
    megachat_failure,
    megachat_stream,
)
from llm_connectors.types import ChatResponse, ToolCall, Usage
from llm_connectors.wire.framing import SSEEvent

CONNECTOR = build_connector("sample")
REQUEST = ChatRequest("megachat-large", (), {}, stream=False)
STREAM_REQUEST = ChatRequest("megachat-large", (), {}, stream=True)
CALL = ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})

#: A valid answer reading every field we read, a tool call included.
ANSWER = megachat_answer("Hello", tool_calls=[CALL], stop="tool", prompt_tokens=4, generated_tokens=2)
COUNTS = ["prompt", "generated"]
ANSWER_CASES = [
    *cases("", [[], [CANARY], CANARY, None, 5], "Expected `object`"),
    *cases("output", [MISSING], "field `output`"),
    *cases("output", WRONG_OBJECT),
    *cases("output.text", WRONG_TEXT),
    *cases("output.calls", [CANARY, {"tool": CANARY}, 5, True]),
    *cases("output.calls.0", WRONG_OBJECT),
    *cases("output.calls.0.tool", [MISSING], "field `tool` - at `$.output.calls[0]`"),
    *cases("output.calls.0.tool", [None, "", *WRONG_TEXT]),
    *cases("output.calls.0.args", [CANARY, 3, True, [CANARY], json.dumps({"city": CANARY})]),
    *cases("output.calls.0.id", WRONG_TEXT),
    *cases("id", WRONG_TEXT),
    *cases("model", WRONG_TEXT),
    *cases("stop", WRONG_TEXT),
    *cases("tokens", [CANARY, 5, [CANARY]]),
    *[case for name in COUNTS for case in cases(f"tokens.{name}", WRONG_COUNT)],
]


def parse(data: Any) -> ChatResponse:
    return CONNECTOR.parse_chat_response(data, REQUEST)


def collect(events: list[SSEEvent]) -> ChatResponse:
    return decode_stream(CONNECTOR, STREAM_REQUEST, events)


def event(kind: str, data: Any) -> SSEEvent:
    return SSEEvent(kind, json.dumps(data))


#: The data of a valid stream's events, in order.
EVENTS: dict[str, Any] = {"start": {"id": "gen-1", "model": "megachat-large"}, "text": {"text": "Hello"},
                          "call": {"id": "c1", "tool": "get_weather", "args": {"city": "Paris"}},
                          "end": {"stop": "tool", "tokens": {"prompt": 4, "generated": 2}}}


def stream_of(**changed: Any) -> list[SSEEvent]:
    """The valid stream, with the data of the events named replaced."""
    return [event(kind, changed.get(kind, data)) for kind, data in EVENTS.items()]


# -- POST /v2/generate ---------------------------------------------------------------------------

def test_the_valid_answer_and_stream_read_every_field() -> None:
    for response in (parse(ANSWER), collect(stream_of())):
        assert (response.content, response.tool_calls, response.finish_reason) == ("Hello", [CALL], "tool_calls")
        assert response.usage == Usage(4, 2, 6)


@pytest.mark.parametrize(("path", "value", "expected"), ANSWER_CASES)
def test_malformed_answer(path: str, value: Any, expected: str) -> None:
    raises_protocol_error(lambda: parse(mutated(ANSWER, path, value)), "sample", expected)


@pytest.mark.parametrize("data", [{"output": {}}, {"output": {"text": "", "calls": []}, "tokens": {"prompt": 1}},
                                  {"output": {"text": None}, "stop": ""}])
def test_empty_answer_without_stop(data: dict[str, Any]) -> None:
    raises_protocol_error(lambda: parse(data), "sample", "no text, no tool call and no `stop`")


@pytest.mark.parametrize(("stop", "finish"), [("max_output", "length"), ("blocked", "content_filter"),
                                              ("done", "stop")])
def test_documented_empty_answers_still_work(stop: str, finish: str) -> None:
    """The stop reason says why there is nothing: an answer, if an empty one."""
    for response in (parse({"output": {"text": ""}, "stop": stop}), collect([event("end", {"stop": stop})])):
        assert (response.content, response.finish_reason, response.native_finish_reason) == ("", finish, stop)


def test_failure_inside_a_200_is_still_the_typed_error() -> None:
    with pytest.raises(ContentFilterError):
        parse(megachat_failure("blocked", "not allowed"))


# -- the stream's events -------------------------------------------------------------------------

STREAM_CASES = [
    *[case for kind in ("start", "text", "call", "end") for case in cases(kind, [[], CANARY, None, 5],
                                                                          "Expected `object`")],
    *cases("start.id", WRONG_TEXT, "$.id"),
    *cases("start.model", WRONG_TEXT, "$.model"),
    *cases("text.text", [MISSING], "field `text`"),
    *cases("text.text", [None, *WRONG_TEXT], "$.text"),
    *cases("call.tool", [MISSING], "field `tool`"),
    *cases("call.tool", [None, "", *WRONG_TEXT], "$.tool"),
    *cases("call.args", [CANARY, 3, True, [CANARY]], "$.args"),
    *cases("call.id", WRONG_TEXT, "$.id"),
    *cases("end.stop", WRONG_TEXT, "$.stop"),
    *cases("end.tokens", [CANARY, 5], "$.tokens"),
    *[case for name in COUNTS for case in cases(f"end.tokens.{name}", WRONG_COUNT, f"$.tokens.{name}")],
]


@pytest.mark.parametrize(("path", "value", "expected"), STREAM_CASES)
def test_malformed_stream_event(path: str, value: Any, expected: str) -> None:
    kind, _, inner = path.partition(".")
    events = stream_of(**{kind: mutated(EVENTS[kind], inner, value)})
    error = raises_protocol_error(lambda: collect(events), "sample", expected)
    assert f"the {kind} event" in error.message


@pytest.mark.parametrize("events", [
    pytest.param([event("end", {})], id="only-end"),
    pytest.param([event("start", {"id": "g"}), event("text", {"text": ""}), event("end", {"tokens": {}})],
                 id="empty-text"),
])
def test_empty_stream_without_stop(events: list[SSEEvent]) -> None:
    raises_protocol_error(lambda: collect(events), "sample", "the stream has no text, no tool call")


def test_the_stream_still_reads_what_it_did() -> None:
    """Unknown events skipped, an in-band error typed, nothing read after the end marker."""
    events = [*stream_of(), event("text", {"text": CANARY})]
    events.insert(1, SSEEvent("thinking", "not json"))
    assert collect(events).content == "Hello"
    with pytest.raises(ContentFilterError):
        collect([event("error", megachat_failure("blocked", "no"))])


# -- POST /v2/embed and GET /v2/models -----------------------------------------------------------

EMBEDDED: dict[str, Any] = {"model": "megachat-embed", "tokens": {"prompt": 3},
                            "vectors": [{"position": 1, "values": [0.5, 1]}, {"position": 0, "values": [2, 3]}]}
EMBED_REQUEST = CONNECTOR.prepare_embedding(None, ["first", "second"], {})
EMBED_CASES = [
    *cases("", [[], CANARY, None], "Expected `object`"),
    *cases("vectors", [MISSING], "field `vectors`"),
    *cases("vectors", [None, CANARY, {"x": CANARY}, 5]),
    *cases("vectors.0", WRONG_OBJECT),
    *cases("vectors.0.values", [MISSING], "field `values` - at `$.vectors[0]`"),
    *cases("vectors.0.values", [None, CANARY, [], {"x": CANARY}]),
    *cases("vectors.1.values.0", [None, CANARY, True, [1.0]]),
    *cases("vectors.0.position", WRONG_COUNT),
    *cases("vectors", [[{"values": [1.0]}]], "1 vectors for 2 texts (`$.vectors`)"),
    *cases("model", WRONG_TEXT),
    *cases("tokens.prompt", WRONG_COUNT),
]
MODELS: dict[str, Any] = {"models": [{"name": "megachat-large", "label": "Large", "context": 32768},
                                     {"name": "megachat-small"}], "next_cursor": "2"}
MODEL_CASES = [
    *cases("", [[], CANARY, None], "Expected `object`"),
    *cases("models", [MISSING], "field `models`"),
    *cases("models", [None, CANARY, {"x": CANARY}]),
    *cases("models.1", WRONG_OBJECT),
    *cases("models.1.name", [MISSING], "field `name` - at `$.models[1]`"),
    *cases("models.1.name", [None, "", *WRONG_TEXT]),
    *cases("models.0.label", WRONG_TEXT),
    *cases("models.0.context", WRONG_COUNT),
    *cases("next_cursor", WRONG_TEXT),
]


@pytest.mark.parametrize(("path", "value", "expected"), EMBED_CASES)
def test_malformed_embeddings(path: str, value: Any, expected: str) -> None:
    data = mutated(EMBEDDED, path, value)
    raises_protocol_error(lambda: CONNECTOR.parse_embedding_response(data, EMBED_REQUEST), "sample", expected)


@pytest.mark.parametrize(("path", "value", "expected"), MODEL_CASES)
def test_malformed_model_list(path: str, value: Any, expected: str) -> None:
    raises_protocol_error(lambda: CONNECTOR.parse_list_models(mutated(MODELS, path, value)), "sample", expected)


def test_valid_embeddings_and_models() -> None:
    embedded = CONNECTOR.parse_embedding_response(EMBEDDED, EMBED_REQUEST)
    assert embedded.embeddings == [[2.0, 3.0], [0.5, 1.0]]  # in input order, as floats
    assert embedded.usage == Usage(input_tokens=3, total_tokens=3)
    models, cursor = CONNECTOR.parse_list_models(MODELS)
    assert [(m.id, m.name, m.context_length) for m in models] == [
        ("megachat-large", "Large", 32768), ("megachat-small", "megachat-small", None)]
    assert cursor == "2" and models[0].raw == MODELS["models"][0]
    assert CONNECTOR.parse_list_models({"models": [], "next_cursor": ""}) == ([], None)


# -- through a real socket, on asyncio and trio ----------------------------------------------------

@pytest.mark.anyio
async def test_malformed_200_is_a_protocol_error_over_http() -> None:
    bad_text = megachat_event("text", {"text": {"secret": CANARY}})
    start, hello, *_ = megachat_stream(["Hel"])
    await assert_refused_over_http(
        "sample", Reply.json(mutated(ANSWER, "output.text", {"secret": CANARY})), Reply.sse([start, bad_text]),
        Reply.sse([start, hello, bad_text]), answer_path="$.output.text", stream_path="$.text", partial="Hel")
