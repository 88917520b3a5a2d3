"""OpenAI's Responses API, the answer side: recorded responses and event streams (fixtures/openai/responses_*,
written from the API reference and openai 3.63.0 types/responses) parsed into ChatResponse, the same
shape streamed and not, typed errors from failed responses and ``error`` events, unknown events ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from builders import build_connector

import llm_connectors as lc
from llm_connectors.testing import FakeServer
from llm_connectors.testing.openai_responses_wire import sse_event
from llm_connectors.testing.openai_wire import OpenAIFake
from llm_connectors.types import ReasoningBlock, ToolCall, Usage

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]
BASE = "https://api.openai.com/v1"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "openai"
PRO = "gpt-5.5-pro"
FIELDS = ("content", "finish_reason", "native_finish_reason", "usage", "tool_calls", "id", "model", "reasoning",
          "reasoning_blocks", "raw", "provider")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sse(content: bytes) -> httpx.Response:
    return httpx.Response(200, content=content, headers={"content-type": "text/event-stream"})


@pytest.fixture
def mock() -> Any:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def conn() -> Any:
    async with build_connector("openai") as c:
        yield c


async def plain_and_streamed(mock: Any, conn: Any, name: str) -> tuple[Any, Any, list[Any]]:
    mock.post("/responses").mock(side_effect=lambda request: sse((FIXTURES / f"{name}.sse").read_bytes())
                                 if json.loads(request.content).get("stream")
                                 else httpx.Response(200, json=fixture(f"{name}.json")))
    plain = await conn.generate_chat(PRO, "Weather in Paris and Lyon?")
    chunks = []
    async with conn.generate_chat_stream(PRO, "Weather in Paris and Lyon?") as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return plain, stream.response, chunks


async def test_function_calls_reasoning_and_usage(mock: Any, conn: Any) -> None:
    plain, streamed, chunks = await plain_and_streamed(mock, conn, "responses_tool_call")
    data = fixture("responses_tool_call.json")
    assert plain.tool_calls == [ToolCall("call_Paris1", "get_weather", {"city": "Paris"}, '{"city":"Paris"}'),
                                ToolCall("call_Lyon2", "get_weather", {"city": "Lyon"}, '{"city":"Lyon"}')]
    assert (plain.finish_reason, plain.native_finish_reason, plain.content) == ("tool_calls", "completed", "")
    assert plain.usage == Usage(3120, 412, 3532, cache_read_tokens=2048, cache_write_tokens=0,
                                reasoning_tokens=384)
    summary = [s["text"] for s in data["output"][0]["summary"]]
    assert plain.reasoning == "\n\n".join(summary)
    assert plain.reasoning_blocks == [ReasoningBlock(text="\n\n".join(summary),
                                                     signature="rs_68f1a:" + data["output"][0]["encrypted_content"])]
    assert (plain.id, plain.model, plain.raw) == ("resp_68f1a001", "gpt-5.5-pro-2026-11-03", data)
    for field in FIELDS:  # stream-vs-non-stream parity
        assert getattr(streamed, field) == getattr(plain, field), field
    assert "".join(c.reasoning for c in chunks) == plain.reasoning  # the summary streams as it comes
    assert [c.id for chunk in chunks for c in chunk.tool_calls] == ["call_Paris1", "call_Lyon2"]
    assert chunks[-1].finish_reason == "tool_calls" and chunks[-1].usage == plain.usage


async def test_refusal_is_content_filter_with_its_text(mock: Any, conn: Any) -> None:
    plain, streamed, chunks = await plain_and_streamed(mock, conn, "responses_refusal")
    assert (plain.content, plain.finish_reason) == ("I'm sorry, I can't help with that.", "content_filter")
    for field in FIELDS:
        assert getattr(streamed, field) == getattr(plain, field), field
    assert "".join(c.refusal for c in chunks) == "".join(c.delta for c in chunks) == plain.content


@pytest.mark.parametrize(("name", "content", "finish", "native"), [
    ("responses_answer.json", "Paris: 18C and cloudy. Lyon: 20C.", "stop", "completed"),
    ("responses_incomplete.json", "The history of Paris begins", "length", "max_output_tokens"),
    ("responses_web_search.json", "It is 18C in Paris today.", "stop", "completed"),
])
async def test_answers(mock: Any, conn: Any, name: str, content: str, finish: str, native: str) -> None:
    mock.post("/responses").respond(json=fixture(name))
    response = await conn.generate_chat(PRO, "Hi")
    assert (response.content, response.finish_reason, response.native_finish_reason) == (content, finish, native)


async def test_built_in_tool_items_stay_in_raw(mock: Any, conn: Any) -> None:
    mock.post("/responses").respond(json=fixture("responses_web_search.json"))
    response = await conn.generate_chat(PRO, "Weather in Paris?", tools=[{"type": "web_search"}])
    (search,) = [item for item in response.raw["output"] if item["type"] == "web_search_call"]
    assert search["action"]["query"] == "Paris weather today" and response.tool_calls == []


async def test_encrypted_reasoning_without_summary_is_kept(mock: Any, conn: Any) -> None:
    mock.post("/responses").respond(json=fixture("responses_answer.json"))
    response = await conn.generate_chat(PRO, "Hi")
    assert response.reasoning == "" and response.reasoning_blocks[0].signature.startswith("rs_68f2a:gAAAA")
    assert response.message.reasoning[0].provider == "openai"


async def test_a_failed_response_is_a_typed_error(mock: Any, conn: Any) -> None:
    mock.post("/responses").respond(json=fixture("responses_failed.json"))
    with pytest.raises(lc.RateLimitError, match="Rate limit reached"):
        await conn.generate_chat(PRO, "Hi")


def _events(name: str) -> list[bytes]:
    return [block + b"\n\n" for block in (FIXTURES / name).read_bytes().split(b"\n\n") if block]


async def test_unknown_events_are_ignored(mock: Any, conn: Any) -> None:
    events = _events("responses_tool_call.sse")
    future = sse_event({"type": "response.some_event_from_2027", "sequence_number": 50, "delta": {"x": 1}})
    progress = sse_event({"type": "response.web_search_call.searching", "item_id": "ws_1", "output_index": 3,
                          "sequence_number": 51})
    mock.post("/responses").mock(side_effect=[sse(b"".join(events)),
                                              sse(b"".join([events[0], future, progress, *events[1:]]))])
    plain = await conn.generate_chat_stream(PRO, "Hi").collect()
    noisy = await conn.generate_chat_stream(PRO, "Hi").collect()
    for field in FIELDS:
        assert getattr(noisy, field) == getattr(plain, field), field


@pytest.mark.parametrize(("event", "error"), [
    ({"type": "error", "code": "rate_limit_exceeded", "message": "Slow down", "param": None}, lc.RateLimitError),
    ({"type": "error", "code": "server_error", "message": "boom", "param": None}, lc.ProviderError),
    ({"type": "response.failed", "response": {**fixture("responses_failed.json"),
                                              "error": {"code": "invalid_prompt", "message": "flagged"}}},
     lc.InvalidRequestError),
])
async def test_error_events_are_typed_errors(mock: Any, conn: Any, event: dict[str, Any],
                                             error: type[Exception]) -> None:
    first = _events("responses_refusal.sse")[0]
    mock.post("/responses").mock(return_value=sse(first + sse_event({**event, "sequence_number": 9})))
    with pytest.raises(error):
        await conn.generate_chat_stream(PRO, "Hi").collect()


async def test_error_after_text_interrupts_with_the_partial_text(mock: Any, conn: Any) -> None:
    events = _events("responses_refusal.sse")[:4]  # created, item added, part added, one delta
    error = sse_event({"type": "error", "code": "server_error", "message": "boom", "sequence_number": 9})
    mock.post("/responses").mock(return_value=sse(b"".join(events) + error))
    with pytest.raises(lc.StreamInterruptedError) as info:
        await conn.generate_chat_stream(PRO, "Hi").collect()
    assert info.value.partial == "I'm sorry, " and isinstance(info.value.__cause__, lc.ProviderError)


@pytest.mark.parametrize("cut", ["no end", "bad delta", "no type"])
async def test_broken_streams_are_protocol_errors(mock: Any, conn: Any, cut: str) -> None:
    events = _events("responses_tool_call.sse")
    if cut == "no end":
        events = events[:-1]
    elif cut == "bad delta":
        events.insert(3, sse_event({"type": "response.output_text.delta", "delta": 5, "sequence_number": 3}))
    else:
        events.insert(2, b'data: {"delta": "x"}\n\n')
    mock.post("/responses").mock(return_value=sse(b"".join(events)))
    with pytest.raises(lc.LLMConnectorError) as info:
        await conn.generate_chat_stream(PRO, "Hi").collect()
    assert isinstance(info.value, lc.ProtocolError) or isinstance(info.value.__cause__, lc.ProtocolError)


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(output=None),
    lambda d: d["output"][1].update(call_id=7),
    lambda d: d["output"][0].update(summary="text"),
    lambda d: d["usage"].update(input_tokens=-1),
])
async def test_malformed_answers_are_protocol_errors(mock: Any, conn: Any, mutate: Any) -> None:
    data = fixture("responses_tool_call.json")
    mutate(data)
    mock.post("/responses").respond(json=data)
    with pytest.raises(lc.ProtocolError, match="documented shape"):
        await conn.generate_chat(PRO, "Hi")


async def test_the_fake_speaks_responses_in_both_modes(openai_server: FakeServer, openai_fake: OpenAIFake) -> None:
    async with build_connector("openai", openai_server.url) as conn:
        plain = await conn.generate_chat(PRO, "Hi")
        streamed = await conn.generate_chat_stream(PRO, "Hi").collect()
    assert plain.content == streamed.content == openai_fake.text
    assert [r.path for r in openai_server.requests] == ["/v1/responses", "/v1/responses"]
    for field in ("content", "finish_reason", "usage", "id", "model", "raw"):
        assert getattr(streamed, field) == getattr(plain, field), field
