"""The rate limiter of one endpoint shared by every process through Redis.

Same semantics as the local :class:`~.ratelimit.RateLimiter`: GCRA buckets for requests and
tokens with the same burst, a token reservation reconciled with the reported usage and refunded
on failure or cancellation, FIFO waiting, and :class:`RateLimitError` when a wait would pass the
call's deadline. The buckets live in Redis (``redis_scripts.ACQUIRE``, on the server's clock), so
the fleet paces as one client; within a process callers still queue FIFO, so one waiter per
process asks Redis. The provider's pace from its headers (``adapt_to_headers``) and 429
cooldowns are written to Redis too, so every process slows down.

While Redis is unavailable each process paces itself at its share of each limit (``limit /
processes``, burst included), on local buckets. A bucket is only "how far ahead of its rate the
fleet is", at most one burst (plus one oversized token call), so losing it to an outage or a
restart costs at most that: nothing needs writing back when Redis returns.
``max_concurrency`` stays per process.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import anyio

from ..errors import RateLimitError
from .config import RateLimit
from .ratelimit import MAX_ROUNDS, WINDOW, Bucket, Cooldown, Permit, RateLimiter
from .ratelimit_headers import Headroom
from .shared import Scope, SharedUnavailable

__all__ = ["SharedPermit", "SharedRateLimiter"]

MAX_SLEEP = 1.0  # the head of the queue asks Redis again at least this often (refunds free room early)
DEGRADED_SLEEP = 0.25  # while degraded, look this often whether Redis is back (local checks cost nothing)
_WHY = {1: "requests", 2: "tokens", 3: "cooldown"}


class SharedPermit(Permit):
    """A :class:`Permit` whose reconcile and refund reach the bucket in Redis it was admitted by.

    ``admitted_at`` is the Redis server's clock (ms) when the script admitted it.
    """

    __slots__ = ("_shared", "admitted_at")

    def __init__(self, limiter: SharedRateLimiter, counted: int, admitted_at: float | None = None) -> None:
        super().__init__(limiter, None, counted)
        self._shared = limiter
        self.admitted_at = admitted_at

    def _count(self, amount: int) -> None:
        delta = amount - self.counted
        super()._count(amount)
        if delta:
            self._shared.publish_tokens(delta)


class SharedRateLimiter(RateLimiter):
    """The limits of one endpoint, held in Redis for every process (one instance per event loop).

    Args:
        name: Provider id (errors).
        config: The limits for the whole fleet.
        cooldown: This loop's 429 cooldown (set at once, before Redis hears of it).
        scope: The endpoint's keys and link.
        period: Seconds a "per minute" limit is per (60; shorter only in tests). The fleet paces
            at each limit per ``period + SharedState.window_margin``.
    """

    def __init__(self, name: str, config: RateLimit | None, cooldown: Cooldown, scope: Scope,
                 period: float = WINDOW) -> None:
        super().__init__(name, config, cooldown, period=period)
        self.fleet = config
        self.scope = scope
        self.fleet_period = period + scope.link.config.window_margin
        self._share = 1
        self._paced: dict[str, bool] = {}  # kinds whose pace this process last set in Redis

    @property
    def shared(self) -> bool:
        """Whether the last decisions were made in Redis (``False``: degraded to the local share)."""
        return self.scope.link.healthy

    async def acquire(self, tokens: int, deadline: float | None) -> Permit:
        """Wait (FIFO in this process, then in Redis) until the call fits, then admit it.

        Raises:
            RateLimitError: the wait would pass ``deadline``, or the call alone needs more tokens
                than the per-minute limit. Never because Redis is unavailable.
        """
        waits: dict[str, float] = {}
        if self.requests is None and self.tokens is None:
            await self._wait_for_cooldown(deadline, waits)
            permit: Permit = SharedPermit(self, 0)
        else:
            await self._queue(deadline, waits)
            try:
                permit = await self._admit_in_turn(tokens, deadline, waits)
            finally:
                self._fifo.release()
        await self._take_slot(permit, deadline, waits)
        return self._finish(permit, waits)

    async def _wait_for_cooldown(self, deadline: float | None, waits: dict[str, float]) -> None:
        # No limits of our own: only a 429 cooldown, here or (as last read) anywhere in the fleet.
        for _ in range(MAX_ROUNDS):
            now = self.clock()
            wait = self.cooldown.remaining(now)
            status = await self.scope.status()
            if status is not None:
                wait = max(wait, status.cooldown_until - time.monotonic())  # the status keeps monotonic time
            if wait <= 0:
                return
            await self._nap(wait, "cooldown", now, deadline, waits)
        raise self._gave_up()

    async def _admit_in_turn(self, tokens: int, deadline: float | None, waits: dict[str, float]) -> Permit:
        fleet_tokens = self.fleet.tokens_per_minute if self.fleet else None
        for _ in range(MAX_ROUNDS):
            now = self.clock()
            wait, reason = self.cooldown.remaining(now), "cooldown"
            if wait <= 0:
                if fleet_tokens is not None and tokens > fleet_tokens:
                    wait, reason = math.inf, "tokens"
                else:
                    permit, wait, reason = await self._try(tokens, now)
                    if permit is not None:
                        return permit
            if math.isinf(wait):
                raise RateLimitError(
                    f"a call needing ~{tokens} tokens can never fit tokens_per_minute={fleet_tokens}; lower "
                    "max_tokens or raise the limit", provider=self.name, retryable=False, code="local_rate_limit")
            await self._nap(wait, reason, now, deadline, waits)
        raise self._gave_up()

    async def _nap(self, wait: float, reason: str, now: float, deadline: float | None,
                   waits: dict[str, float]) -> None:
        """Sleep towards ``wait`` (briefly: Redis may free room earlier), unless it passes the deadline."""
        if deadline is not None and now + wait > deadline:
            raise self._too_long(wait, deadline)
        self._holding = reason
        await anyio.sleep(min(wait, MAX_SLEEP if self.scope.link.healthy else DEGRADED_SLEEP))
        waits[reason] = waits.get(reason, 0.0) + (self.clock() - now)

    async def _try(self, tokens: int, now: float) -> tuple[Permit | None, float, str]:
        """Admit now (in Redis, or locally while it is away), or say how long to wait and for what."""
        scope, link = self.scope, self.scope.link
        if link.available():
            try:
                reply = await link.run(link.script(
                    "ACQUIRE", [scope.requests, scope.tokens, scope.cooldown, scope.processes, scope.request_pace,
                                scope.token_pace],
                    [*self._fleet_bucket("requests_per_minute", "request_capacity"),
                     *self._fleet_bucket("tokens_per_minute", "token_capacity"),
                     self._limit("tokens_per_minute"), tokens, link.process_id]))
            except SharedUnavailable:
                pass  # degraded from here on: the local share below decides
            else:
                code, value = int(reply[0]), float(reply[1])
                scope.processes_seen = max(1, int(reply[2]))
                if code == 1:
                    return SharedPermit(self, tokens if self.tokens is not None else 0, value), 0.0, ""
                return None, (math.inf if code == -1 else value / 1000), _WHY.get(int(reply[3]), "requests")
        self._rescale(now)
        amount = min(tokens, int(self.tokens.limit)) if self.tokens is not None else 0  # a big call still fits, alone
        wait, reason = self._wait(amount, now)
        if wait > 0:
            return None, wait, reason
        if self.requests is not None:
            self.requests.take(1, now)
        if self.tokens is not None:
            self.tokens.take(amount, now)
        return Permit(self, self.tokens, amount if self.tokens is not None else 0), 0.0, ""

    def _fleet_bucket(self, limit: str, capacity: str) -> tuple[float, int]:
        """(ms per unit, capacity) of a fleet bucket for the script; (0, 0) when there is no such limit."""
        per_minute = self._limit(limit)
        if not per_minute or self.fleet is None:
            return 0.0, 0
        return self.fleet_period * 1000 / per_minute, min(getattr(self.fleet, capacity), per_minute)

    def publish_tokens(self, delta: int) -> None:
        """Count ``delta`` more tokens for an admitted call in Redis (reconcile or refund)."""
        if self.tokens is None:
            return
        link, scope = self.scope.link, self.scope
        ms_per_token, _ = self._fleet_bucket("tokens_per_minute", "token_capacity")
        link.fire(link.script("ADJUST", [scope.tokens, scope.token_pace], [ms_per_token, delta]))

    def _limit(self, name: str) -> int:
        value = getattr(self.fleet, name) if self.fleet is not None else None
        return int(value or 0)

    def _rescale(self, now: float) -> None:
        """Set the local buckets to this process's share of each limit (processes seen or expected)."""
        share = self.scope.share()
        if share == self._share or self.fleet is None:
            return
        self._share = share
        for bucket, limit, capacity in ((self.requests, self.fleet.requests_per_minute, self.fleet.request_capacity),
                                        (self.tokens, self.fleet.tokens_per_minute, self.fleet.token_capacity)):
            if bucket is not None and limit:
                bucket.rescale(max(1, limit // share), max(1, capacity // share), now, self.period)

    def local_limits(self) -> RateLimit | None:
        """The limits this process applies while Redis is unavailable."""
        if self.fleet is None:
            return None
        self._rescale(self.clock())
        requests, tokens = self.requests, self.tokens
        return replace(self.fleet, requests_per_minute=int(requests.limit) if requests else None,
                       tokens_per_minute=int(tokens.limit) if tokens else None,
                       burst=int(requests.capacity) if requests else self.fleet.burst,
                       token_burst=int(tokens.capacity) if tokens else None)

    # -- what the provider says ------------------------------------------------------------------

    def note_retry_after(self, seconds: float) -> None:
        """Pause the endpoint here at once, and in every process through Redis."""
        super().note_retry_after(seconds)
        self.scope.publish_cooldown(seconds)

    def _pace(self, seen: Headroom, bucket: Bucket, now: float) -> bool:
        """Pace here, and in Redis for every process; a pace this process set is dropped when the
        provider says there is room again (one write per change, not one per response)."""
        slowed = super()._pace(seen, bucket, now)
        scope, link = self.scope, self.scope.link
        keys = [scope.request_pace, scope.requests] if seen.kind == "requests" else [scope.token_pace, scope.tokens]
        base, _ = (self._fleet_bucket("requests_per_minute", "request_capacity") if seen.kind == "requests"
                   else self._fleet_bucket("tokens_per_minute", "token_capacity"))
        if slowed:
            self._paced[seen.kind] = True
            link.fire(link.script("PACE", keys, [round(seen.interval * 1000, 3), round(seen.reset * 1000), base]))
        elif self._paced.pop(seen.kind, False):
            link.fire(link.script("PACE", keys, [0, 0, base]))
        return slowed
