"""Quickstart: one chat and one stream through the first usable provider.

    python examples/quickstart.py                      # a key, Ollama, or the offline model
    OPENAI_API_KEY=sk-... python examples/quickstart.py

``get_connector("auto")`` tries every provider that is usable now (an API key is set, Ollama
answers) and, last, the offline model of the ``local`` extra. With none of them it says what to
set and exits with status 2.
"""

from __future__ import annotations

import sys

import anyio

import llm_connectors as lc

MESSAGES = [{"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"}]


async def main() -> int:
    try:
        conn = await lc.get_connector("auto")
    except lc.NoProviderAvailableError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    async with conn:
        try:
            resp = await conn.generate_chat(None, MESSAGES, max_tokens=64)
            print(f"[{resp.provider}/{resp.model}] {resp.content}")

            async with conn.generate_chat_stream(None, MESSAGES, max_tokens=64) as stream:
                async for chunk in stream:
                    print(chunk.delta, end="", flush=True)
            usage = stream.response.usage
            print(f"\n(streamed by {stream.response.provider}; tokens in/out: "
                  f"{usage.input_tokens}/{usage.output_tokens})")
        except lc.LLMConnectorError as exc:
            print(f"the call failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
