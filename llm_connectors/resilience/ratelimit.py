"""Client-side rate limiting on anyio: GCRA buckets, FIFO waiting, token reservations.

``aiolimiter`` and ``limits.aio`` are asyncio-only, so this is our own small limiter. Each
per-minute limit is a GCRA bucket (a token bucket kept as one number, the "theoretical arrival
time"): it refills continuously at the limit's rate and holds at most ``burst`` units, which is
how Anthropic describes its limits and how OpenAI enforces a minute's limit over shorter periods.
So in any window of ``w`` seconds at most ``rate * w + burst`` units are admitted, and a saturated
limiter admits the full rate. Waiters queue on a FIFO lock; a wait that would pass the call's
deadline raises :class:`RateLimitError` at once instead. ``shared_limiter.py`` is the same over
Redis, and ``redis_scripts.ACQUIRE`` the same arithmetic in Lua.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from ..errors import RateLimitError
from .config import RateLimit
from .ratelimit_headers import Headroom, headroom

__all__ = ["Bucket", "Cooldown", "Permit", "RateLimiter", "strictest"]

WINDOW = 60.0  # seconds a per-minute limit is per
EPSILON = 1e-9  # float slack: a wait this short is no wait
MAX_ROUNDS = 100_000  # waiting rounds per call; each sleeps, and the deadline bounds them in time
LIMITS = ("requests", "tokens", "cooldown", "concurrency")  # what a call can wait for


class Bucket:
    """GCRA: ``limit`` units per ``period`` seconds, at most ``capacity`` at once.

    ``tat`` is when the bucket will be full again; it may run ahead of now by ``capacity`` units
    (``interval`` seconds each) less what the next call needs. A call needing more than the
    capacity goes when the bucket is full and leaves it in debt, so the next call waits for it.
    ``pace`` (from the provider's headers) lengthens the interval until ``pace_until``.
    """

    __slots__ = ("capacity", "interval", "limit", "pace", "pace_until", "tat")

    def __init__(self, limit: float, capacity: float, period: float = WINDOW) -> None:
        self.limit = limit
        self.capacity = max(1.0, min(capacity, limit))
        self.interval = period / limit
        self.tat = -math.inf
        self.pace = 0.0
        self.pace_until = -math.inf

    def spacing(self, now: float) -> float:
        """Seconds per unit now: the limit's, or the provider's slower pace while it lasts."""
        return max(self.interval, self.pace) if now < self.pace_until else self.interval

    def wait_time(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` may go (0 now; ``inf`` never: it exceeds the limit on its own)."""
        if amount > self.limit:
            return math.inf
        spacing = self.spacing(now)
        wait = self.tat - now - (self.capacity - min(amount, self.capacity)) * spacing
        return wait if wait > EPSILON else 0.0

    def take(self, amount: float, now: float) -> None:
        self.tat = max(self.tat, now) + amount * self.spacing(now)

    def adjust(self, delta: float, now: float) -> None:
        """Count ``delta`` more units for an admitted call (negative: give them back)."""
        if delta > 0:
            self.take(delta, now)
        else:  # what flows back into a full bucket overflows: tat behind now means full
            self.tat += delta * self.spacing(now)

    def level(self, now: float) -> float:
        """Units that could go at once now."""
        return self.capacity - max(0.0, self.tat - now) / self.spacing(now)

    def pace_to(self, interval: float, until: float, now: float) -> bool:
        """Follow the provider's pace until ``until`` if slower than ours, else drop any earlier one.

        The units the bucket is ahead by stay the same; each is now as long as the new spacing, so
        the change applies to the very next call.
        """
        ahead = max(0.0, self.tat - now) / self.spacing(now)
        slowed = interval > self.interval and until > now
        self.pace, self.pace_until = (interval, until) if slowed else (0.0, -math.inf)
        if ahead > 0:
            self.tat = now + ahead * self.spacing(now)
        return slowed

    def rescale(self, limit: float, capacity: float, now: float, period: float = WINDOW) -> None:
        """A new limit (a process's share while shared state is away), keeping the debt in units."""
        ahead = max(0.0, self.tat - now) / self.interval
        self.limit, self.capacity, self.interval = limit, max(1.0, min(capacity, limit)), period / limit
        if ahead > 0:
            self.tat = now + ahead * self.interval


class Cooldown:
    """"Do not call this provider before T": set by a 429's Retry-After, or exhausted headers."""

    __slots__ = ("until",)

    def __init__(self) -> None:
        self.until = 0.0

    def block(self, seconds: float, now: float) -> None:
        self.until = max(self.until, now + seconds)

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)


