"""``estimate_cost(..., batch=True)``: a batch job's results at the catalog's batch prices."""

from __future__ import annotations

import pytest

import llm_connectors as lc
from llm_connectors.pricing import _overrides
from llm_connectors.types import Usage


def test_batch_prices_come_from_the_catalog_and_cut_cache_prices_alike() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=400_000)
    # gpt-5.4-mini: input 0.75, output 4.50, cache_read 0.075; batch 0.375 / 2.25 (catalog)
    live = lc.estimate_cost("openai", "gpt-5.4-mini", usage)
    batch = lc.estimate_cost("openai", "gpt-5.4-mini", usage, batch=True)
    assert live == pytest.approx(0.6 * 0.75 + 0.4 * 0.075 + 4.50)
    assert batch == pytest.approx(0.6 * 0.375 + 0.4 * 0.0375 + 2.25)


def test_a_price_without_batch_prices_is_the_standard_price(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_overrides, "openai", {})
    lc.set_price("openai", "my-model", input=2.0, output=8.0)
    usage = Usage(input_tokens=1000, output_tokens=500)
    assert lc.estimate_cost("openai", "my-model", usage, batch=True) == lc.estimate_cost("openai", "my-model", usage)
    assert lc.estimate_cost("openai", "unknown-model", usage, batch=True) is None
