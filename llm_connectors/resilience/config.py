"""Resilience settings (API.md §3): plain, validated, JSON-config friendly."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from ..errors import ConfigurationError

__all__ = ["CircuitBreakerConfig", "RateLimit", "RetryPolicy"]

T = TypeVar("T")


def _positive(owner: str, name: str, value: Any, *, allow_zero: bool = False, integer: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "an integer" if integer else "a number"
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{owner}.{name} must be {kind} {bound}, got {value!r}")


def coerce(cls: type[T], value: Any, *, what: str) -> T | None:
    """``cls`` from an instance, a dict of its fields, ``True`` (defaults) or ``None``/``False`` (off)."""
    if value is None or value is False:
        return None
    if value is True:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigurationError(f"unknown {what} setting(s) {unknown}; known: {sorted(known)}")
        return cls(**value)
    raise ConfigurationError(f"{what} must be a {cls.__name__}, a dict of its fields, True or False; "
                             f"got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one provider retries a failed call before the chain moves on.

    Only retryable failures are retried (408, 409, 429, 5xx, 529, connection errors, timeouts;
    the provider's ``x-should-retry`` overrides). The wait before retry ``n`` (0-based) is full
    jitter: ``uniform(0, min(max_delay, initial_delay * backoff_factor**n))``, at least
    ``min_delay``. A ``retry-after``/``retry-after-ms`` from the provider is honoured exactly
    when it is at most ``max_retry_after``; a longer one, or any wait that would pass the call's
    deadline, ends retrying at once so a fallback can serve.

    Attributes:
        max_retries: Retries after the first attempt (so ``max_retries + 1`` attempts at most).
        backoff_factor: Growth of the backoff cap per retry.
        initial_delay: Backoff cap of the first retry, in seconds.
        max_delay: Largest backoff cap, in seconds.
        min_delay: Smallest wait, in seconds.
        max_retry_after: Longest server-requested wait honoured, in seconds.
        budget: Use the process-wide retry budget (500 tokens, a retry costs 5, or 10 after a
            timeout; each clean success returns 1), so an outage cannot multiply traffic.
    """

    max_retries: int = 2
    backoff_factor: float = 2.0
    initial_delay: float = 0.5
    max_delay: float = 8.0
    min_delay: float = 0.05
    max_retry_after: float = 60.0
    budget: bool = True

    def __post_init__(self) -> None:
        _positive("RetryPolicy", "max_retries", self.max_retries, allow_zero=True, integer=True)
        for name in ("backoff_factor", "initial_delay", "max_delay", "max_retry_after"):
            _positive("RetryPolicy", name, getattr(self, name))
        _positive("RetryPolicy", "min_delay", self.min_delay, allow_zero=True)
        if self.backoff_factor < 1:
            raise ConfigurationError(f"RetryPolicy.backoff_factor must be >= 1, got {self.backoff_factor!r}")
        if self.min_delay > self.initial_delay or self.initial_delay > self.max_delay:
            raise ConfigurationError("RetryPolicy needs min_delay <= initial_delay <= max_delay")

    def backoff_cap(self, retry_index: int) -> float:
        """The upper bound of the jittered wait before retry ``retry_index`` (0-based)."""
        exponent = min(retry_index, 64)  # avoids float overflow for absurd retry counts
        return float(min(self.max_delay, self.initial_delay * self.backoff_factor ** exponent))


@dataclass(frozen=True, slots=True)
class CircuitBreakerConfig:
    """When a provider's circuit opens and how it recovers.

    Attributes:
        failure_threshold: Consecutive provider-health failures (5xx, 529, timeouts, connection
            errors, in-stream overloaded/api errors) that open the circuit. Client errors
            (400/401/403/404/422), 429 and cancellations never count.
        reset_timeout: Seconds the circuit stays open before one probe call is let through.
        success_threshold: Successful probes needed to close it again.
    """

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    success_threshold: int = 1

    def __post_init__(self) -> None:
        _positive("CircuitBreakerConfig", "failure_threshold", self.failure_threshold, integer=True)
        _positive("CircuitBreakerConfig", "reset_timeout", self.reset_timeout)
        _positive("CircuitBreakerConfig", "success_threshold", self.success_threshold, integer=True)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Client-side limits for one provider, shared by every connector to it in this process.

    Each per-minute limit is paced like the providers pace it (GCRA, a token bucket refilled
    continuously): after an idle spell up to ``burst`` requests (``token_burst`` tokens) may go at
    once, then calls are spaced evenly at the limit's rate, so in any window of ``w`` seconds at
    most ``limit * w / 60 + burst`` are admitted. Callers wait (FIFO) instead of getting errors,
    unless the wait would pass the call's deadline: then :class:`RateLimitError`.

    Attributes:
        requests_per_minute: The steady request rate.
        tokens_per_minute: The steady token rate. A call reserves its input estimate plus
            ``max_tokens`` (or ``default_output_tokens``), reconciled with the usage the provider
            reports and refunded if the call fails or is cancelled. A call larger than
            ``token_burst`` goes alone when the bucket is full, and the next waits until its
            tokens have flowed back; a call larger than ``tokens_per_minute`` can never go.
        max_concurrency: Calls (and open streams) in flight at once.
        default_output_tokens: Output reserved when a call sets no ``max_tokens``.
        burst: Requests that may go at once after an idle spell (the bucket's size). Default 1:
            strict, even pacing. OpenAI and Anthropic both say a per-minute limit may be enforced
            over shorter periods (60/min as 1/s), so requests sent faster than one second's share
            can earn 429s even under the minute's figure; raise it for a provider whose bucket you
            know holds more (Anthropic refills continuously up to the whole minute).
        token_burst: Tokens that may go at once after an idle spell. ``None``: half a second of
            the limit (``tokens_per_minute // 120``, at least 1). Calls are usually bigger than
            that, so each paces the next by its own size; small ones (embeddings, short prompts)
            go in small groups.
        adapt_to_headers: Also follow the provider's rate-limit headers
            (``x-ratelimit-remaining-*``/``-reset-*``, ``anthropic-ratelimit-*``): when what is
            left cannot last until its reset at our pace, slow to ``remaining / reset`` until
            then; when nothing is left, wait for the reset. With ``shared_state`` every process
            slows down. Off by default.
    """

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrency: int | None = None
    default_output_tokens: int = 1024
    adapt_to_headers: bool = False
    burst: int = 1
    token_burst: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute", "max_concurrency", "token_burst"):
            value = getattr(self, name)
            if value is not None:
                _positive("RateLimit", name, value, integer=True)
        _positive("RateLimit", "default_output_tokens", self.default_output_tokens, integer=True)
        _positive("RateLimit", "burst", self.burst, integer=True)
        for burst, limit in (("burst", "requests_per_minute"), ("token_burst", "tokens_per_minute")):
            value, per_minute = getattr(self, burst), getattr(self, limit)
            if value is not None and per_minute is not None and value > per_minute:
                raise ConfigurationError(f"RateLimit.{burst} ({value}) cannot exceed {limit} ({per_minute}): "
                                         "a bucket holds at most a minute of the limit")
        if not isinstance(self.adapt_to_headers, bool):
            raise ConfigurationError(f"RateLimit.adapt_to_headers must be True or False, got {self.adapt_to_headers!r}")

    @property
    def request_capacity(self) -> int:
        """Requests that may go at once."""
        return self.burst

    @property
    def token_capacity(self) -> int:
        """Tokens that may go at once (``token_burst``, or its default)."""
        if self.token_burst is not None:
            return self.token_burst
        return max(1, (self.tokens_per_minute or 0) // 120)
