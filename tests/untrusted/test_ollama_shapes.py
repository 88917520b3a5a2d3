"""Ollama's answers are untrusted input: every malformed one is a ``ProtocolError`` naming the field.

Tables of answers that differ from a valid one in one field, read by the translator (fixture in,
value out: the non-streamed answer, the same answer as the last line of a stream, embeddings and
the model list), and one malformed 200 through a real socket. The documented shapes are
shared/specs/ollama-openapi.yaml and WIRE.md §4; documented empty answers still work.
"""

from __future__ import annotations

import json
from pathlib import Path
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

from llm_connectors.errors import ProviderError
from llm_connectors.testing import Reply
from llm_connectors.testing.ollama_wire import ndjson
from llm_connectors.types import ChatResponse, ToolCall, Usage

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ollama"
CONNECTOR = build_connector("ollama")
REQUEST = CONNECTOR.prepare_chat(None, "Hi", {}, stream=False)
STREAM_REQUEST = CONNECTOR.prepare_chat(None, "Hi", {}, stream=True)

#: A valid non-streamed answer reading every field we read, a tool call included.
ANSWER: dict[str, Any] = {
    "model": "llama3.2", "created_at": "2024-07-22T20:33:28.123456789Z",
    "message": {"role": "assistant", "content": "Hello", "thinking": "greet",
                "tool_calls": [{"id": "call_1", "function": {"index": 0, "name": "get_weather",
                                                             "arguments": {"city": "Paris"}}}]},
    "done": True, "done_reason": "stop", "total_duration": 4_883_583_458, "prompt_eval_count": 3, "eval_count": 1,
}
#: A valid line before the last one, for the streamed cases.
STEP: dict[str, Any] = {"model": "llama3.2", "created_at": "2024-07-22T20:33:28Z",
                        "message": {"role": "assistant", "content": "Hel"}, "done": False}

CALL = "message.tool_calls.0"
CHAT_CASES = [
    *cases("", [[], [CANARY], CANARY, None, 5], "is not a JSON object"),
    *cases("message", [MISSING], "field `message`"),
    *cases("message", WRONG_OBJECT),
    *cases("message.content", WRONG_TEXT),
    *cases("message.thinking", WRONG_TEXT),
    *cases("message.tool_calls", [CANARY, {"function": {"name": CANARY}}, 5, True]),
    *cases(CALL, [CANARY, None, [CANARY]]),
    *cases(f"{CALL}.function", [True, None, CANARY, [CANARY]]),
    *cases(f"{CALL}.function", [MISSING], "field `function` - at `$.message.tool_calls[0]`"),
    # A call without a name is no call (documented as required); the message says so.
    *cases(f"{CALL}.function.name", [MISSING, None, ""], "without a function name (at `$.message.tool_calls[0]"
                                                          ".function.name`)"),
    *cases(f"{CALL}.function.name", [5, {"x": CANARY}, [CANARY]]),
    # Arguments are an object; JSON text of one is read (proxies), other text is not arguments.
    *cases(f"{CALL}.function.arguments", [5, True, [CANARY]]),
    *cases(f"{CALL}.function.arguments", [CANARY, "[1, 2]", json.dumps(CANARY), "{"],
           "(at `$.message.tool_calls[0].function.arguments`)"),
    *cases(f"{CALL}.id", [5, {"x": CANARY}, [CANARY]]),
    *cases("done", [MISSING], "field `done`"),
    *cases("done", ["true", 1, None, CANARY, {"x": CANARY}]),
    *cases("done_reason", [5, True, {"x": CANARY}, [CANARY]]),
    *cases("model", [5, {"x": CANARY}, [CANARY]]),
    *cases("prompt_eval_count", WRONG_COUNT),
    *cases("eval_count", WRONG_COUNT),
    *cases("error", [{"secret": CANARY}, 5, [CANARY], True], "$.error"),
]
#: Nothing in it, and no done_reason to say why: no answer at all, not '' with a finish reason.
EMPTY_CASES = [
    pytest.param({"message": {"role": "assistant", "content": ""}, "done": True}, id="no-done_reason"),
    pytest.param({"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": ""}, id="empty"),
    pytest.param({"message": {}, "done": True, "eval_count": 0}, id="empty-message"),
    pytest.param({"message": {"content": None, "tool_calls": []}, "done": True}, id="nulls"),
]


