"""Retries, circuit breakers and rate limiters around every connector (see pipeline.py)."""

from .config import CircuitBreakerConfig, RateLimit, RetryPolicy
from .pipeline import Resilience, reset_shared_state

__all__ = ["CircuitBreakerConfig", "RateLimit", "Resilience", "RetryPolicy", "reset_shared_state"]
