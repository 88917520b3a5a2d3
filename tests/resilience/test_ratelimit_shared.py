"""The paced limiter in Redis: the same buckets as locally, and the provider's pace for every process (issue 19).

Two links to one real redis-server stand for two processes (tests/resilience/test_redis_multiprocess.py
has real ones). Times are read from the Redis server's clock (``SharedPermit.admitted_at``).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import llm_connectors as lc
from llm_connectors.resilience import RateLimit
from llm_connectors.resilience.ratelimit import Cooldown
from llm_connectors.resilience.shared import SharedState, link_for, scope_for
from llm_connectors.resilience.shared_limiter import SharedPermit, SharedRateLimiter

pytest_plugins = ["redis_server"]
pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.usefixtures("redis_client_installed")]
BASE = "http://provider.test/v1"


def process(url: str, n: int, **options: Any) -> SharedState:
    state = SharedState.from_url(url)
    return SharedState(state.url, key_prefix=state.key_prefix, timeout=0.25 + n / 1000, window_margin=0.0, **options)


def pair(url: str, config: RateLimit) -> tuple[SharedRateLimiter, SharedRateLimiter]:
    a, b = (SharedRateLimiter("p", config, Cooldown(), scope_for(process(url, n), "p", BASE)) for n in (1, 2))
    return a, b


async def admitted_at(lim: SharedRateLimiter, tokens: int = 0) -> float:
    permit = await lim.acquire(tokens, None)
    assert isinstance(permit, SharedPermit) and permit.admitted_at is not None
    permit.release()
    return permit.admitted_at / 1000


async def test_the_providers_pace_seen_by_one_process_paces_the_other(shared_url: str) -> None:
    a, b = pair(shared_url, RateLimit(requests_per_minute=600, adapt_to_headers=True))  # 0.1 s apart
    first = await admitted_at(b)
    # A hears that 2 requests are left for the next 3 s: 1.5 s apart for the whole fleet
    assert a.observe_headers({"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "3s"})
    link_for(a.scope.link.config).flush()
    second = await admitted_at(b)
    third = await admitted_at(b)
    assert second - first == pytest.approx(1.5, abs=0.1) and third - second == pytest.approx(1.5, abs=0.1)
    # Room again: A drops the pace it set, and B is back to the limit's 0.1 s at once
    assert not a.observe_headers({"x-ratelimit-remaining-requests": "590", "x-ratelimit-reset-requests": "1s"})
    link_for(a.scope.link.config).flush()
    fourth, fifth = await admitted_at(b), await admitted_at(b)
    assert fifth - fourth == pytest.approx(0.1, abs=0.05)


async def test_nothing_left_pauses_every_process_until_the_reset(shared_url: str) -> None:
    a, b = pair(shared_url, RateLimit(requests_per_minute=600, adapt_to_headers=True))
    await admitted_at(b)
    a.observe_headers({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1s"})
    link_for(a.scope.link.config).flush()
    started = anyio.current_time()
    with pytest.raises(lc.RateLimitError, match="would pass the call's deadline") as info:
        await b.acquire(0, started + 0.3)
    assert info.value.retry_after is not None and 0.6 < info.value.retry_after <= 1.0
    permit = await b.acquire(0, None)
    assert permit.limit == "cooldown" and 0.6 < permit.waited < 1.5


async def test_a_call_bigger_than_the_bucket_goes_alone_and_the_next_waits_for_its_tokens(shared_url: str) -> None:
    a, b = pair(shared_url, RateLimit(tokens_per_minute=6000, token_burst=100))  # 100 tokens a second
    await admitted_at(a, 500)  # from a full bucket of 100: 400 in debt
    with pytest.raises(lc.RateLimitError, match="would pass the call's deadline") as info:
        await b.acquire(50, anyio.current_time() + 0.2)
    assert info.value.retry_after is not None and 4.2 < info.value.retry_after <= 4.5  # 450 tokens to flow back
    assert info.value.retryable is False


async def test_losing_the_bucket_costs_at_most_one_burst(shared_url: str, redis_server: Any) -> None:
    a, b = pair(shared_url, RateLimit(requests_per_minute=60, burst=2))
    await admitted_at(a)
    await admitted_at(b)  # the burst of 2 is used: the next would wait 1 s
    client = redis_server.client()
    client.delete(a.scope.requests)  # a restart, an eviction, a FLUSHDB
    client.close()
    started = anyio.current_time()
    await admitted_at(a)
    await admitted_at(b)  # a full bucket again: 2 more at once, and no more
    assert anyio.current_time() - started < 0.5
    with pytest.raises(lc.RateLimitError, match="would pass the call's deadline"):
        await a.acquire(0, anyio.current_time() + 0.5)
