"""Ollama against ollama 0.6.3: ``reasoning_effort`` as ``think``, tool results named and sent
without ids, documents refused before I/O, caching markers never sent. SDK parity for these
shapes is in test_ollama.py (sdk_requests/ollama-0.6.3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import respx
from builders import build_connector

import llm_connectors as lc
from llm_connectors.connectors.ollama_request import translate_messages
from llm_connectors.testing.ollama_wire import ollama_chat_json

pytestmark = pytest.mark.anyio
BASE = "http://ollama.test:11434"
PDF = "data:application/pdf;base64,JVBERi0xLjQKJcOkw7zDtsOfCg=="


def body_of(messages: Any = "Hi", **options: Any) -> dict[str, Any]:
    conn = build_connector("ollama", BASE)
    built = conn.build_chat_request(conn.prepare_chat("llama3.2", messages, options, stream=False)).json
    assert isinstance(built, dict)
    return built


@pytest.mark.parametrize(("effort", "think"), [("none", False), ("low", "low"), ("medium", "medium"),
                                               ("high", "high"), ("max", "max")])
def test_reasoning_effort_is_think(effort: str, think: Any) -> None:
    body = body_of(reasoning_effort=effort)
    assert body["think"] is think if isinstance(think, bool) else body["think"] == think
    assert "reasoning_effort" not in body.get("options", {})


def test_effort_ollama_has_no_level_for_is_refused() -> None:
    with pytest.raises(lc.InvalidRequestError, match="reasoning_effort") as info:
        body_of(reasoning_effort="xhigh")
    assert "'high'" in str(info.value)


def test_provider_options_think_still_wins() -> None:
    conn = build_connector("ollama", BASE)
    request = conn.prepare_chat("llama3.2", "Hi", {"reasoning_effort": "low",
                                                   "provider_options": {"ollama": {"think": True}}}, stream=False)
    assert request.extra == {"think": True}  # merged over the body after it is built


def test_tool_results_are_named_and_no_ids_are_sent() -> None:
    messages = [{"role": "user", "content": "Weather?"},
                {"role": "assistant", "tool_calls": [{"id": "call_7", "name": "get_weather", "arguments": {}}]},
                {"role": "tool", "tool_call_id": "call_7", "content": "21C"},
                {"role": "tool", "tool_call_id": "from-elsewhere", "name": "get_time", "content": "noon"}]
    sent = body_of(messages)["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {}}}]
    assert sent[2:] == [{"role": "tool", "content": "21C", "tool_name": "get_weather"},
                        {"role": "tool", "content": "noon", "tool_name": "get_time"}]


def test_cache_control_is_never_sent() -> None:
    tool = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}},
            "cache_control": {"type": "ephemeral"}}
    part = {"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}
    body = body_of([{"role": "user", "content": [part]}], tools=[tool])
    assert "cache_control" not in json.dumps(body)


async def test_documents_are_refused_before_io() -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "Read."},
                                           {"type": "file", "file": {"file_data": PDF, "filename": "r.pdf"}}]}
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.post("/api/chat").respond(json=ollama_chat_json("hi"))
        async with build_connector("ollama", BASE) as conn:
            assert lc.Capability.DOCUMENTS not in conn.capabilities
            with pytest.raises(lc.UnsupportedCapabilityError, match="document"):
                await conn.generate_chat(None, [message])
    assert not route.called


def test_the_translator_refuses_documents_too() -> None:
    # Pure translation never drops a document silently, whoever calls it.
    message = lc.Message(role="user", content=[{"type": "file", "file": {"file_id": "f"}}])
    with pytest.raises(lc.UnsupportedCapabilityError, match="no documents"):
        translate_messages([message], "ollama")


def test_developer_turns_become_system() -> None:
    sent = body_of([{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}])["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