def parse(data: Any) -> ChatResponse:
    return CONNECTOR.parse_chat_response(data, REQUEST)


def collect(events: list[Any]) -> ChatResponse:
    return decode_stream(CONNECTOR, STREAM_REQUEST, events)


# -- POST /api/chat ------------------------------------------------------------------------------

def test_the_valid_answer_reads_every_field() -> None:
    for response in (parse(ANSWER), collect([STEP, ANSWER])):
        assert response.tool_calls == [ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})]
        assert (response.reasoning, response.finish_reason, response.usage) == ("greet", "tool_calls", Usage(3, 1, 4))
    assert (parse(ANSWER).content, collect([STEP, ANSWER]).content) == ("Hello", "HelHello")


@pytest.mark.parametrize(("path", "value", "expected"), CHAT_CASES)
def test_malformed_answer(path: str, value: Any, expected: str) -> None:
    raises_protocol_error(lambda: parse(mutated(ANSWER, path, value)), "ollama", expected)


@pytest.mark.parametrize(("path", "value", "expected"), CHAT_CASES)
def test_malformed_last_stream_line(path: str, value: Any, expected: str) -> None:
    raises_protocol_error(lambda: collect([STEP, mutated(ANSWER, path, value)]), "ollama", expected)


@pytest.mark.parametrize(("path", "value", "expected"), CHAT_CASES)
def test_malformed_first_stream_line(path: str, value: Any, expected: str) -> None:
    line = mutated({**ANSWER, "done": False}, path, value)
    raises_protocol_error(lambda: collect([line, ANSWER]), "ollama", expected)


@pytest.mark.parametrize("data", EMPTY_CASES)
def test_empty_answer_without_done_reason(data: dict[str, Any]) -> None:
    raises_protocol_error(lambda: parse(data), "ollama", "no `done_reason`")
    raises_protocol_error(lambda: collect([data]), "ollama", "no `done_reason`")


