"""Retries on tenacity: only retryable failures, full jitter, Retry-After, deadline and budget aware."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from ..errors import LLMConnectorError, TimeoutError
from .config import RetryPolicy

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["RetryBudget", "call_with_retries"]

logger = logging.getLogger("llm_connectors.retry")
R = TypeVar("R")


class RetryBudget:
    """A token bucket that caps retries across all calls to one provider (AWS-style retry quota).

    A retry costs ``cost`` tokens (``timeout_cost`` after a timeout); a call that succeeds first
    time returns one token, a call that succeeds after retries returns what it spent. When the
    bucket is empty, failures go straight back to the caller (or the next provider) instead of
    multiplying an outage's traffic.
    """

    def __init__(self, capacity: int = 500, cost: int = 5, timeout_cost: int = 10) -> None:
        self.capacity = capacity
        self.cost = cost
        self.timeout_cost = timeout_cost
        self.tokens = capacity
        self._lock = threading.Lock()  # the sync API may drive one provider from several threads

    def withdraw(self, error: BaseException) -> int:
        """Take the price of one retry; return it, or 0 if the budget cannot pay."""
        price = self.timeout_cost if isinstance(error, TimeoutError) else self.cost
        with self._lock:
            if self.tokens < price:
                return 0
            self.tokens -= price
            return price

    def deposit(self, spent: int) -> None:
        """Refill after a success: what the call spent on retries, or 1 for a clean success."""
        with self._lock:
            self.tokens = min(self.capacity, self.tokens + (spent or 1))


async def call_with_retries(
    attempt: Callable[[], Awaitable[R]],
    *,
    policy: RetryPolicy,
    deadline: float | None,
    budget: RetryBudget | None = None,
    on_retry: Callable[[LLMConnectorError, float], None] | None = None,
    jitter: Callable[[], float] = random.random,
) -> R:
    """Run ``attempt`` until it succeeds or a failure should not be retried, then re-raise it.

    A failure is retried when it is ``retryable``, retries remain, the wait (the provider's
    Retry-After if it gave one and it is within ``policy.max_retry_after``, else jittered
    backoff) ends before ``deadline``, and the budget can pay. Otherwise the failure is raised
    at once, so a fallback chain can move on without sleeping.

    The first attempt runs directly; tenacity is only set up once that attempt has failed in a
    way that may be retried (most calls succeed first time, and building the retry machinery
    costs more than the call's own bookkeeping).
    """
    try:
        first = await attempt()
    except LLMConnectorError as exc:
        if not exc.retryable or policy.max_retries == 0:
            raise
        failed_first: LLMConnectorError | None = exc
    else:
        if budget is not None:
            budget.deposit(0)
        return first

    async def replay_then_attempt() -> R:
        # tenacity sees the first failure as its attempt 1, then makes the real retries.
        nonlocal failed_first
        if failed_first is not None:
            error, failed_first = failed_first, None
            raise error
        return await attempt()

    from tenacity import AsyncRetrying, stop_never  # imported at the first retry, not with the package

    spent = 0
    planned_wait = 0.0

    def should_retry(state: RetryCallState) -> bool:
        nonlocal spent, planned_wait
        outcome = state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if not isinstance(error, LLMConnectorError) or not error.retryable:
            return False
        retry_index = state.attempt_number - 1
        if retry_index >= policy.max_retries:
            return False
        wait = error.retry_after
        if wait is not None:
            if wait > policy.max_retry_after:
                return False  # the provider wants a long pause: let another provider serve now
        else:
            wait = max(policy.min_delay, jitter() * policy.backoff_cap(retry_index))
        if deadline is not None and anyio.current_time() + wait >= deadline:
            return False  # sleeping would spend the whole budget: fail over instead
        if budget is not None:
            price = budget.withdraw(error)
            if not price:
                logger.debug("retry budget exhausted; not retrying %s", type(error).__name__)
                return False
            spent += price
        planned_wait = wait
        if on_retry is not None:
            on_retry(error, wait)
        logger.debug("retrying after %s (status %s) in %.3f s", type(error).__name__, error.status_code, wait)
        return True

    retrying = AsyncRetrying(
        retry=should_retry,
        wait=lambda state: planned_wait,
        stop=stop_never,  # should_retry decides; tenacity only sequences and sleeps
        sleep=anyio.sleep,
        reraise=True,
    )
    result: R = await retrying(replay_then_attempt)
    if budget is not None:
        budget.deposit(spent)
    return result
