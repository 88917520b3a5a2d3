"""Claude's answers are untrusted input: every malformed one is a ``ProtocolError`` naming the field.

Tables of answers that differ from a valid one in one field, read by the translator (fixture in,
value out: the Messages answer, each stream event, the model list), streams whose events come out
of their documented order, and one malformed 200 through a real socket. The documented shapes are
WIRE.md §1.3-§1.5 (the SDK's types); they are declared in ``connectors/claude_stream.py`` and
``connectors/claude.py``. Documented empty answers and unknown block, delta and event types still work.
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

from llm_connectors.errors import OverloadedError
from llm_connectors.requests import ChatRequest
from llm_connectors.testing import Reply
from llm_connectors.testing.claude_wire import sse_event
from llm_connectors.types import ChatResponse, ReasoningBlock, ToolCall, Usage
from llm_connectors.wire.framing import SSEEvent

CONNECTOR = build_connector("claude")
REQUEST = ChatRequest("claude-sonnet-4-5", (), {})
STREAM_REQUEST = ChatRequest("claude-sonnet-4-5", (), {}, stream=True)
CALL = ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"})
COUNTS = ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"]

#: A valid answer reading every field we read: thinking (signed), redacted thinking, text, a tool call.
ANSWER: dict[str, Any] = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Hello"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 10, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3, "output_tokens": 5,
              "output_tokens_details": {"thinking_tokens": 4}},
}
ANSWER_CASES = [
    *cases("", [[], [CANARY], CANARY, None, 5], "Expected `object`"),
    *cases("content", [MISSING], "field `content`"),
    *cases("content", [None, {"secret": CANARY}, CANARY, 5, True]),
    *cases("content.0", [None, CANARY, 5, [CANARY]]),
    *cases("content.0.type", [MISSING], "field `type` - at `$.content[0]`"),
    *cases("content.0.type", [None, 5, [CANARY], {"x": CANARY}]),
    *cases("content.0.thinking", [MISSING], "field `thinking` - at `$.content[0]`"),
    *cases("content.0.thinking", [None, *WRONG_TEXT]),
    *cases("content.0.signature", WRONG_TEXT),
    *cases("content.1.data", [MISSING], "field `data` - at `$.content[1]`"),
    *cases("content.1.data", [None, *WRONG_TEXT]),
    *cases("content.2.text", [MISSING], "field `text` - at `$.content[2]`"),
    *cases("content.2.text", [None, *WRONG_TEXT]),
    *cases("content.2.citations", [CANARY, 5, {"x": CANARY}]),
    *[case for name in ("id", "name") for case in cases(f"content.3.{name}", [MISSING],
                                                       f"field `{name}` - at `$.content[3]`")],
    *[case for name in ("id", "name") for case in cases(f"content.3.{name}", [None, "", *WRONG_TEXT])],
    *cases("content.3.input", [MISSING], "field `input` - at `$.content[3]`"),
    *cases("content.3.input", [None, CANARY, json.dumps({"city": CANARY}), 5, True, [CANARY]]),
    *cases("stop_reason", [["end_turn"], 5, True, {"x": CANARY}, [CANARY]]),
    *cases("id", WRONG_TEXT),
    *cases("model", WRONG_TEXT),
    *cases("usage", [CANARY, 5, True, [CANARY]]),
    *[case for name in COUNTS for case in cases(f"usage.{name}", WRONG_COUNT)],
    *cases("usage.output_tokens_details", [CANARY, 5, [CANARY]]),
    *cases("usage.output_tokens_details.thinking_tokens", WRONG_COUNT),
]


def parse(data: Any) -> ChatResponse:
    return CONNECTOR.parse_chat_response(data, REQUEST)


def collect(events: list[dict[str, Any]]) -> ChatResponse:
    """Events given as objects, framed as the API frames them (``event:`` = the data's ``type``)."""
    framed = [SSEEvent(e["type"] if isinstance(e, dict) and isinstance(e.get("type"), str) else "message",
                       json.dumps(e)) for e in events]
    return decode_stream(CONNECTOR, STREAM_REQUEST, framed)


# -- POST /v1/messages ---------------------------------------------------------------------------

def test_the_valid_answer_and_stream_read_every_field() -> None:
    whole, streamed = parse(ANSWER), collect(list(EVENTS.values()))
    assert streamed == whole  # every field, raw included
    assert (whole.content, whole.tool_calls, whole.finish_reason) == ("Hello", [CALL], "tool_calls")
    assert whole.reasoning_blocks == [ReasoningBlock(text="hmm", signature="sig"),
                                      ReasoningBlock(redacted_data="opaque")]
    assert whole.usage == Usage(15, 5, 20, cache_read_tokens=3, cache_write_tokens=2, reasoning_tokens=4)
    assert (whole.id, whole.model, whole.native_finish_reason) == ("msg_1", "claude-sonnet-4-5", "tool_use")


@pytest.mark.parametrize(("path", "value", "expected"), ANSWER_CASES)
def test_malformed_answer(path: str, value: Any, expected: str) -> None:
    raises_protocol_error(lambda: parse(mutated(ANSWER, path, value)), "claude", expected)


@pytest.mark.parametrize("data", [
    pytest.param({"content": []}, id="empty-content"),
    pytest.param({"content": [], "stop_reason": None, "usage": {"input_tokens": 1, "output_tokens": 0}}, id="nulls"),
    pytest.param({"content": [{"type": "text", "text": ""}], "stop_reason": None}, id="empty-text"),
    pytest.param({"content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]},
                 id="unread-block-only"),
])
def test_empty_answer_without_stop_reason(data: dict[str, Any]) -> None:
    raises_protocol_error(lambda: parse(data), "claude", "no content, no tool call and no stop_reason")


@pytest.mark.parametrize(("reason", "finish"), [("max_tokens", "length"), ("refusal", "content_filter"),
                                                ("end_turn", "stop"), ("pause_turn", "other")])
def test_documented_empty_answers_still_work(reason: str, finish: str) -> None:
    """The stop reason says why there is nothing: an answer, if an empty one."""
    start, text_start, text_stop, stop = (EVENTS[name] for name in ("start", "text_start", "text_stop", "stop"))
    delta = mutated(EVENTS["message_delta"], "delta.stop_reason", reason)
    for content, events in (([], [start, delta, stop]),
                            ([{"type": "text", "text": ""}], [start, text_start, text_stop, delta, stop])):
        for response in (parse({"content": content, "stop_reason": reason}), collect(events)):
            assert (response.content, response.finish_reason, response.native_finish_reason) == ("", finish, reason)


def test_blocks_of_types_we_do_not_read_are_tolerated_and_never_quoted() -> None:
    data = mutated(ANSWER, "content", [
        {"type": "server_tool_use", "id": 5, "input": CANARY},  # only its type is ours to check
        {"type": CANARY, "text": {"x": CANARY}},
        *ANSWER["content"],
    ])
    assert parse(data).content == "Hello" and parse(data).tool_calls == [CALL]
    raises_protocol_error(lambda: parse(mutated(data, "content.4.text", 5)), "claude", "$.content[4].text")


def test_an_error_inside_a_200_is_still_the_typed_error() -> None:
    with pytest.raises(OverloadedError):
        parse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


# -- the stream's events -------------------------------------------------------------------------

def block(step: str, index: int, **body: Any) -> dict[str, Any]:
    """A ``content_block_<step>`` event: ``start`` carries ``body`` as its block, ``delta`` as its delta."""
    event: dict[str, Any] = {"type": f"content_block_{step}", "index": index}
    if step != "stop":
        event["content_block" if step == "start" else "delta"] = body
    return event


#: The events of the stream of ANSWER, by name, in order.
EVENTS: dict[str, dict[str, Any]] = {
    "start": {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3,
                  "output_tokens": 1}}},
    "thinking_start": block("start", 0, type="thinking", thinking="", signature=""),
    "ping": {"type": "ping"},
    "thinking_delta": block("delta", 0, type="thinking_delta", thinking="hmm"),
    "signature_delta": block("delta", 0, type="signature_delta", signature="sig"),
    "thinking_stop": block("stop", 0),
    "redacted_start": block("start", 1, type="redacted_thinking", data="opaque"),
    "text_start": block("start", 2, type="text", text=""),
    "text_delta": block("delta", 2, type="text_delta", text="Hello"),
    "text_stop": block("stop", 2),
    "redacted_stop": block("stop", 1),
    "tool_start": block("start", 3, type="tool_use", id="toolu_1", name="get_weather", input={}),
    "json_delta": block("delta", 3, type="input_json_delta", partial_json='{"city": '),
    "json_delta_2": block("delta", 3, type="input_json_delta", partial_json='"Paris"}'),
    "tool_stop": block("stop", 3),
    "message_delta": {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                      "usage": {"output_tokens": 5, "output_tokens_details": {"thinking_tokens": 4}}},
    "stop": {"type": "message_stop"},
}


