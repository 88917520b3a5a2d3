"""The rate limiter of one endpoint shared by every process through Redis.

Same semantics as the local :class:`~.ratelimit.RateLimiter`: exact rolling windows of
requests and tokens, a token reservation reconciled with the reported usage and refunded on
failure or cancellation, FIFO waiting, and :class:`RateLimitError` when a wait would pass the
call's deadline. The window itself lives in Redis (``redis_scripts.ACQUIRE``, on the server's
clock); within a process callers still queue FIFO, so one waiter per process polls Redis.

Each process also keeps a local log of its own admissions. While Redis is unavailable that log
is the limiter, at the process's share of each limit (``limit / processes``), so a process that
used much of the fleet's limit just before Redis went away keeps waiting for it. When Redis
returns, every process writes its last minute back (idempotently), so the shared windows count
the calls made meanwhile, and are whole again even if Redis restarted empty.
``max_concurrency`` stays per process.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import replace

import anyio

from ..errors import RateLimitError
from .config import RateLimit
from .ratelimit import WINDOW, Cooldown, Permit, RateLimiter, exhausted_for
from .shared import Scope, SharedUnavailable

__all__ = ["SharedPermit", "SharedRateLimiter"]

MAX_ROUNDS = 100_000  # waiting rounds per call; each sleeps, and the deadline bounds them in time
MAX_SLEEP = 1.0  # the head of the queue asks Redis again at least this often (refunds free room early)
DEGRADED_SLEEP = 0.25  # while degraded, look this often whether Redis is back (local checks cost nothing)
SEED_CHUNK = 1_000  # admissions written back per script call after an outage


class _Admission:
    """One admitted call, as both logs know it."""

    __slots__ = ("at", "member", "published", "token_entry")

    def __init__(self, member: str, at: float, token_entry: list[float] | None, published: int | None) -> None:
        self.member = member
        self.at = at  # on the limiter's clock
        self.token_entry = token_entry  # the local log's entry (what the call counts for now)
        self.published = published  # tokens Redis counts for it; None: admitted while Redis was away

    def tokens(self) -> int:
        entry = self.token_entry
        return int(entry[1]) if entry is not None and entry[2] else 0


class SharedPermit(Permit):
    """A :class:`Permit` whose reconcile and refund also reach the shared token log."""

    __slots__ = ("_admission", "_shared")

    def __init__(self, limiter: SharedRateLimiter, admission: _Admission | None, waited: float) -> None:
        super().__init__(limiter, admission.token_entry if admission is not None else None, waited)
        self._shared = limiter
        self._admission = admission

    def reconcile(self, used_tokens: int | None) -> None:
        super().reconcile(used_tokens)
        if used_tokens is not None and self._admission is not None:
            self._shared.publish_tokens(self._admission, max(0, int(used_tokens)))

    def refund(self) -> None:
        super().refund()
        if self._admission is not None:
            self._shared.publish_tokens(self._admission, 0)


class SharedRateLimiter(RateLimiter):
    """The limits of one endpoint, held in Redis for every process (one instance per event loop).

    Args:
        name: Provider id (errors).
        config: The limits for the whole fleet.
        cooldown: This loop's 429 cooldown (set at once, before Redis hears of it).
        scope: The endpoint's keys and link.
        window: Seconds of the rolling window (60; shorter only in tests). Each admission counts
            for this plus ``SharedState.window_margin``.
    """

    def __init__(self, name: str, config: RateLimit | None, cooldown: Cooldown, scope: Scope,
                 window: float = WINDOW) -> None:
        super().__init__(name, config, cooldown)
        self.fleet = config
        self.scope = scope
        self.window = window + scope.link.config.window_margin
        for log in (self.requests, self.tokens):
            if log is not None:
                log.period = window
        self._share = 1
        self._recent: deque[_Admission] = deque()  # this process's admissions in the window
        self._recoveries = scope.link.recoveries  # write the window back when the link recovers again

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
        started = self.clock()
        admission: _Admission | None = None
        if self.requests is None and self.tokens is None:
            await self._wait_for_cooldown(started, deadline)
        else:
            with anyio.move_on_after(_remaining(deadline, started)) as scope:
                await self._fifo.acquire()
            if scope.cancelled_caught:
                raise self._too_long(_remaining(deadline, started), deadline)
            try:
                admission = await self._admit_in_turn(tokens, deadline)
            finally:
                self._fifo.release()
        permit = SharedPermit(self, admission, 0.0)
        await self._take_slot(permit, deadline)
        permit.waited = self.clock() - started
        return permit

    async def _wait_for_cooldown(self, started: float, deadline: float | None) -> None:
        # No limits of our own: only a 429 cooldown, here or (as last read) anywhere in the fleet.
        for _ in range(MAX_ROUNDS):
            now = self.clock()
            wait = self.cooldown.remaining(now)
            status = await self.scope.status()
            if status is not None:
                wait = max(wait, status.cooldown_until - time.monotonic())  # the status keeps monotonic time
            if wait <= 0:
                return
            if deadline is not None and now + wait > deadline:
                raise self._too_long(wait, deadline)
            await anyio.sleep(min(wait, MAX_SLEEP))
        raise self._gave_up()

    async def _admit_in_turn(self, tokens: int, deadline: float | None) -> _Admission:
        fleet_tokens = self.fleet.tokens_per_minute if self.fleet else None
        for _ in range(MAX_ROUNDS):
            now = self.clock()
            wait = self.cooldown.remaining(now)
            if wait <= 0:
                if fleet_tokens is not None and tokens > fleet_tokens:
                    wait = math.inf
                else:
                    admission, wait = await self._try(tokens, now)
                    if admission is not None:
                        return admission
            if math.isinf(wait):
                raise RateLimitError(
                    f"a call needing ~{tokens} tokens can never fit tokens_per_minute={fleet_tokens}; lower "
                    "max_tokens or raise the limit", provider=self.name, retryable=False, code="local_rate_limit")
            if deadline is not None and now + wait > deadline:
                raise self._too_long(wait, deadline)
            await anyio.sleep(min(wait, MAX_SLEEP if self.scope.link.healthy else DEGRADED_SLEEP))
        raise self._gave_up()

    async def _try(self, tokens: int, now: float) -> tuple[_Admission | None, float]:
        """Admit now (in Redis, or locally while it is away), or say how long to wait."""
        scope, link = self.scope, self.scope.link
        if link.available():
            member = link.new_id()
            try:
                if link.recoveries != self._recoveries:
                    await self._write_back()
                reply = await link.run(link.script(
                    "ACQUIRE", [scope.requests, scope.tokens, scope.token_sum, scope.cooldown, scope.processes],
                    [self._limit("requests_per_minute"), self._limit("tokens_per_minute"), tokens, member,
                     round(self.window * 1000), link.process_id]))
            except SharedUnavailable:
                pass  # degraded from here on: the local share below decides
            else:
                if link.recoveries != self._recoveries:  # this very call found Redis back
                    with contextlib.suppress(SharedUnavailable):  # (if not now, on the next call)
                        await self._write_back()
                code, value = int(reply[0]), float(reply[1])
                scope.processes_seen = max(1, int(reply[2]))
                if code == 1:
                    return self._record(member, tokens, self.clock(), published=tokens), 0.0
                return None, (math.inf if code == -1 else value / 1000)
        self._rescale()
        amount = min(tokens, self.tokens.limit) if self.tokens is not None else 0  # a big call still fits, alone
        wait = 0.0
        if self.requests is not None:
            wait = max(wait, self.requests.wait_time(1, now))
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait_time(amount, now))
        if wait > 0:
            return None, wait
        return self._record(link.new_id(), amount, now, published=None), 0.0

    def _record(self, member: str, tokens: int, now: float, *, published: int | None) -> _Admission:
        # The local log holds every admission of this process, shared or not (see the module doc).
        token_entry = None
        if self.requests is not None:
            self.requests.trim(now)
            self.requests.add(1, now)
        if self.tokens is not None:
            self.tokens.trim(now)
            token_entry = self.tokens.add(tokens, now)
        recent = self._recent
        while recent and now - recent[0].at >= self.window:
            recent.popleft()
        admission = _Admission(member, now, token_entry, published if self.tokens is not None else None)
        recent.append(admission)
        return admission

    async def _write_back(self) -> None:
        """After an outage, put this process's last minute into the shared log (``ZADD NX``:
        what Redis still has is kept once), so the fleet's windows count every call again."""
        link, scope = self.scope.link, self.scope
        recoveries = link.recoveries
        now = self.clock()
        fresh = [a for a in self._recent if now - a.at < self.window]
        for start in range(0, len(fresh), SEED_CHUNK):
            args: list[object] = [round(self.window * 1000), int(self.requests is not None),
                                  int(self.tokens is not None)]
            for admission in fresh[start:start + SEED_CHUNK]:
                args += [admission.member, max(0, round((now - admission.at) * 1000)), admission.tokens()]
            await link.run(link.script("SEED", [scope.requests, scope.tokens, scope.token_sum], args))
        for admission in fresh:
            if self.tokens is not None:
                admission.published = admission.tokens()
        self._recoveries = recoveries

    def publish_tokens(self, admission: _Admission, amount: int) -> None:
        """Count ``amount`` tokens for an admitted call in Redis too (reconcile or refund)."""
        if self.tokens is None or admission.published is None or admission.published == amount:
            return  # not in Redis yet: the write-back sends the local log's current amount
        previous, admission.published = admission.published, amount
        link, scope = self.scope.link, self.scope
        link.fire(link.script("ADJUST", [scope.tokens, scope.token_sum], [admission.member, previous, amount]))

    def _limit(self, name: str) -> int:
        value = getattr(self.fleet, name) if self.fleet is not None else None
        return int(value or 0)

    def _rescale(self) -> None:
        """Set the local logs to this process's share of each limit (processes seen or expected)."""
        share = self.scope.share()
        if share == self._share or self.fleet is None:
            return
        self._share = share
        if self.requests is not None and self.fleet.requests_per_minute:
            self.requests.limit = max(1, self.fleet.requests_per_minute // share)
        if self.tokens is not None and self.fleet.tokens_per_minute:
            self.tokens.limit = max(1, self.fleet.tokens_per_minute // share)

    def local_limits(self) -> RateLimit | None:
        """The limits this process applies while Redis is unavailable."""
        if self.fleet is None:
            return None
        self._rescale()
        return replace(self.fleet, requests_per_minute=self.requests.limit if self.requests else None,
                       tokens_per_minute=self.tokens.limit if self.tokens else None)

    def note_retry_after(self, seconds: float) -> None:
        """Pause the endpoint here at once, and in every process through Redis."""
        super().note_retry_after(seconds)
        self.scope.publish_cooldown(seconds)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        seconds = exhausted_for(headers)
        if seconds:
            self.note_retry_after(seconds)

    def _gave_up(self) -> RateLimitError:
        return RateLimitError(f"gave up waiting for the rate limit of {self.name} after {MAX_ROUNDS} rounds",
                              provider=self.name, retryable=False, code="local_rate_limit")


def _remaining(deadline: float | None, now: float) -> float:
    return math.inf if deadline is None else max(0.0, deadline - now)
