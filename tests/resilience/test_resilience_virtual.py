"""Timing, exact, on trio's virtual clock (RELIABILITY.md §8 R2, R4, R8, B1, B7, S3, L1-L3, L7).

Retries and rate limits are driven directly; whole connectors send through an in-memory
``httpx.MockTransport``, so no socket is involved and only virtual time passes: a figure here
holds on any machine, however loaded. The same behaviours against real loopback servers are in
test_resilience.py and test_stream_faults.py, which check there only what load cannot change.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import anyio
import httpx
import pytest
import trio.testing
from builders import build_connector

import llm_connectors as lc
from llm_connectors.resilience import CircuitBreakerConfig, RateLimit, RetryPolicy
from llm_connectors.resilience.ratelimit import Cooldown, RateLimiter
from llm_connectors.resilience.retry import RetryBudget, call_with_retries
from llm_connectors.testing.openai_wire import openai_chat_json, openai_sse_events

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    # autojump: whenever every task is asleep, the clock jumps to the next deadline.
    return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}


def failing(errors: list[lc.LLMConnectorError], times: list[float]) -> Any:
    async def attempt() -> str:
        times.append(anyio.current_time())
        if errors:
            raise errors.pop(0)
        return "ok"

    return attempt


@pytest.mark.parametrize(("retry_after", "expected"), [(0.25, 0.25), (2.0, 2.0), (20.0, 20.0)])
async def test_retry_after_is_honoured_exactly(retry_after: float, expected: float) -> None:
    times: list[float] = []
    error = lc.RateLimitError("slow", status_code=429, retry_after=retry_after)
    result = await call_with_retries(failing([error], times), policy=RetryPolicy(), deadline=None)
    assert result == "ok" and times[1] - times[0] == pytest.approx(expected, abs=1e-9)


async def test_backoff_uses_full_jitter_of_the_capped_exponential() -> None:
    times: list[float] = []
    errors: list[lc.LLMConnectorError] = [lc.ProviderError("x", status_code=503) for _ in range(5)]
    policy = RetryPolicy(max_retries=5, initial_delay=0.5, backoff_factor=2, max_delay=4, min_delay=0.05)
    draws = iter([0.5, 0.5, 0.5, 0.5, 0.001])
    await call_with_retries(failing(errors, times), policy=policy, deadline=None, jitter=lambda: next(draws))
    waits = [round(b - a, 9) for a, b in itertools.pairwise(times)]
    assert waits == [0.25, 0.5, 1.0, 2.0, 0.05]  # caps 0.5, 1, 2, 4(max), 4 -> jitter; the floor is 50 ms


async def test_long_retry_after_or_deadline_fails_over_without_sleeping() -> None:
    for error, deadline in [(lc.RateLimitError("x", retry_after=120.0), None),
                            (lc.ProviderError("x", retry_after=5.0), anyio.current_time() + 3.0)]:
        times: list[float] = []
        started = anyio.current_time()
        with pytest.raises(type(error)):
            await call_with_retries(failing([error], times), policy=RetryPolicy(), deadline=deadline)
        assert anyio.current_time() == started and len(times) == 1


async def test_not_retryable_errors_are_raised_at_once() -> None:
    for error in (lc.InvalidRequestError("x"), lc.AuthenticationError("x"),
                  lc.ProviderError("x", retryable=False)):
        times: list[float] = []
        with pytest.raises(type(error)):
            await call_with_retries(failing([error], times), policy=RetryPolicy(), deadline=None)
        assert len(times) == 1


async def test_retry_budget_caps_attempts_and_refills() -> None:
    budget = RetryBudget()
    attempts = 0

    async def always_503() -> str:
        nonlocal attempts
        attempts += 1
        raise lc.ProviderError("down", status_code=503)

    policy = RetryPolicy(max_retries=2, min_delay=0.0, initial_delay=0.01, max_delay=0.01)
    for _ in range(10_000):
        with pytest.raises(lc.ProviderError):
            await call_with_retries(always_503, policy=policy, deadline=None, budget=budget)
    assert attempts <= 10_100 and budget.tokens < budget.cost

    async def fine() -> str:
        return "ok"

    before = budget.tokens
    for _ in range(20):
        await call_with_retries(fine, policy=policy, deadline=None, budget=budget)
    assert budget.tokens == before + 20


# -- rate limiter ----------------------------------------------------------------------------

def limiter(**config: Any) -> RateLimiter:
    return RateLimiter("p", RateLimit(**config), Cooldown())


async def test_rpm_paced_with_its_burst_and_saturates() -> None:
    lim = limiter(requests_per_minute=60, burst=5)
    admitted: list[float] = []
    start = anyio.current_time()
    while anyio.current_time() - start < 600:  # ten virtual minutes, as fast as the limiter allows
        await lim.acquire(0, None)
        admitted.append(anyio.current_time())
    for i, t in enumerate(admitted):  # every rolling window of 60 s starting at an admission
        assert sum(1 for u in admitted[i:] if u < t + 60) <= 60 + 5
    assert admitted[:5] == [start] * 5 and admitted[5] - start == pytest.approx(1.0, abs=1e-9)  # then 1 a second
    assert len(admitted) >= 0.95 * 60 * 10


async def test_waiters_are_served_fifo_and_deadlines_fail_fast() -> None:
    lim = limiter(requests_per_minute=2)
    order: list[int] = []

    async def waiter(index: int) -> None:
        await lim.acquire(0, None)
        order.append(index)

    async with anyio.create_task_group() as tg:
        for index in range(8):
            tg.start_soon(waiter, index)
            await anyio.sleep(0.001)  # start in a known order
    assert order == list(range(8))
    now = anyio.current_time()
    with pytest.raises(lc.RateLimitError, match="would pass the call's deadline") as info:
        await lim.acquire(0, now + 1.0)
    assert anyio.current_time() == now and not info.value.retryable and info.value.fallback


async def test_cooldown_from_a_429_blocks_for_exactly_retry_after() -> None:
    lim = limiter()
    now = anyio.current_time()
    lim.cooldown.block(5.0, now)
    await lim.acquire(0, None)
    assert anyio.current_time() - now == pytest.approx(5.0, abs=1e-9)


async def test_token_reservations_reconcile_and_refund() -> None:
    lim = limiter(tokens_per_minute=1000, token_burst=1000)  # a bucket as big as the minute (Anthropic's)
    start = anyio.current_time()
    first = await lim.acquire(600, None)
    first.reconcile(100)  # the provider reported far less than reserved
    await lim.acquire(600, None)
    assert anyio.current_time() == start  # 100 + 600 fits at once
    third = await lim.acquire(300, None)
    assert anyio.current_time() == start
    third.refund()
    await lim.acquire(300, None)
    assert anyio.current_time() == start
    with pytest.raises(lc.RateLimitError, match="can never fit"):
        await lim.acquire(5000, None)


async def test_cancelled_waiters_leave_full_capacity() -> None:
    lim = limiter(tokens_per_minute=1000, token_burst=1000, max_concurrency=1)
    holder = await lim.acquire(1000, None)
    for _ in range(10_000):
        with anyio.move_on_after(0.001):
            await lim.acquire(10, None)
    holder.refund()
    holder.release()
    assert lim.tokens is not None and lim.tokens.level(anyio.current_time()) == 1000  # capacity back to 100 %
    assert lim.concurrency is not None and lim.concurrency.borrowed_tokens == 0


async def test_concurrency_slots() -> None:
    lim = limiter(max_concurrency=2)
    a = await lim.acquire(0, None)
    await lim.acquire(0, None)
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: anyio.sleep(3))
        await anyio.sleep(3)
        a.release()
        a.release()  # idempotent
    await lim.acquire(0, start + 10)
    assert anyio.current_time() - start == pytest.approx(3, abs=1e-9)


# -- whole connectors, on an in-memory transport ---------------------------------------------------

USER = [{"role": "user", "content": "Hi"}]


class Wire:
    """An in-memory OpenAI endpoint: answers each request with ``answer(request)`` and keeps it."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def connector(self, **settings: Any) -> lc.BaseConnector:
        return build_connector("openai", transport=httpx.MockTransport(self), **settings)