def event_cases(path: str, values: Any, expected: str | None = None) -> list[Any]:
    """``cases`` for the event named by ``path``'s first part (the path in the error is the event's own)."""
    name, _, inner = path.partition(".")
    return [pytest.param(path, *case.values[1:], id=f"{name}.{case.id}") for case in cases(inner, values, expected)]


STREAM_CASES = [
    *[case for name in ("start", "text_delta", "tool_stop", "message_delta", "stop") for case in
      event_cases(name, [[], [CANARY], CANARY, None, 5], "stream event is not a JSON object")],
    *[case for name in ("start", "text_start", "text_delta", "text_stop", "message_delta", "stop") for case in
      [*event_cases(f"{name}.type", [MISSING], "field `type`"),
       *event_cases(f"{name}.type", [None, 5, [CANARY], {"x": CANARY}])]],
    *event_cases("start.message", [MISSING], "field `message`"),
    *event_cases("start.message", WRONG_OBJECT),
    *[case for name in ("id", "model", "stop_reason") for case in event_cases(f"start.message.{name}", WRONG_TEXT)],
    *event_cases("start.message.usage", [CANARY, 5, [CANARY]]),
    *[case for name in COUNTS for case in event_cases(f"start.message.usage.{name}", WRONG_COUNT)],
    *[case for name in ("thinking_start", "text_start", "tool_start", "text_delta", "json_delta", "tool_stop")
      for case in [*event_cases(f"{name}.index", [MISSING], "field `index`"),
                   *event_cases(f"{name}.index", WRONG_COUNT)]],
    *event_cases("text_start.content_block", [MISSING], "field `content_block`"),
    *event_cases("text_start.content_block", WRONG_OBJECT),
    *event_cases("text_start.content_block.type", [MISSING], "field `type` - at `$.content_block`"),
    *event_cases("text_start.content_block.type", [None, 5, [CANARY]]),
    *event_cases("text_start.content_block.text", [MISSING], "field `text` - at `$.content_block`"),
    *event_cases("text_start.content_block.text", [None, *WRONG_TEXT]),
    *event_cases("text_start.content_block.citations", [CANARY, 5, {"x": CANARY}]),
    *event_cases("thinking_start.content_block.thinking", [MISSING], "field `thinking` - at `$.content_block`"),
    *event_cases("thinking_start.content_block.thinking", [None, *WRONG_TEXT]),
    *event_cases("thinking_start.content_block.signature", WRONG_TEXT),
    *event_cases("redacted_start.content_block.data", [MISSING], "field `data` - at `$.content_block`"),
    *event_cases("redacted_start.content_block.data", [None, *WRONG_TEXT]),
    *[case for name in ("id", "name") for case in
      [*event_cases(f"tool_start.content_block.{name}", [MISSING], f"field `{name}` - at `$.content_block`"),
       *event_cases(f"tool_start.content_block.{name}", [None, "", *WRONG_TEXT])]],
    *event_cases("text_delta.delta", [MISSING], "field `delta`"),
    *event_cases("text_delta.delta", WRONG_OBJECT),
    *event_cases("text_delta.delta.type", [MISSING], "field `type` - at `$.delta`"),
    *event_cases("text_delta.delta.type", [None, 5, [CANARY]]),
    *event_cases("text_delta.delta.text", [MISSING], "field `text` - at `$.delta`"),
    *event_cases("text_delta.delta.text", [None, *WRONG_TEXT]),
    *[case for name, field in (("thinking_delta", "thinking"), ("signature_delta", "signature"),
                               ("json_delta", "partial_json")) for case in
      [*event_cases(f"{name}.delta.{field}", [MISSING], f"field `{field}` - at `$.delta`"),
       *event_cases(f"{name}.delta.{field}", [None, *WRONG_TEXT])]],
    *event_cases("message_delta.delta", [MISSING], "field `delta`"),
    *event_cases("message_delta.delta", WRONG_OBJECT),
    *event_cases("message_delta.delta.stop_reason", [["end_turn"], 5, True, {"x": CANARY}, [CANARY]]),
    *event_cases("message_delta.usage", [CANARY, 5, [CANARY]]),
    *[case for name in COUNTS for case in event_cases(f"message_delta.usage.{name}", WRONG_COUNT)],
    *event_cases("message_delta.usage.output_tokens_details", [CANARY, 5]),
    *event_cases("message_delta.usage.output_tokens_details.thinking_tokens", WRONG_COUNT),
]


