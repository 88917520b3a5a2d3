"""Observability: per-provider stats, and hooks around every call.

    python examples/stats.py              # any usable provider; offline with the local extra

``conn.stats()`` keeps counters cheap enough to leave on: requests, successes, errors by kind,
retries, fallbacks, latency and time-to-first-token percentiles, tokens in and out, estimated
cost (``lc.set_price`` for models without a built-in price) and the circuit breaker's state.
Hooks see each call (audit logs, metrics, custom headers); with the ``otel`` extra every call
is also an OpenTelemetry span.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import anyio

import llm_connectors as lc

SHORT = [{"role": "system", "content": "Answer in one short sentence."},
         {"role": "user", "content": "What is the capital of Italy?"}]


def before(ctx: lc.HookContext) -> None:
    ctx.metadata["started"] = time.perf_counter()


def after(ctx: lc.HookContext, result: Any) -> None:
    seconds = time.perf_counter() - ctx.metadata.get("started", time.perf_counter())
    tokens = getattr(result.usage, "output_tokens", None)
    print(f"  hook: {ctx.operation} by {ctx.provider} ({ctx.model}) ok in {seconds:.2f} s, {tokens} tokens out")


def failed(ctx: lc.HookContext, error: lc.LLMConnectorError) -> None:
    print(f"  hook: {ctx.operation} by {ctx.provider} failed: {type(error).__name__}")


async def main() -> int:
    hooks = lc.Hooks(before_request=before, after_response=after, on_error=failed)
    try:
        conn = await lc.get_connector("auto", hooks=hooks)
    except lc.NoProviderAvailableError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    async with conn:
        print("calls:")
        await conn.generate_chat(None, SHORT, max_tokens=40)
        await conn.generate_chat_stream(None, SHORT, max_tokens=40).collect()
        if lc.Capability.EMBEDDINGS in conn.capabilities:
            await conn.generate_embedding(None, ["one text", "another"])
        try:
            await conn.generate_chat(None, SHORT, temperature=5)  # out of range: refused before any I/O
        except lc.InvalidRequestError as exc:
            print(f"  refused before sending: {exc.message}")
        stats = conn.stats()

    for provider, numbers in stats.items():
        latency, ttft = numbers["latency_s"], numbers["ttft_s"]
        print(f"\n{provider}: {numbers['requests']} requests, {numbers['successes']} ok, errors {numbers['errors']}")
        print(f"  latency p50/p95: {latency['p50']}/{latency['p95']} s; first token p50: {ttft['p50']} s")
        print(f"  tokens in/out: {numbers['input_tokens']}/{numbers['output_tokens']}; "
              f"estimated cost: ${numbers['estimated_cost_usd']:.6f}")
        print(f"  breaker: {(numbers.get('breaker') or {}).get('state', 'off')}")
    print("\nas JSON, for a metrics system:")
    print(json.dumps(stats, default=str)[:300] + "...")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