class Trickle(httpx.AsyncByteStream):
    """Stream body: each event after a (virtual) pause. No async generator, so nothing for GC to finalise."""

    def __init__(self, events: Sequence[bytes], pauses: Sequence[float]) -> None:
        self.events: Iterator[bytes] = iter(events)
        self.pauses: Iterator[float] = iter(pauses)

    def __aiter__(self) -> Trickle:
        return self

    async def __anext__(self) -> bytes:
        await anyio.sleep(next(self.pauses, 0.0))
        event = next(self.events, None)
        if event is None:
            raise StopAsyncIteration
        return event


def down(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"error": {"message": "down", "type": "server_error"}})


def up(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=openai_chat_json("up"))


def streaming(events: Sequence[bytes], pauses: Sequence[float]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"},
                                          stream=Trickle(events, pauses))


async def test_r4_long_retry_after_goes_to_the_fallback_at_once() -> None:
    busy = Wire(lambda request: httpx.Response(429, headers={"retry-after": "120"},
                                               json={"error": {"message": "wait", "type": "requests"}}))
    spare = Wire(up)
    started = anyio.current_time()
    async with lc.FallbackConnector([busy.connector(retry=RetryPolicy(), provider_id="busy"),
                                     spare.connector(provider_id="spare")]) as chain:
        resp = await chain.generate_chat("m", USER)
    assert (resp.provider, anyio.current_time()) == ("spare", started)  # no sleep at all
    assert (len(busy.requests), len(spare.requests)) == (1, 1)