@pytest.mark.parametrize(("path", "value", "expected"), STREAM_CASES)
def test_malformed_stream_event(path: str, value: Any, expected: str) -> None:
    name, _, inner = path.partition(".")
    events = {**EVENTS, name: mutated(EVENTS[name], inner, value)}
    error = raises_protocol_error(lambda: collect(list(events.values())), "claude", expected)
    kind = EVENTS[name]["type"]
    assert "stream event" in error.message or f"the {kind} event does not have" in error.message


CITATION = block("delta", 2, type="citations_delta", citation={"type": "char_location", "cited_text": "Hello"})


@pytest.mark.parametrize(("value", "expected"), [
    *[(v, "$.delta.citation") for v in (None, CANARY, 5, [CANARY])],
    (MISSING, "field `citation` - at `$.delta`"),
])
def test_malformed_citations_delta(value: Any, expected: str) -> None:
    events = list(EVENTS.values())
    events.insert(9, mutated(CITATION, "delta.citation", value))
    raises_protocol_error(lambda: collect(events), "claude", expected)


@pytest.mark.parametrize(("value", "expected"), [
    *[(v, "$.error") for v in (None, CANARY, 5, [CANARY])],
    (MISSING, "field `error`"),
    *[({"type": v, "message": "m"}, "$.error.type") for v in (None, *WRONG_TEXT)],
    *[({"type": "overloaded_error", "message": v}, "$.error.message") for v in (None, *WRONG_TEXT)],
])
def test_malformed_error_event(value: Any, expected: str) -> None:
    bad = mutated({"type": "error", "error": None}, "error", value)
    raises_protocol_error(lambda: collect([EVENTS["start"], bad]), "claude", expected)


