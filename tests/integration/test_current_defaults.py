"""What a user who names no model gets, on each provider's default model, for the neutral options a
user would pass: temperature, a tool with tool_choice "required", a PDF, reasoning_effort "high" and a
cached system prompt. Each provider either sends it (in the shapes the SDK-parity tests pin piece by
piece, to a fake that refuses what the real API refuses) or fails before I/O naming the rule."""

from __future__ import annotations

from typing import Any

import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors.testing import FakeServer
from llm_connectors.testing.claude_wire import ClaudeFake
from llm_connectors.testing.mistral_wire import MistralFake
from llm_connectors.testing.ollama_wire import OllamaFake
from llm_connectors.testing.openai_wire import OpenAIFake

pytestmark = pytest.mark.anyio
PDF = "data:application/pdf;base64,JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDw+PgplbmRvYmoKdHJhaWxlcgo8PD4+CiUlRU9G"
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": [{"type": "text", "text": "You answer from the attached report.",
                                    "cache_control": {"type": "ephemeral"}}]},
    {"role": "user", "content": [{"type": "file", "file": {"file_data": PDF, "filename": "report.pdf"}},
                                 {"type": "text", "text": "What is the weather in the report's city?"}]},
]
NEUTRAL: dict[str, Any] = {"temperature": 0.7, "tools": [TOOL], "tool_choice": "required",
                           "reasoning_effort": "high", "max_tokens": 2000}


async def send(provider: str, fake: Any, **options: Any) -> tuple[lc.ChatResponse | Exception, list[dict[str, Any]]]:
    with FakeServer(fake) as server:
        async with build_connector(provider, server.url) as conn:
            try:
                outcome: lc.ChatResponse | Exception = await conn.generate_chat(None, MESSAGES, **NEUTRAL, **options)
            except lc.LLMConnectorError as exc:
                outcome = exc
        return outcome, [r.json() for r in server.requests if r.method == "POST"]


async def test_claude_refuses_before_io_naming_the_rules_and_sends_the_rest_with_drop_params() -> None:
    refused, sent = await send("claude", ClaudeFake())
    assert isinstance(refused, lc.InvalidRequestError) and sent == []
    assert "claude-sonnet-5-5" in str(refused) and "'temperature'" in str(refused) and "'tool_choice'" in str(refused)
    answer, (body,) = await send("claude", ClaudeFake("Sunny."), drop_params=True)
    assert isinstance(answer, lc.ChatResponse) and answer.content.startswith("Sunny.")
    assert "temperature" not in body and "tool_choice" not in body
    assert body["system"] == [{"type": "text", "text": "You answer from the attached report.",
                               "cache_control": {"type": "ephemeral"}}]
    document = body["messages"][0]["content"][0]
    assert document["type"] == "document" and document["source"]["media_type"] == "application/pdf"
    assert body["output_config"]["effort"] == "high" and body["thinking"]["type"] == "adaptive"
    assert body["tools"][0]["name"] == "get_weather" and body["max_tokens"] == 2000


async def test_openai_sends_every_neutral_option() -> None:
    answer, (body,) = await send("openai", OpenAIFake("Sunny."))
    assert isinstance(answer, lc.ChatResponse), answer
    assert body["model"] == "gpt-5.4-mini" and body["temperature"] == 0.7 and body["tool_choice"] == "required"
    assert body["reasoning_effort"] == "high" and body["max_completion_tokens"] == 2000
    system, user = body["messages"]
    assert "cache_control" not in system["content"][0]  # OpenAI caches by prefix: the marker is not sent
    assert user["content"][0] == {"type": "file", "file": {"file_data": PDF, "filename": "report.pdf"}}


async def test_mistral_sends_every_neutral_option() -> None:
    answer, (body,) = await send("mistral", MistralFake())
    assert isinstance(answer, lc.ChatResponse), answer
    assert body["temperature"] == 0.7 and body["tool_choice"] == "any" and body["reasoning_effort"] == "high"
    document = body["messages"][1]["content"][0]
    assert document["type"] == "document_url" and document["document_url"] == PDF
    assert "cache_control" not in body["messages"][0]["content"][0]


async def test_ollama_refuses_the_document_before_io() -> None:
    refused, sent = await send("ollama", OllamaFake())
    assert isinstance(refused, lc.UnsupportedCapabilityError) and sent == []
    assert "document" in str(refused)
