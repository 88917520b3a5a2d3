"""Sync quickstart: the connectors from a plain script, with no asyncio and no ``await``.

    OPENAI_API_KEY=sk-... python examples/sync_quickstart.py

With no provider configured, or with LLM_CONNECTORS_EXAMPLE_OFFLINE=1, it starts a local fake
OpenAI-compatible server (``llm_connectors.testing``) and talks to that, so it runs offline.
The same code works in Jupyter, Django or Flask: see docs/sync.md.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import llm_connectors as lc
from llm_connectors import sync

# Provider id -> the environment variable that makes it usable.
CANDIDATES = [("claude", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY"), ("mistral", "MISTRAL_API_KEY"),
              ("ollama", "OLLAMA_HOST")]
OFFLINE_ANSWER = "Paris is the capital of France."


def configured_provider() -> str | None:
    for provider, variable in CANDIDATES:
        if os.environ.get(variable, "").strip():
            return provider
    return None


def offline_requested() -> bool:
    return os.environ.get("LLM_CONNECTORS_EXAMPLE_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def tour(conn: sync.SyncConnector) -> None:
    """One chat, one stream, three calls from threads at once, then the counters."""
    messages = [{"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": "What is the capital of France?"}]
    resp = conn.generate_chat(None, messages, max_tokens=64)
    print(f"[{resp.provider}/{resp.model}] {resp.content}")

    # `with` closes the HTTP response even if the loop stops early.
    with conn.generate_chat_stream(None, messages, max_tokens=64) as stream:
        for chunk in stream:
            print(chunk.delta, end="", flush=True)
    usage = stream.response.usage
    print(f"\n(tokens in/out: {usage.input_tokens}/{usage.output_tokens})")

    # One connector can be shared by many threads (a web server's workers, a thread pool).
    questions = ["Name a colour.", "Name a fruit.", "Name a planet."]

    def ask(question: str) -> str:
        return conn.generate_chat(None, [{"role": "user", "content": question}], max_tokens=32).content

    with ThreadPoolExecutor(max_workers=len(questions)) as pool:
        for question, answer in zip(questions, pool.map(ask, questions), strict=True):
            print(f"{question} -> {answer}")

    for provider, entry in conn.stats().items():
        print(f"{provider}: {entry['requests']} requests, {entry['error_count']} errors, "
              f"{entry['input_tokens']}/{entry['output_tokens']} tokens in/out")


def main() -> int:
    provider = None if offline_requested() else configured_provider()
    try:
        if provider is None:
            print("No provider configured (or LLM_CONNECTORS_EXAMPLE_OFFLINE=1): using a local fake server. "
                  "Set OPENAI_API_KEY, ANTHROPIC_API_KEY, MISTRAL_API_KEY or OLLAMA_HOST to use a real one.",
                  file=sys.stderr)
            from llm_connectors.testing import FakeServer
            from llm_connectors.testing.openai_wire import OpenAIFake

            with FakeServer(OpenAIFake(OFFLINE_ANSWER)) as server, \
                    sync.get_connector("openai", api_key="sk-offline", base_url=server.url + "/v1") as conn:
                tour(conn)
        else:
            with sync.get_connector(provider) as conn:
                tour(conn)
    except lc.LLMConnectorError as exc:
        print(f"{provider or 'offline'} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the request in flight was cancelled before this was raised
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