def test_a_documented_error_event_is_still_the_typed_error() -> None:
    with pytest.raises(OverloadedError):
        collect([EVENTS["start"], {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}])


def without(*names: str) -> list[dict[str, Any]]:
    return [e for name, e in EVENTS.items() if name not in names]


def moved(name: str, before: str) -> list[dict[str, Any]]:
    events = without(name)
    events.insert(list(EVENTS).index(before), EVENTS[name])
    return events


ORDER_CASES = [
    pytest.param([EVENTS["stop"]], "message_stop before message_start", id="only-message_stop"),
    pytest.param([EVENTS["ping"], EVENTS["stop"]], "message_stop before message_start", id="ping-and-stop"),
    pytest.param([EVENTS["start"], EVENTS["stop"]], "no content, no tool call and no stop_reason", id="start-stop"),
    pytest.param([EVENTS["start"], EVENTS["text_start"], EVENTS["text_stop"], EVENTS["stop"]],
                 "no content, no tool call and no stop_reason", id="empty-text-no-stop_reason"),
    pytest.param(without("start"), "content_block_start before message_start", id="no-message_start"),
    pytest.param(moved("message_delta", "start"), "message_delta before message_start", id="delta-first"),
    pytest.param([*without("stop")[:5], EVENTS["start"]], "a second message_start", id="second-message_start"),
    pytest.param([*without("stop"), mutated(EVENTS["text_delta"], "index", 9), EVENTS["stop"]],
                 "content_block_delta for content block 9, which is not open", id="delta-unknown-index"),
    pytest.param(moved("text_delta", "tool_start"), "content_block_delta for content block 2, which is not open",
                 id="delta-after-its-stop"),
    pytest.param(moved("text_stop", "text_start"), "content_block_stop for content block 2, which is not open",
                 id="stop-before-start"),
    pytest.param([*without("stop"), block("stop", 7), EVENTS["stop"]],
                 "content_block_stop for content block 7, which is not open", id="stop-unknown-index"),
    pytest.param([*without("stop"), EVENTS["text_start"], EVENTS["stop"]],
                 "a second content_block_start for index 2", id="index-started-twice"),
    pytest.param(without("tool_stop"), "message_stop with content block 3 not stopped", id="block-left-open"),
    pytest.param([*without("text_delta")[:8], mutated(EVENTS["json_delta"], "index", 2), *without("text_delta")[8:]],
                 "a input_json_delta for content block 2, a block of type text", id="json-into-text"),
    pytest.param([*without("json_delta")[:12], mutated(EVENTS["text_delta"], "index", 3),
                  *without("json_delta")[12:]],
                 "a text_delta for content block 3, a block of type tool_use", id="text-into-tool_use"),
    pytest.param([*without("text_delta")[:8], mutated(EVENTS["thinking_delta"], "index", 2),
                  *without("text_delta")[8:]],
                 "a thinking_delta for content block 2, a block of type text", id="thinking-into-text"),
    pytest.param([*without()[:4], mutated(EVENTS["text_delta"], "index", 0), *without()[4:]],
                 "a text_delta for content block 0, a block of type thinking", id="text-into-thinking"),
    pytest.param([*without()[:8], mutated(EVENTS["signature_delta"], "index", 2), *without()[8:]],
                 "a signature_delta for content block 2, a block of type text", id="signature-into-text"),
    pytest.param([*without()[:4], mutated(CITATION, "index", 0), *without()[4:]],
                 "a citations_delta for content block 0, a block of type thinking", id="citation-into-thinking"),
    pytest.param([EVENTS["start"], block("start", 0, type=CANARY), block("delta", 0, type="text_delta", text="x")],
                 "a text_delta for content block 0, a block of type (another)", id="text-into-unread-block"),
]


