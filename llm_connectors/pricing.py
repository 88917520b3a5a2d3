"""Estimated cost of a call, from the model catalog's prices, which you can extend or override.

Prices are USD per million tokens. They come from the model catalog (:mod:`llm_connectors.catalog`,
one entry per model, matched by id, alias or dated form) and are never fetched over the network:
check your provider's pricing page and override what matters to you, by model-id prefix
(:func:`set_price`, checked first, longest prefix wins) or per model (``lc.register_model``).

    lc.set_price("openai", "gpt-5.4-mini", input=0.75, output=4.50, cache_read=0.075)
    lc.estimate_cost("openai", "gpt-5.4-mini-2026-03-17", resp.usage)   # -> float | None
"""

from __future__ import annotations

import threading

from . import catalog
from .errors import ConfigurationError
from .types import Price, Usage

__all__ = ["PRICES_AS_OF", "Price", "estimate_cost", "price_for", "set_price"]

#: When the catalog's prices were last checked against the providers' pricing pages.
PRICES_AS_OF = "2026-12"


_FREE = Price(0.0, 0.0, 0.0, 0.0)  # self-hosted: the model costs compute, not tokens
_overrides: dict[str, dict[str, Price]] = {}  # set_price: provider -> model-id prefix -> price
_free_providers = {"ollama", "local"}
_lock = threading.Lock()


def set_price(provider: str, model_prefix: str, price: Price | None = None, *, input: float | None = None,
              output: float | None = None, cache_read: float | None = None,
              cache_write: float | None = None) -> None:
    """Add or override the price of models whose id starts with ``model_prefix`` (over the catalog's)."""
    if price is None:
        if input is None or output is None:
            raise ConfigurationError("set_price needs a Price or both input= and output= (USD per 1M tokens)")
        price = Price(input, output, cache_read, cache_write)
    with _lock:
        _overrides.setdefault(provider, {})[model_prefix] = price


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``model`` at ``provider``: a :func:`set_price` override (longest matching prefix),
    else the catalog entry's, else ``None``."""
    if provider in _free_providers:
        return _FREE
    if not model:
        return None
    with _lock:
        table = dict(_overrides.get(provider, {}))
    best = max((prefix for prefix in table if model.startswith(prefix)), key=len, default=None)
    if best is not None:
        return table[best]
    info = catalog.entry(provider, model)
    return info.price if info is not None else None


def estimate_cost(provider: str, model: str, usage: Usage | None, *, batch: bool = False) -> float | None:
    """Estimated USD cost of one call, or ``None`` when the price or the usage is unknown.

    ``batch=True`` prices a provider batch job's result: ``Price.batch_input`` / ``batch_output``
    (each the standard price where not given), cache reads and writes cut in the same proportion
    as input (the batch discount stacks with caching).
    """
    if usage is None or (usage.input_tokens is None and usage.output_tokens is None):
        return None
    price = price_for(provider, model)
    if price is None:
        return None
    if batch:
        price = _batch_price(price)
    cache_read = usage.cache_read_tokens or 0
    cache_write = usage.cache_write_tokens or 0
    plain_input = max(0, (usage.input_tokens or 0) - cache_read - cache_write)
    total = (plain_input * price.input
             + cache_read * (price.input if price.cache_read is None else price.cache_read)
             + cache_write * (price.input if price.cache_write is None else price.cache_write)
             + (usage.output_tokens or 0) * price.output)
    return total / 1_000_000


def _batch_price(price: Price) -> Price:
    batch_input = price.input if price.batch_input is None else price.batch_input
    ratio = batch_input / price.input if price.input else 1.0
    return Price(batch_input, price.output if price.batch_output is None else price.batch_output,
                 None if price.cache_read is None else price.cache_read * ratio,
                 None if price.cache_write is None else price.cache_write * ratio)
