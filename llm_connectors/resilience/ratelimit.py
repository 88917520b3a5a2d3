"""Client-side rate limiting on anyio: exact rolling windows, FIFO waiting, reservations.

``aiolimiter`` and ``limits.aio`` are asyncio-only, so this is our own small limiter. Each
limit is an exact log of the last 60 seconds (requests count 1, token reservations count what
they reserve), so no rolling minute ever exceeds the limit. Waiters queue on a FIFO lock; a wait
that would pass the call's deadline raises :class:`RateLimitError` at once instead.
"""

from __future__ import annotations

import email.utils
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import anyio

from ..errors import RateLimitError
from .config import RateLimit

__all__ = ["Cooldown", "Permit", "RateLimiter", "RollingWindow"]

WINDOW = 60.0


class RollingWindow:
    """Amounts admitted over the last ``period`` seconds, exactly."""

    __slots__ = ("_entries", "limit", "period", "total")

    def __init__(self, limit: int, period: float = WINDOW) -> None:
        self.limit = limit
        self.period = period
        self.total = 0
        self._entries: deque[list[float]] = deque()  # [admitted_at, amount, 1.0 while counted]

    def _expire(self, now: float) -> None:
        entries = self._entries
        horizon = now - self.period + 1e-9  # a nanosecond of slack absorbs float rounding at the edge
        while entries and entries[0][0] <= horizon:
            entry = entries.popleft()
            entry[2] = 0.0
            self.total -= int(entry[1])

    def wait_time(self, amount: int, now: float) -> float:
        """Seconds until ``amount`` fits (0 now, ``inf`` never: it exceeds the limit on its own)."""
        if amount > self.limit:
            return math.inf
        self._expire(now)
        excess = self.total + amount - self.limit
        if excess <= 0:
            return 0.0
        freed = 0
        for admitted_at, entry_amount, _ in self._entries:
            freed += int(entry_amount)
            if freed >= excess:
                return admitted_at + self.period - now
        return math.inf  # pragma: no cover - unreachable while amount <= limit

    def trim(self, now: float) -> None:
        """Forget what has left the window (for logs that are added to without being waited on)."""
        self._expire(now)

    def add(self, amount: int, now: float) -> list[float]:
        entry = [now, float(amount), 1.0]
        self._entries.append(entry)
        self.total += amount
        return entry

    def adjust(self, entry: list[float], amount: int) -> None:
        """Change what an admitted entry counts for (reconcile with usage, or 0 to refund)."""
        if entry[2]:  # expired entries no longer count, so changing them changes nothing
            self.total += amount - int(entry[1])
            entry[1] = float(amount)


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
    """One admitted call: reconcile its token reservation and give back its concurrency slot."""

    __slots__ = ("_limiter", "_released", "_token_entry", "waited")

    def __init__(self, limiter: RateLimiter, token_entry: list[float] | None, waited: float) -> None:
        self._limiter = limiter
        self._token_entry = token_entry
        self._released = False
        self.waited = waited

    def reconcile(self, used_tokens: int | None) -> None:
        """Count what the provider reported instead of the reservation."""
        if self._token_entry is not None and used_tokens is not None and self._limiter.tokens is not None:
            self._limiter.tokens.adjust(self._token_entry, used_tokens)

    def refund(self) -> None:
        """The call failed or was cancelled: its reserved tokens were not used."""
        if self._token_entry is not None and self._limiter.tokens is not None:
            self._limiter.tokens.adjust(self._token_entry, 0)

    def release(self) -> None:
        """Free the concurrency slot (idempotent; streams call it when they end)."""
        if not self._released:
            self._released = True
            if self._limiter.concurrency is not None:
                self._limiter.concurrency.release_on_behalf_of(self)


