"""Quickstart: one chat, one stream, through whichever provider is configured.

    OPENAI_API_KEY=sk-... python examples/quickstart.py

Without any provider configured it says which variables to set and exits with status 2.
"""

from __future__ import annotations

import os
import sys

import anyio

import llm_connectors as lc

# Provider id -> the environment variable that makes it usable.
CANDIDATES = [("claude", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY"), ("mistral", "MISTRAL_API_KEY"),
              ("ollama", "OLLAMA_HOST")]


def configured_provider() -> str | None:
    for provider, variable in CANDIDATES:
        if os.environ.get(variable, "").strip():
            return provider
    return None


async def main() -> int:
    provider = configured_provider()
    if provider is None:
        names = ", ".join(variable for _, variable in CANDIDATES)
        print(f"No provider is configured. Set one of: {names} (for example "
              "OPENAI_API_KEY=sk-... or OLLAMA_HOST=http://localhost:11434) and run again.", file=sys.stderr)
        return 2
    messages = [{"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": "What is the capital of France?"}]
    try:
        async with lc.get_connector(provider) as conn:
            resp = await conn.generate_chat(None, messages, max_tokens=64)
            print(f"[{resp.provider}/{resp.model}] {resp.content}")
            async with conn.generate_chat_stream(None, messages, max_tokens=64) as stream:
                async for chunk in stream:
                    print(chunk.delta, end="", flush=True)
            print(f"\n(tokens in/out: {stream.response.usage.input_tokens}/{stream.response.usage.output_tokens})")
    except lc.LLMConnectorError as exc:
        print(f"{provider} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