class Permit:
    """One admitted call: reconcile its token reservation and give back its concurrency slot.

    ``waited`` is the seconds the call spent in the limiter; ``waits`` splits them by what held it
    (``requests``, ``tokens``, ``cooldown``, ``concurrency``; waiting behind earlier callers counts
    for what held those), and ``limit`` names the largest.
    """

    __slots__ = ("_bucket", "_limiter", "_released", "counted", "waited", "waits")

    def __init__(self, limiter: RateLimiter, bucket: Bucket | None, counted: int) -> None:
        self._limiter = limiter
        self._bucket = bucket  # where the reservation was counted (None: nowhere, or in Redis)
        self._released = False
        self.counted = counted  # tokens the call counts for now
        self.waited = 0.0
        self.waits: dict[str, float] = {}

    @property
    def limit(self) -> str | None:
        """The limit the call waited longest for (``None``: it did not wait)."""
        return max(self.waits, key=self.waits.__getitem__) if self.waits else None

    def reconcile(self, used_tokens: int | None) -> None:
        """Count what the provider reported instead of the reservation."""
        if used_tokens is not None:
            self._count(max(0, int(used_tokens)))

    def refund(self) -> None:
        """The call failed or was cancelled: its reserved tokens were not used."""
        self._count(0)

    def _count(self, amount: int) -> None:
        delta, self.counted = amount - self.counted, amount
        if delta and self._bucket is not None:
            self._bucket.adjust(delta, self._limiter.clock())

    def release(self) -> None:
        """Free the concurrency slot (idempotent; streams call it when they end)."""
        if not self._released:
            self._released = True
            if self._limiter.concurrency is not None:
                self._limiter.concurrency.release_on_behalf_of(self)