class RateLimiter:
    """The limits of one provider endpoint, shared by every connector to it on this event loop."""

    def __init__(self, name: str, config: RateLimit | None, cooldown: Cooldown,
                 clock: Callable[[], float] = anyio.current_time) -> None:
        self.name = name
        self.config = config
        self.cooldown = cooldown
        self.clock = clock
        self.requests = RollingWindow(config.requests_per_minute) if config and config.requests_per_minute else None
        self.tokens = RollingWindow(config.tokens_per_minute) if config and config.tokens_per_minute else None
        self.concurrency = (anyio.CapacityLimiter(config.max_concurrency)
                            if config and config.max_concurrency else None)
        self._fifo = anyio.Lock()
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
        started = self.clock()
        if self._unlimited:  # the common case: only a 429 cooldown can hold the call
            wait = self.cooldown.remaining(started)
            if wait > 0:
                if deadline is not None and started + wait > deadline:
                    raise self._too_long(wait, deadline)
                await anyio.sleep(wait)
            return Permit(self, None, self.clock() - started)
        token_entry: list[float] | None = None
        with anyio.move_on_after(_remaining(deadline, started)) as scope:
            await self._fifo.acquire()
        if scope.cancelled_caught:
            raise self._too_long(_remaining(deadline, started), deadline)
        try:
            while True:
                now = self.clock()
                wait = self.cooldown.remaining(now)
                if self.requests is not None:
                    wait = max(wait, self.requests.wait_time(1, now))
                if self.tokens is not None:
                    wait = max(wait, self.tokens.wait_time(tokens, now))
                if wait <= 0:
                    break
                if math.isinf(wait):
                    raise RateLimitError(
                        f"a call needing ~{tokens} tokens can never fit tokens_per_minute="
                        f"{self.config.tokens_per_minute if self.config else '?'}; lower max_tokens or raise "
                        "the limit", provider=self.name, retryable=False, code="local_rate_limit")
                if deadline is not None and now + wait > deadline:
                    raise self._too_long(wait, deadline)
                await anyio.sleep(wait)
            if self.requests is not None:
                self.requests.add(1, now)
            if self.tokens is not None:
                token_entry = self.tokens.add(tokens, now)
        finally:
            self._fifo.release()
        permit = Permit(self, token_entry, 0.0)
        await self._take_slot(permit, deadline)
        permit.waited = self.clock() - started
        return permit

    async def _take_slot(self, permit: Permit, deadline: float | None) -> None:
        """Wait for a concurrency slot (always per process), refunding the permit if it never comes."""
        if self.concurrency is not None:
            with anyio.move_on_after(_remaining(deadline, self.clock())) as scope:
                await self.concurrency.acquire_on_behalf_of(permit)
            if scope.cancelled_caught:
                permit.refund()
                raise self._too_long(_remaining(deadline, self.clock()), deadline, what="a free slot")

    def _too_long(self, wait: float, deadline: float | None, what: str = "the rate limit") -> RateLimitError:
        return RateLimitError(
            f"waiting for {what} of {self.name} would pass the call's deadline", provider=self.name,
            retry_after=wait if math.isfinite(wait) else None, retryable=False, code="local_rate_limit")

    def note_retry_after(self, seconds: float) -> None:
        """Pause this provider for every caller: a 429's Retry-After, or exhausted limit headers."""
        with self._headers_lock:
            self.cooldown.block(seconds, self.clock())

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Block until the reset when the provider says a limit is used up (``adapt_to_headers``)."""
        seconds = exhausted_for(headers)
        if seconds:
            self.note_retry_after(seconds)


def _remaining(deadline: float | None, now: float) -> float:
    return math.inf if deadline is None else max(0.0, deadline - now)


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str, *, now: float | None = None) -> float | None:
    """Seconds until a rate-limit reset: Go durations (``1.5s``, ``6m0s``, ``12ms``), plain seconds,
    or an RFC 3339 / HTTP date (Anthropic). ``None`` when unreadable."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _GO_DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return sum(float(n) * _UNITS[u] for n, u in parts)
    wall = time.time() if now is None else now
    try:
        return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - wall)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - wall)


_HEADER_PAIRS = [
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
    ("anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"),
    ("anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset"),
]


def exhausted_for(headers: Mapping[str, Any], *, now: float | None = None) -> float:
    """The longest time any used-up limit in the headers needs to reset (0 if none is used up)."""
    longest = 0.0
    for remaining_name, reset_name in _HEADER_PAIRS:
        remaining = headers.get(remaining_name)
        if remaining is None or str(remaining).strip() != "0":
            continue
        seconds = parse_reset(str(headers.get(reset_name, "")), now=now)
        if seconds:
            longest = max(longest, min(seconds, WINDOW))  # never trust a reset beyond one window
    return longest
