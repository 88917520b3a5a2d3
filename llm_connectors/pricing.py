"""Estimated cost of a call, from a small built-in price table you can extend or override.

Prices are USD per million tokens, matched by the longest model-id prefix. They are never
fetched over the network: check your provider's pricing page and override what matters to you.

    lc.set_price("openai", "gpt-5.4-mini", input=0.75, output=4.50, cache_read=0.075)
    lc.estimate_cost("openai", "gpt-5.4-mini-2026-03-17", resp.usage)   # -> float | None
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .errors import ConfigurationError
from .types import Usage

__all__ = ["PRICES_AS_OF", "Price", "estimate_cost", "price_for", "set_price"]

#: When the built-in table was last checked against the providers' pricing pages.
PRICES_AS_OF = "2026-11"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. Cache prices default to the input price when not given."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cache_read", "cache_write"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ConfigurationError(f"Price.{name} must be a number >= 0 (USD per million tokens), got {value!r}")


_FREE = Price(0.0, 0.0, 0.0, 0.0)  # self-hosted: the model costs compute, not tokens
_BUILTIN: dict[str, dict[str, Price]] = {
    "claude": {  # platform.claude.com pricing; cache write = the 5-minute rate
        "claude-opus-5-5": Price(4.0, 20.0, 0.40, 5.0),
        "claude-opus-5": Price(5.0, 25.0, 0.50, 6.25),
        "claude-opus-4-5": Price(5.0, 25.0, 0.50, 6.25),
        "claude-opus-4-6": Price(5.0, 25.0, 0.50, 6.25),
        "claude-opus-4-7": Price(5.0, 25.0, 0.50, 6.25),
        "claude-opus-4-8": Price(5.0, 25.0, 0.50, 6.25),
        "claude-opus-4-1": Price(15.0, 75.0, 1.50, 18.75),
        "claude-opus-4-0": Price(15.0, 75.0, 1.50, 18.75),
        "claude-sonnet-4": Price(3.0, 15.0, 0.30, 3.75),
        "claude-sonnet-5": Price(2.0, 10.0, 0.20, 2.50),
        "claude-haiku-4-5": Price(1.0, 5.0, 0.10, 1.25),
    },
    "openai": {  # openai.com API pricing, standard tier, short context
        "gpt-5.5": Price(5.0, 30.0, 0.50),
        "gpt-5.4": Price(2.50, 15.0, 0.25),
        "gpt-5.4-mini": Price(0.75, 4.50, 0.075),
        "gpt-5.4-nano": Price(0.20, 1.25, 0.02),
        "gpt-5.2": Price(1.75, 14.0, 0.175),
        "gpt-5.1": Price(1.25, 10.0, 0.125),
        "text-embedding-3-small": Price(0.02, 0.0),
        "text-embedding-3-large": Price(0.13, 0.0),
    },
    "mistral": {  # mistral.ai pricing
        "mistral-large": Price(2.0, 6.0),
        "mistral-medium": Price(0.40, 2.0),
        "mistral-small": Price(0.10, 0.30),
        "mistral-embed": Price(0.10, 0.0),
    },
}
_prices: dict[str, dict[str, Price]] = {provider: dict(table) for provider, table in _BUILTIN.items()}
_free_providers = {"ollama", "local"}
_lock = threading.Lock()


def set_price(provider: str, model_prefix: str, price: Price | None = None, *, input: float | None = None,
              output: float | None = None, cache_read: float | None = None,
              cache_write: float | None = None) -> None:
    """Add or override the price of models whose id starts with ``model_prefix``."""
    if price is None:
        if input is None or output is None:
            raise ConfigurationError("set_price needs a Price or both input= and output= (USD per 1M tokens)")
        price = Price(input, output, cache_read, cache_write)
    with _lock:
        _prices.setdefault(provider, {})[model_prefix] = price


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``model`` at ``provider`` (longest matching prefix), or ``None`` if unknown."""
    if provider in _free_providers:
        return _FREE
    table = _prices.get(provider)
    if not table or not model:
        return None
    best: str | None = None
    for prefix in table:
        if model.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return table[best] if best is not None else None


def estimate_cost(provider: str, model: str, usage: Usage | None) -> float | None:
    """Estimated USD cost of one call, or ``None`` when the price or the usage is unknown."""
    if usage is None or (usage.input_tokens is None and usage.output_tokens is None):
        return None
    price = price_for(provider, model)
    if price is None:
        return None
    cache_read = usage.cache_read_tokens or 0
    cache_write = usage.cache_write_tokens or 0
    plain_input = max(0, (usage.input_tokens or 0) - cache_read - cache_write)
    total = (plain_input * price.input
             + cache_read * (price.input if price.cache_read is None else price.cache_read)
             + cache_write * (price.input if price.cache_write is None else price.cache_write)
             + (usage.output_tokens or 0) * price.output)
    return total / 1_000_000
