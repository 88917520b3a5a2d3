"""Tools: the model asks for a function call, we run it, and send back the result.

    python examples/tools.py              # any usable provider; offline with the local extra

Tools use OpenAI's function shape for every provider; tool calls come back as ``ToolCall``
objects with parsed ``arguments``. ``resp.message`` is the assistant turn (tool calls included),
ready to append to the conversation. Naming the tool in ``tool_choice`` makes even a small
local model call it: its arguments are then constrained to the tool's JSON schema. Some models
refuse a forced tool choice (Claude Sonnet 5.5: the model catalog says so); ``drop_params=True``
sends them the call without it, and they pick the tool themselves.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

import llm_connectors as lc

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


def get_weather(city: str) -> dict[str, Any]:
    """Our own function; a real one would call a weather service."""
    return {"city": city, "temperature_c": 21, "sky": "sunny"}


async def main() -> int:
    try:
        conn = await lc.get_connector("auto", drop_params=True)
    except lc.NoProviderAvailableError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant. Use the tool results to answer in one sentence."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    async with conn:
        resp = await conn.generate_chat(None, messages, tools=TOOLS, max_tokens=60,
                                        tool_choice={"type": "function", "function": {"name": "get_weather"}})
        print(f"[{resp.provider}] finish_reason={resp.finish_reason}")
        messages.append(resp.message)  # the assistant turn, with its tool calls
        for call in resp.tool_calls:
            result = get_weather(**call.arguments)
            print(f"tool call: {call.name}({json.dumps(call.arguments)}) -> {json.dumps(result)}")
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
        if not resp.tool_calls:
            print("the model answered without calling the tool")
            return 1

        # The same call streamed: fragments of the arguments are assembled into whole ToolCalls.
        streamed = await conn.generate_chat_stream(None, messages[:2], tools=TOOLS, max_tokens=60,
                                                   tool_choice="required").collect()
        print(f"streamed tool calls: {[(c.name, c.arguments) for c in streamed.tool_calls]}")

        final = await conn.generate_chat(None, messages, max_tokens=60)
        print(f"answer: {final.content.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