async def test_r8_cancel_during_backoff_returns_at_the_cancel() -> None:
    wire = Wire(down)
    policy = RetryPolicy(max_retries=3, initial_delay=5, min_delay=5, max_delay=5, budget=False)
    async with wire.connector(retry=policy) as conn:
        started = anyio.current_time()
        with anyio.move_on_after(0.2) as scope:
            await conn.generate_chat("m", USER)
        assert scope.cancelled_caught and anyio.current_time() - started == pytest.approx(0.2, abs=1e-9)
        await anyio.sleep(60)  # past every backoff the policy would have slept
    assert len(wire.requests) == 1  # nothing was sent after the cancel


async def test_b1_open_circuit_answers_at_once_without_a_request() -> None:
    wire = Wire(down)
    async with wire.connector(circuit_breaker=CircuitBreakerConfig(failure_threshold=5)) as conn:
        for _ in range(5):  # the 5th, tripping call still gets the provider's own error
            with pytest.raises(lc.ProviderError):
                await conn.generate_chat("m", USER)
        opened = anyio.current_time()
        with pytest.raises(lc.CircuitOpenError):
            await conn.generate_chat("m", USER)
        assert anyio.current_time() == opened
    assert len(wire.requests) == 5


async def test_b7_the_chain_moves_on_at_once() -> None:
    sick, healthy = Wire(down), Wire(up)
    breaker = CircuitBreakerConfig(failure_threshold=2)
    started = anyio.current_time()
    async with lc.FallbackConnector([sick.connector(circuit_breaker=breaker, provider_id="sick"),
                                     healthy.connector(provider_id="healthy")]) as chain:
        for _ in range(5):  # 2 failures trip the breaker; the next 3 are refused without a request
            assert (await chain.generate_chat("m", USER)).provider == "healthy"
    assert anyio.current_time() == started and (len(sick.requests), len(healthy.requests)) == (2, 5)


async def test_s3_overall_stream_deadline_is_exact() -> None:
    events = openai_sse_events([f"t{i} " for i in range(1000)])
    wire = Wire(streaming(events, [0.0] + [0.05] * len(events)))  # never idle long enough for the read timeout
    async with wire.connector() as conn:
        started = anyio.current_time()
        with pytest.raises(lc.StreamInterruptedError) as info:
            await conn.generate_chat_stream("m", USER, timeout=0.5).collect()
    assert isinstance(info.value.__cause__, lc.TimeoutError)
    assert anyio.current_time() - started == pytest.approx(0.5, abs=1e-9)
