"""Per-provider counters cheap enough to leave on: a few integer adds per call."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from ..types import Usage

_SAMPLES = 2048  # latency samples kept per provider for percentiles


def _percentiles(samples: deque[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(samples)
    last = len(ordered) - 1

    def pick(q: float) -> float:
        return round(ordered[min(last, int(q * last + 0.5))], 6)

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


class ProviderStats:
    """Counters for one provider, as seen by one connector or chain."""

    __slots__ = ("cost", "errors", "fallbacks", "input_tokens", "latency", "limited", "limiter_wait",
                 "limiter_waits", "output_tokens", "requests", "retries", "slowdowns", "successes", "ttft")

    def __init__(self) -> None:
        self.requests = 0
        self.successes = 0
        self.errors: Counter[str] = Counter()
        self.retries = 0
        self.fallbacks = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0
        self.limiter_wait = 0.0
        self.limited = 0  # attempts that waited for the rate limiter
        self.limiter_waits: dict[str, float] = {}  # seconds waited, by limit
        self.slowdowns = 0  # times the provider's rate-limit headers slowed the limiter down
        self.latency: deque[float] = deque(maxlen=_SAMPLES)
        self.ttft: deque[float] = deque(maxlen=_SAMPLES)

    def record_success(self, seconds: float, usage: Usage | None, ttft: float | None = None,
                       cost: float | None = None) -> None:
        self.successes += 1
        self.latency.append(seconds)
        if ttft is not None:
            self.ttft.append(ttft)
        if usage is not None:  # counts are ints from our parsers; a third-party connector's may not be
            self.input_tokens += _count(usage.input_tokens)
            self.output_tokens += _count(usage.output_tokens)
        if isinstance(cost, (int, float)) and cost > 0:
            self.cost += cost

    def record_limiter_wait(self, waits: dict[str, float]) -> None:
        """One attempt waited for the rate limiter: seconds by limit (``requests``, ``tokens``, ...)."""
        self.limited += 1
        for limit, seconds in waits.items():
            self.limiter_waits[limit] = self.limiter_waits.get(limit, 0.0) + seconds
            self.limiter_wait += seconds

    def record_error(self, error: BaseException) -> None:
        self.errors[type(error).__name__] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "successes": self.successes,
            "errors": dict(self.errors),
            "error_count": sum(self.errors.values()),
            "retries": self.retries,
            "fallbacks": self.fallbacks,
            "latency_s": _percentiles(self.latency),
            "ttft_s": _percentiles(self.ttft),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "estimated_cost_usd": round(self.cost, 6),
            "limiter_wait_s": round(self.limiter_wait, 6),
            "limiter": {"waited": self.limited, "slowdowns": self.slowdowns,
                        "wait_s": {limit: round(seconds, 6) for limit, seconds in sorted(self.limiter_waits.items())}},
        }


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