def test_stream_of_only_done_lines() -> None:
    done = {"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True}
    raises_protocol_error(lambda: collect([done]), "ollama", "no `done_reason`")
    raises_protocol_error(lambda: collect([{"done": True}]), "ollama", "field `message`")


@pytest.mark.parametrize(("reason", "finish"), [("length", "length"), ("load", "other"), ("unload", "other"),
                                                ("stop", "stop")])
def test_documented_empty_answers_still_work(reason: str, finish: str) -> None:
    data = {"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": reason}
    for response in (parse(data), collect([data])):
        assert (response.content, response.finish_reason, response.native_finish_reason) == ("", finish, reason)
        assert response.usage == Usage(0, 0, 0)


def test_fixture_answers_still_parse() -> None:
    """Every recorded answer, the omitempty and `"images": null` ones included."""
    for path in sorted(FIXTURES.glob("chat_*.json")):
        assert parse(json.loads(path.read_text())).provider == "ollama"
    for path in sorted(FIXTURES.glob("chat_*.ndjson")):
        if "error" not in path.stem:
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            assert collect(lines).finish_reason is not None


def test_thinking_alone_ends_without_done_reason() -> None:
    """An answer that only thought is not empty (the missing-metrics legacy case, with thinking)."""
    lines = [{"message": {"thinking": "hmm"}, "done": False}, {"message": {}, "done": True}]
    assert (collect(lines).reasoning, collect(lines).finish_reason) == ("hmm", "other")


@pytest.mark.parametrize(("arguments", "read"), [('{"city": "Paris"}', {"city": "Paris"}), ("", {}),
                                                  (None, {}), (MISSING, {})])
def test_arguments_the_decoder_still_reads(arguments: Any, read: dict[str, Any]) -> None:
    """JSON text of an object (from proxies that re-encode), or nothing: the call has no arguments."""
    data = mutated(ANSWER, f"{CALL}.function.arguments", arguments)
    assert parse(data).tool_calls[0].arguments == read


def test_documented_error_line_is_still_the_typed_error() -> None:
    with pytest.raises(ProviderError, match="boom") as info:
        parse({"error": "boom"})
    assert type(info.value) is ProviderError


# -- POST /api/embed -----------------------------------------------------------------------------

EMBEDDING: dict[str, Any] = {"model": "nomic-embed-text", "embeddings": [[0.5, 0.25], [1, -2]],
                             "total_duration": 14_143_917, "prompt_eval_count": 4}
EMBED_REQUEST = CONNECTOR.prepare_embedding(None, ["first", "second"], {})
EMBED_CASES = [
    *cases("", [[], CANARY, None], "Expected `object`"),
    *cases("embeddings", [MISSING], "field `embeddings`"),
    *cases("embeddings", [None, CANARY, {"x": CANARY}, 5]),
    *cases("embeddings.0", [None, CANARY, {"x": CANARY}, [], 5]),
    *cases("embeddings.1.0", [None, CANARY, True, {"x": CANARY}, [1.0]]),
    *cases("embeddings", [[[0.5]]], "1 vectors for 2 inputs (`$.embeddings`)"),
    *cases("model", [5, {"x": CANARY}]),
    *cases("prompt_eval_count", WRONG_COUNT),
    *cases("error", [{"secret": CANARY}, 5], "$.error"),
]


@pytest.mark.parametrize(("path", "value", "expected"), EMBED_CASES)
def test_malformed_embeddings(path: str, value: Any, expected: str) -> None:
    data = mutated(EMBEDDING, path, value)
    raises_protocol_error(lambda: CONNECTOR.parse_embedding_response(data, EMBED_REQUEST), "ollama", expected)


def test_valid_embeddings_are_floats() -> None:
    response = CONNECTOR.parse_embedding_response(EMBEDDING, EMBED_REQUEST)
    assert response.embeddings == [[0.5, 0.25], [1.0, -2.0]]
    assert all(type(x) is float for vector in response.embeddings for x in vector)
    assert response.usage == Usage(input_tokens=4, total_tokens=4)


# -- GET /api/tags -------------------------------------------------------------------------------

TAGS: dict[str, Any] = json.loads((FIXTURES / "tags.json").read_text())
TAG_CASES = [
    *cases("", [[], CANARY, None], "Expected `object`"),
    *cases("models", [MISSING], "field `models`"),
    *cases("models", [None, CANARY, {"x": CANARY}]),
    *cases("models.0", [None, CANARY, 5]),
    *cases("models.0.name", WRONG_TEXT),
    *cases("models.0.model", WRONG_TEXT),
    *cases("models.0.modified_at", WRONG_TEXT),
    *cases("models.0.details", [CANARY, 5, [CANARY]]),
    *cases("models.1.details.context_length", WRONG_COUNT),
]


@pytest.mark.parametrize(("path", "value", "expected"), TAG_CASES)
def test_malformed_model_list(path: str, value: Any, expected: str) -> None:
    data = mutated(TAGS, path, value)
    raises_protocol_error(lambda: CONNECTOR.parse_list_models(data), "ollama", expected)


def test_model_list_keeps_its_lenient_parts() -> None:
    """Unparseable times are unknown and nameless entries are skipped, as before."""
    data = mutated(mutated(TAGS, "models.0.modified_at", "yesterday"), "models.1", {"size": 1})
    models, cursor = CONNECTOR.parse_list_models(data)
    assert [(m.id, m.created) for m in models] == [("llama3.2:latest", None)] and cursor is None


# -- through a real socket, on asyncio and trio ----------------------------------------------------

@pytest.mark.anyio
async def test_malformed_200_is_a_protocol_error_over_http() -> None:
    bad = mutated(ANSWER, "message.content", {"secret": CANARY})
    await assert_refused_over_http(
        "ollama", Reply.json(bad), Reply.ndjson([ndjson(bad)]), Reply.ndjson([ndjson(STEP), ndjson(bad)]),
        answer_path="$.message.content", stream_path="$.message.content", partial="Hel")
