"""Retries, circuit breakers and rate limiters around every connector (see policies.py)."""

from .config import CircuitBreakerConfig, RateLimit, RetryPolicy
from .policies import Resilience, reset_shared_state

__all__ = ["CircuitBreakerConfig", "RateLimit", "Resilience", "RetryPolicy", "reset_shared_state"]
