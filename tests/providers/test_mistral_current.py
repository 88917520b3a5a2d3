"""Mistral against mistralai 3.7.0: reasoning effort ``max``, signed thinking blocks read and sent
back, documents (``document_url`` / ``file`` chunks), caching markers never sent, and the fake
server that refuses what the real API refuses. SDK parity for these shapes is in test_mistral.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from builders import build_connector

import llm_connectors as lc
from llm_connectors.testing import FakeServer
from llm_connectors.testing.mistral_wire import MistralFake, MistralWireKit
from llm_connectors.types import ReasoningBlock

pytestmark = pytest.mark.anyio
FIXTURES = Path(__file__).parents[1] / "fixtures" / "mistral"
BASE = "https://api.mistral.ai/v1"
MODEL = "mistral-small-latest"
PDF = "data:application/pdf;base64,JVBERi0xLjQKJcOkw7zDtsOfCg=="
SIGNED = ReasoningBlock(text="Okay, the user asks how to cross.", signature="c2lnbmF0dXJlLTE=")

make = partial(build_connector, "mistral")


def body_of(messages: Any, **options: Any) -> dict[str, Any]:
    conn = make()
    built = conn.build_chat_request(conn.prepare_chat(MODEL, messages, options, stream=False)).json
    assert isinstance(built, dict)
    return built


def reply(request: httpx.Request) -> httpx.Response:
    if json.loads(request.content).get("stream"):
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=(FIXTURES / "chat_stream_thinking_signed.sse").read_bytes())
    return httpx.Response(200, json=json.loads((FIXTURES / "chat_thinking_signed.json").read_text()))


# -- reasoning effort --------------------------------------------------------------------------------

@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
def test_every_sdk_reasoning_effort_is_sent_as_is(effort: str) -> None:
    assert body_of("Hi", reasoning_effort=effort)["reasoning_effort"] == effort


# -- thinking blocks with signatures -------------------------------------------------------------

async def test_signed_thinking_is_read_streamed_or_not() -> None:
    with respx.mock(base_url=BASE) as router:
        router.post("/chat/completions").mock(side_effect=reply)
        async with make() as conn:
            plain = await conn.generate_chat(MODEL, "How do I cross the road?")
            streamed = await conn.generate_chat_stream(MODEL, "How do I cross the road?").collect()
    assert plain.reasoning_blocks == [SIGNED]
    assert plain.content == "Look both ways, then cross."
    for field in ("content", "reasoning", "reasoning_blocks", "finish_reason", "usage"):
        assert getattr(streamed, field) == getattr(plain, field), field


async def test_unsigned_thinking_stays_one_block_per_chunk() -> None:
    with respx.mock(base_url=BASE) as router:
        router.post("/chat/completions").respond(json=json.loads((FIXTURES / "chat_thinking.json").read_text()))
        async with make() as conn:
            response = await conn.generate_chat(MODEL, "Hi")
    assert response.reasoning_blocks == [ReasoningBlock(text="Okay, the user asks how to cross.")]


async def test_the_answer_goes_back_with_its_signed_thinking_first() -> None:
    with respx.mock(base_url=BASE) as router:
        route = router.post("/chat/completions").mock(side_effect=reply)
        async with make() as conn:
            first = await conn.generate_chat(MODEL, "How do I cross the road?")
            await conn.generate_chat(MODEL, [{"role": "user", "content": "How do I cross the road?"},
                                             first.message, {"role": "user", "content": "And at night?"}])
    sent = json.loads(route.calls.last.request.content)["messages"][1]
    assert sent == {"role": "assistant", "prefix": False, "content": [
        {"type": "thinking", "thinking": [{"type": "text", "text": SIGNED.text}], "signature": SIGNED.signature},
        {"type": "text", "text": "Look both ways, then cross."}]}


@pytest.mark.parametrize("block", [
    ReasoningBlock(text="unsigned reasoning from a local server"),
    ReasoningBlock(redacted_data="EmwKAhgBEgy3va3pzix/LafPsn4a"),  # Claude's redacted thinking
], ids=["unsigned", "redacted"])
def test_reasoning_mistral_cannot_replay_is_not_sent(block: ReasoningBlock) -> None:
    messages = [{"role": "user", "content": "Hi"},
                lc.Message(role="assistant", content="Hello.", reasoning=(block,)),
                {"role": "user", "content": "Again"}]
    assert body_of(messages)["messages"][1] == {"role": "assistant", "content": "Hello.", "prefix": False}


def test_signed_thinking_with_tool_calls_and_no_text() -> None:
    message = lc.Message(role="assistant", content=None, reasoning=(SIGNED,),
                         tool_calls=(lc.ToolCall(id="D681PevKs", name="f", arguments={}),))
    sent = body_of([{"role": "user", "content": "Hi"}, message,
                    {"role": "tool", "tool_call_id": "D681PevKs", "content": "1"}])["messages"][1]
    assert sent["content"] == [{"type": "thinking", "thinking": [{"type": "text", "text": SIGNED.text}],
                                "signature": SIGNED.signature}]
    assert sent["tool_calls"][0]["id"] == "D681PevKs"


# -- documents and cache markers ------------------------------------------------------------------

def test_documents_capability_and_catalog() -> None:
    conn = make()
    assert lc.Capability.DOCUMENTS in conn.capabilities
    assert "document" in conn.model_info(MODEL).input_modalities


def test_documents_become_document_url_and_file_chunks_without_cache_control() -> None:
    parts = [{"type": "text", "text": "Read.", "cache_control": {"type": "ephemeral"}},
             {"type": "file", "file": {"file_data": PDF, "filename": "r.pdf"}, "cache_control": {"type": "ephemeral"}},
             {"type": "file", "file": {"url": "https://example.com/a.pdf", "filename": "a.pdf"}},
             {"type": "file", "file": {"file_id": "0b4f5a1e", "filename": "ignored.pdf"}}]
    assert body_of([{"role": "user", "content": parts}])["messages"][0]["content"] == [
        {"type": "text", "text": "Read."},
        {"type": "document_url", "document_url": PDF, "document_name": "r.pdf"},
        {"type": "document_url", "document_url": "https://example.com/a.pdf", "document_name": "a.pdf"},
        {"type": "file", "file_id": "0b4f5a1e"}]


def test_tool_cache_control_is_not_sent() -> None:
    tool = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}},
            "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    assert "cache_control" not in body_of("Hi", tools=[tool])["tools"][0]


def test_documents_in_a_system_message_are_refused() -> None:
    with pytest.raises(lc.InvalidRequestError, match="system messages take text only"):
        body_of([{"role": "system", "content": [{"type": "file", "file": {"file_id": "f"}}]},
                 {"role": "user", "content": "Hi"}])


# -- against the strict fake server -------------------------------------------------------------

@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(MistralFake()) as running:
        yield running


async def test_fake_takes_developer_documents_and_cache_markers(server: FakeServer) -> None:
    # developer -> system (Mistral has no such role), cache_control dropped: else the fake answers 422.
    messages = [{"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Summarise.", "cache_control": {"type": "ephemeral"}},
                    {"type": "file", "file": {"file_data": PDF, "filename": "r.pdf"}}]}]
    with anyio.fail_after(10):
        async with build_connector(MistralWireKit(), server.url) as conn:
            response = await conn.generate_chat(None, messages)
    assert response.finish_reason == "stop"
    sent = server.requests[-1].json()["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]


async def test_fake_refuses_what_mistral_refuses(server: FakeServer) -> None:
    with anyio.fail_after(10):
        async with build_connector(MistralWireKit(), server.url) as conn:
            with pytest.raises(lc.InvalidRequestError, match="cache_control"):
                await conn.generate_chat(None, "Hi", extra={"messages": [{"role": "user", "content": [
                    {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]}]})

