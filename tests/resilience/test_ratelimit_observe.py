"""Limiter waits are visible: in ``stats()``, to hooks, and on OpenTelemetry spans and metrics (issue 19).

Whole connectors on trio's virtual clock over an in-memory transport, so each wait is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from builders import build_connector
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llm_connectors as lc
from llm_connectors.observe.telemetry import telemetry
from llm_connectors.testing.openai_wire import openai_chat_json

USER = [{"role": "user", "content": "Hi"}]


def run_virtual(main: Any) -> Any:
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def answer(headers: dict[str, str] | None = None) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, headers=headers or {},
                                                              json=openai_chat_json("ok")))


def test_stats_and_hooks_see_each_wait_and_the_limit_that_held_it() -> None:
    seen: list[dict[str, float]] = []

    def before(ctx: lc.HookContext) -> None:
        seen.append(dict(ctx.limiter_waits))

    async def main() -> dict[str, Any]:
        conn = build_connector("openai", transport=answer(), hooks=lc.Hooks(before_request=before),
                               rate_limit={"requests_per_minute": 60})
        async with conn:
            for _ in range(3):
                await conn.generate_chat("m", USER)
            return conn.stats()["openai"]

    stats = run_virtual(main)
    assert seen == [{}, {"requests": 1.0}, {"requests": 1.0}]  # one a second: the 2nd and 3rd waited 1 s each
    assert stats["limiter_wait_s"] == 2.0
    assert stats["limiter"] == {"waited": 2, "slowdowns": 0, "wait_s": {"requests": 2.0}}


def test_stats_count_the_times_the_provider_slowed_us_down() -> None:
    headers = {"x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "5s"}

    async def main() -> tuple[dict[str, Any], float]:
        conn = build_connector("openai", transport=answer(headers),
                               rate_limit={"requests_per_minute": 600, "adapt_to_headers": True})
        async with conn:
            start = trio.current_time()
            await conn.generate_chat("m", USER)
            await conn.generate_chat("m", USER)  # 1 left in 5 s: the next waits 5 s, not 0.1 s
            return conn.stats()["openai"], trio.current_time() - start

    stats, took = run_virtual(main)
    assert took == pytest.approx(5.0, abs=1e-9)
    assert stats["limiter"]["slowdowns"] == 2 and stats["limiter"]["wait_s"] == {"requests": pytest.approx(5.0)}


def test_without_adapt_to_headers_the_headers_change_nothing() -> None:
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"}

    async def main() -> float:
        conn = build_connector("openai", transport=answer(headers), rate_limit={"requests_per_minute": 600})
        async with conn:
            start = trio.current_time()
            for _ in range(3):
                await conn.generate_chat("m", USER)
            return trio.current_time() - start

    assert run_virtual(main) == pytest.approx(0.2, abs=1e-9)


@pytest.fixture
def otel() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("llm_connectors")
    saved = (telemetry._tracer, telemetry._duration, telemetry._tokens, telemetry._limiter_wait)
    telemetry._tracer = provider.get_tracer("llm_connectors")
    telemetry._duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    telemetry._tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    telemetry._limiter_wait = meter.create_histogram("llm_connectors.client.rate_limit.wait", unit="s")
    yield exporter, reader
    telemetry._tracer, telemetry._duration, telemetry._tokens, telemetry._limiter_wait = saved


def test_spans_carry_the_wait_and_a_metric_records_it_by_limit(
        otel: tuple[InMemorySpanExporter, InMemoryMetricReader]) -> None:
    exporter, reader = otel

    async def main() -> None:
        conn = build_connector("openai", transport=answer(), rate_limit={"tokens_per_minute": 6000,
                                                                         "token_burst": 100})
        async with conn:
            await conn.generate_chat("m", USER, max_tokens=300)  # used far less: reconciled to its usage
            await conn.generate_chat("m", USER, max_tokens=200)  # needs a full bucket: waits for that usage

    run_virtual(main)
    calls = [s for s in exporter.get_finished_spans() if s.name == "chat m"]
    assert len(calls) == 2 and "llm_connectors.rate_limit.wait_s" not in dict(calls[0].attributes or {})
    attributes = dict(calls[1].attributes or {})
    assert attributes["llm_connectors.rate_limit.limit"] == "tokens"
    assert 0 < attributes["llm_connectors.rate_limit.wait_s"] < 10
    events = [e for e in calls[1].events if e.name == "rate_limit_wait"]
    assert len(events) == 1 and dict(events[0].attributes or {})["llm_connectors.rate_limit.limit"] == "tokens"
    data = reader.get_metrics_data()
    points = [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
              if m.name == "llm_connectors.client.rate_limit.wait" for p in m.data.data_points]
    assert [dict(p.attributes)["llm_connectors.rate_limit.limit"] for p in points] == ["tokens"]
    assert points[0].count == 1 and points[0].sum == attributes["llm_connectors.rate_limit.wait_s"]
