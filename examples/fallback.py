"""Fallback and resilience, configured in code or as a dict (e.g. loaded from YAML).

    python examples/fallback.py           # runs offline: a dead endpoint, then what is usable

Order of the layers, chosen once: fallback -> cache -> retry -> circuit breaker -> rate
limiter -> connector. Retries handle transient failures of one provider; when they cannot, or
its circuit is open, or it lacks the capability, the next provider serves. A stream falls back
only before its first chunk.
"""

from __future__ import annotations

import sys

import anyio

import llm_connectors as lc

SHORT = [{"role": "system", "content": "Answer in one short sentence."},
         {"role": "user", "content": "Name a primary colour."}]


async def usable_providers() -> list[str]:
    """What get_connector("auto") would use here: keys in the environment, Ollama, the local model."""
    auto = await lc.get_connector("auto")
    async with auto:
        return [m.provider for m in auto.members] if isinstance(auto, lc.FallbackConnector) else [auto.provider]


async def main() -> int:
    try:
        usable = await usable_providers()
    except lc.NoProviderAvailableError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    # A provider that is down: nothing listens on port 9 of this machine.
    lc.register_openai_compatible("flaky", base_url="http://127.0.0.1:9/v1", replace=True)

    # In code: every setting typed, checked when the connector is built.
    chain = await lc.get_connector(
        primary="flaky:some-model",
        fallbacks=usable,
        retry=lc.RetryPolicy(max_retries=2, backoff_factor=2, initial_delay=0.05),
        circuit_breaker=lc.CircuitBreakerConfig(failure_threshold=3, reset_timeout=30),
        rate_limit={usable[0]: lc.RateLimit(requests_per_minute=60, max_concurrency=4)},
        cache=lc.CacheConfig(maxsize=256, ttl=300),
    )
    async with chain:
        # A member whose model refuses temperature (Claude Sonnet 5.5, per the model catalog) is
        # skipped before anything is sent; drop_params=True would have it answer without it.
        first = await chain.generate_chat(None, SHORT, max_tokens=60, temperature=0)
        # The same call again comes from the cache (complete answers only: not one cut by max_tokens).
        again = await chain.generate_chat(None, SHORT, max_tokens=60, temperature=0)
        stats = chain.stats()
    print(f"served by {first.provider}: {first.content.strip()}")
    print(f"same call again, from the cache: {again.content == first.content}")
    flaky = stats["flaky"]
    print(f"flaky: {flaky['retries']} retries, errors {flaky['errors']}, moved past {flaky['fallbacks']} time(s)")

    # As a dict: the same settings, e.g. from a YAML or JSON file.
    config = {
        "primary": "flaky:some-model",
        "fallbacks": usable,
        "retry_policy": {"max_retries": 1, "backoff_factor": 2, "initial_delay": 0.05},
        "circuit_breaker": {"failure_threshold": 3, "reset_timeout": 30},
    }
    async with lc.get_connector(config) as chain:
        resp = await chain.generate_chat(None, SHORT, max_tokens=60)
    print(f"from a dict config, served by {resp.provider}")

    # When every provider fails, one error carries each cause.
    lc.register_openai_compatible("flaky2", base_url="http://127.0.0.1:9/v2", replace=True)
    async with lc.get_connector(primary="flaky:m", fallbacks=["flaky2:m"], retry=False) as doomed:
        try:
            await doomed.generate_chat(None, SHORT)
        except lc.AllProvidersFailedError as exc:
            print(f"all failed: {[(e.provider, type(e).__name__) for e in exc.errors]}")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