@pytest.mark.parametrize(("events", "expected"), ORDER_CASES)
def test_events_out_of_order(events: list[dict[str, Any]], expected: str) -> None:
    raises_protocol_error(lambda: collect(events), "claude", expected)


def test_types_we_do_not_read_are_tolerated_and_never_quoted() -> None:
    """Unknown events, blocks and deltas are skipped (the API asks for that); nothing after message_stop counts."""
    events = list(EVENTS.values())
    events[9:9] = [CITATION, block("delta", 2, type=CANARY, text={"x": CANARY}), {"type": CANARY, "index": "x"}]
    events[-2:-2] = [block("start", 4, type="server_tool_use", id="s", name="web_search", input={}),
                     block("delta", 4, type="input_json_delta", partial_json='{"q": 1}'), block("stop", 4),
                     block("start", 5, type=CANARY, text=5), block("stop", 5)]
    events += [mutated(EVENTS["text_delta"], "delta.text", CANARY), {"type": "error"}]
    response = collect(events)
    assert (response.content, response.tool_calls, response.finish_reason) == ("Hello", [CALL], "tool_calls")
    assert response.raw["content"][4] == {"type": "server_tool_use", "id": "s", "name": "web_search",
                                          "input": {"q": 1}}
    assert response.raw["content"][2]["citations"] == [CITATION["delta"]["citation"]]
    for bad in (block("start", -1, type=CANARY), block("delta", -1, type=CANARY)):
        raises_protocol_error(lambda bad=bad: collect([EVENTS["start"], bad]), "claude", "`$.index`")