class RateLimiter:
    """The limits of one provider endpoint, shared by every connector to it on this event loop.

    Args:
        name: Provider id (errors).
        config: The limits; ``None``: only 429 cooldowns.
        cooldown: This loop's cooldown of the endpoint.
        clock: Seconds, monotonic (the event loop's; virtual in tests).
        period: Seconds a "per minute" limit is per (60; shorter only in tests).
    """

    def __init__(self, name: str, config: RateLimit | None, cooldown: Cooldown,
                 clock: Callable[[], float] = anyio.current_time, period: float = WINDOW) -> None:
        self.name = name
        self.config = config
        self.cooldown = cooldown
        self.clock = clock
        self.period = period
        self.requests = (Bucket(config.requests_per_minute, config.request_capacity, period)
                         if config and config.requests_per_minute else None)
        self.tokens = (Bucket(config.tokens_per_minute, config.token_capacity, period)
                       if config and config.tokens_per_minute else None)
        self.concurrency = (anyio.CapacityLimiter(config.max_concurrency)
                            if config and config.max_concurrency else None)
        self.slowdowns = 0  # times the provider's headers slowed this limiter down
        self._fifo = anyio.Lock()
        self._holding = "requests"  # what the head of the queue last waited for
        self._headers_lock = threading.Lock()
        self._unlimited = self.requests is None and self.tokens is None and self.concurrency is None

    @property
    def limits_tokens(self) -> bool:
        return self.tokens is not None

    async def acquire(self, tokens: int, deadline: float | None) -> Permit:
        """Wait (FIFO) until the call fits every limit, then admit it.

        Raises:
            RateLimitError: if the wait would pass ``deadline`` (not retryable here; a fallback
                chain moves on), or the call alone needs more tokens than the per-minute limit.
        """
        waits: dict[str, float] = {}
        if self._unlimited:  # the common case: only a 429 cooldown can hold the call
            now = self.clock()
            wait = self.cooldown.remaining(now)
            if wait > 0:
                if deadline is not None and now + wait > deadline:
                    raise self._too_long(wait, deadline)
                await anyio.sleep(wait)
                waits["cooldown"] = self.clock() - now
            return self._finish(Permit(self, None, 0), waits)
        await self._queue(deadline, waits)
        try:
            permit = await self._admit(tokens, deadline, waits)
        finally:
            self._fifo.release()
        await self._take_slot(permit, deadline, waits)
        return self._finish(permit, waits)

    async def _queue(self, deadline: float | None, waits: dict[str, float]) -> None:
        """Take a place in the FIFO queue; the time spent behind others counts for what held them."""
        try:
            self._fifo.acquire_nowait()  # uncontended: no cancel scope, no clock (the hot path)
            return
        except anyio.WouldBlock:
            pass
        started = self.clock()
        with anyio.move_on_after(_remaining(deadline, started)) as scope:
            await self._fifo.acquire()
        queued = self.clock() - started
        if queued > 0:
            waits[self._holding] = waits.get(self._holding, 0.0) + queued
        if scope.cancelled_caught:
            raise self._too_long(_remaining(deadline, started), deadline)

    async def _admit(self, tokens: int, deadline: float | None, waits: dict[str, float]) -> Permit:
        requests, bucket = self.requests, self.tokens
        for _ in range(MAX_ROUNDS):
            now = self.clock()
            wait, reason = self._wait(tokens, now)
            if wait <= 0:
                if requests is not None:
                    requests.take(1, now)
                if bucket is not None:
                    bucket.take(tokens, now)
                return Permit(self, bucket, tokens if bucket is not None else 0)
            await self._sleep(wait, reason, now, deadline, tokens, waits)
        raise self._gave_up()

    def _wait(self, tokens: int, now: float) -> tuple[float, str]:
        """The longest wait any limit imposes now, and which limit."""
        wait, reason = self.cooldown.remaining(now), "cooldown"
        if self.requests is not None:
            needed = self.requests.wait_time(1, now)
            if needed > wait:
                wait, reason = needed, "requests"
        if self.tokens is not None:
            needed = self.tokens.wait_time(tokens, now)
            if needed > wait:
                wait, reason = needed, "tokens"
        return wait, reason

    async def _sleep(self, wait: float, reason: str, now: float, deadline: float | None, tokens: int,
                     waits: dict[str, float]) -> None:
        """Sleep ``wait`` for ``reason``, unless it is forever or would pass the deadline."""
        if math.isinf(wait):
            limit = self.config.tokens_per_minute if self.config else None
            raise RateLimitError(
                f"a call needing ~{tokens} tokens can never fit tokens_per_minute={limit}; lower max_tokens or "
                "raise the limit", provider=self.name, retryable=False, code="local_rate_limit")
        if deadline is not None and now + wait > deadline:
            raise self._too_long(wait, deadline)
        self._holding = reason
        await anyio.sleep(wait)
        waits[reason] = waits.get(reason, 0.0) + (self.clock() - now)

    async def _take_slot(self, permit: Permit, deadline: float | None, waits: dict[str, float]) -> None:
        """Wait for a concurrency slot (always per process), refunding the permit if it never comes."""
        concurrency = self.concurrency
        if concurrency is None:
            return
        try:
            concurrency.acquire_on_behalf_of_nowait(permit)
            return
        except anyio.WouldBlock:
            pass
        started = self.clock()
        with anyio.move_on_after(_remaining(deadline, started)) as scope:
            await concurrency.acquire_on_behalf_of(permit)
        waits["concurrency"] = waits.get("concurrency", 0.0) + (self.clock() - started)
        if scope.cancelled_caught:
            permit.refund()
            raise self._too_long(_remaining(deadline, self.clock()), deadline, what="a free slot")

    @staticmethod
    def _finish(permit: Permit, waits: dict[str, float]) -> Permit:
        if waits:
            permit.waits = waits
            permit.waited = sum(waits.values())
        return permit

    def _too_long(self, wait: float, deadline: float | None, what: str = "the rate limit") -> RateLimitError:
        return RateLimitError(
            f"waiting for {what} of {self.name} would pass the call's deadline", provider=self.name,
            retry_after=wait if math.isfinite(wait) else None, retryable=False, code="local_rate_limit")

    def _gave_up(self) -> RateLimitError:
        return RateLimitError(f"gave up waiting for the rate limit of {self.name} after {MAX_ROUNDS} rounds",
                              provider=self.name, retryable=False, code="local_rate_limit")

    # -- what the provider says ------------------------------------------------------------------

    def note_retry_after(self, seconds: float) -> None:
        """Pause this provider for every caller: a 429's Retry-After, or exhausted limit headers."""
        with self._headers_lock:
            self.cooldown.block(seconds, self.clock())

    def observe_headers(self, headers: Mapping[str, Any]) -> bool:
        """Follow the provider's rate-limit headers (``adapt_to_headers``); ``True`` if they slowed us down.

        Nothing left of a limit: wait for its reset. Less left than our pace would use before the
        reset: pace at ``remaining / reset`` until then.
        """
        now = self.clock()
        slowed = False
        for seen in strictest(headroom(headers)):
            if seen.remaining <= 0:
                if seen.reset > 0:
                    self.note_retry_after(seen.reset)
                    slowed = True
                continue
            bucket = self.requests if seen.kind == "requests" else self.tokens
            if bucket is not None:
                slowed = self._pace(seen, bucket, now) or slowed
        self.slowdowns += slowed
        return slowed

    def _pace(self, seen: Headroom, bucket: Bucket, now: float) -> bool:
        with self._headers_lock:
            return bucket.pace_to(seen.interval, now + seen.reset, now)


def strictest(seen: list[Headroom]) -> list[Headroom]:
    """Per kind, the limit with the least left per second (Anthropic reports several token limits)."""
    best: dict[str, Headroom] = {}
    for item in seen:
        held = best.get(item.kind)
        if held is None or item.interval > held.interval:
            best[item.kind] = item
    return list(best.values())


def _remaining(deadline: float | None, now: float) -> float:
    return math.inf if deadline is None else max(0.0, deadline - now)
