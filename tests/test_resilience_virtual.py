"""Timing of retries and rate limits, exact, on trio's virtual clock (RELIABILITY.md §8 R2, R4, L1-L3, L7)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import anyio
import pytest
import trio.testing
from hypothesis import given, settings, strategies as st

import llm_connectors as lc
from llm_connectors.resilience import RateLimit, RetryPolicy
from llm_connectors.resilience.ratelimit import Cooldown, RateLimiter, RollingWindow
from llm_connectors.resilience.retry import RetryBudget, call_with_retries

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


async def test_rpm_exact_over_rolling_minutes_and_saturates() -> None:
    lim = limiter(requests_per_minute=60)
    admitted: list[float] = []
    start = anyio.current_time()
    while anyio.current_time() - start < 600:  # ten virtual minutes, as fast as the limiter allows
        await lim.acquire(0, None)
        admitted.append(anyio.current_time())
    for i, t in enumerate(admitted):  # every rolling window of 60 s starting at an admission
        assert sum(1 for u in admitted[i:] if u < t + 60) <= 60
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
    lim = limiter(tokens_per_minute=1000)
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
    lim = limiter(tokens_per_minute=1000, max_concurrency=1)
    holder = await lim.acquire(1000, None)
    for _ in range(10_000):
        with anyio.move_on_after(0.001):
            await lim.acquire(10, None)
    holder.refund()
    holder.release()
    assert lim.tokens is not None and lim.tokens.total == 0
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


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 300, allow_nan=False), st.integers(1, 400)), max_size=80),
       st.integers(100, 1000))
def test_rolling_window_never_exceeds_its_limit(arrivals: list[tuple[float, int]], limit: int) -> None:
    """FIFO admission as the limiter does it: each caller waits behind the previous one."""
    window = RollingWindow(limit)
    admitted: list[tuple[float, int]] = []
    now = 0.0
    for at, amount in sorted(arrivals):
        now = max(now, at)
        wait = window.wait_time(amount, now)
        if math.isinf(wait):
            assert amount > limit
            continue
        now += wait
        assert window.wait_time(amount, now) == 0
        window.add(amount, now)
        admitted.append((now, amount))
    for i, (t, _) in enumerate(admitted):  # (1 ns of float slack at the window's edge)
        assert sum(a for u, a in admitted[i:] if u < t + 60 - 1e-6) <= limit