# -- GET /v1/models ------------------------------------------------------------------------------

MODELS: dict[str, Any] = {
    "data": [{"type": "model", "id": "claude-opus-4-1", "display_name": "Claude Opus 4.1",
              "created_at": "2025-08-05T00:00:00Z", "max_input_tokens": 200000},
             {"type": "model", "id": "claude-sonnet-4-5"}],
    "has_more": True, "first_id": "claude-opus-4-1", "last_id": "claude-sonnet-4-5",
}
MODEL_CASES = [
    *cases("", [[], CANARY, None], "Expected `object`"),
    *cases("data", [MISSING], "field `data`"),
    *cases("data", [None, CANARY, {"x": CANARY}]),
    *cases("data.1", WRONG_OBJECT),
    *cases("data.1.id", [MISSING], "field `id` - at `$.data[1]`"),
    *cases("data.1.id", [None, "", *WRONG_TEXT]),
    *cases("data.0.display_name", WRONG_TEXT),
    *cases("data.0.created_at", WRONG_TEXT),
    *cases("data.0.max_input_tokens", WRONG_COUNT),
    *cases("has_more", ["true", 1, CANARY, {"x": CANARY}]),
    *cases("last_id", WRONG_TEXT),
]


@pytest.mark.parametrize(("path", "value", "expected"), MODEL_CASES)
def test_malformed_model_list(path: str, value: Any, expected: str) -> None:
    raises_protocol_error(lambda: CONNECTOR.parse_list_models(mutated(MODELS, path, value)), "claude", expected)


def test_model_list_keeps_its_lenient_parts() -> None:
    """A date we cannot read is unknown; a page that says there is more goes on after its last id."""
    models, cursor = CONNECTOR.parse_list_models(mutated(MODELS, "data.0.created_at", "0001-01-01T00:00:00"))
    assert [(m.id, m.name, m.created, m.context_length) for m in models] == [
        ("claude-opus-4-1", "Claude Opus 4.1", None, 200000), ("claude-sonnet-4-5", "claude-sonnet-4-5", None, None)]
    assert cursor == "claude-sonnet-4-5" and models[1].raw == MODELS["data"][1]
    assert CONNECTOR.parse_list_models(mutated(MODELS, "last_id", None))[1] == "claude-sonnet-4-5"
    assert CONNECTOR.parse_list_models({"data": [], "has_more": False}) == ([], None)


# -- through a real socket, on asyncio and trio ----------------------------------------------------

@pytest.mark.anyio
async def test_malformed_200_is_a_protocol_error_over_http() -> None:
    bad = mutated(EVENTS["text_delta"], "delta.text", {"secret": CANARY})
    opening = [sse_event(EVENTS["start"]), sse_event(EVENTS["text_start"])]
    await assert_refused_over_http(
        "claude", Reply.json(mutated(ANSWER, "content.2.text", {"secret": CANARY})),
        Reply.sse([*opening, sse_event(bad)]),
        Reply.sse([*opening, sse_event(mutated(EVENTS["text_delta"], "delta.text", "Hel")), sse_event(bad)]),
        answer_path="$.content[2].text", stream_path="$.delta.text", partial="Hel")
