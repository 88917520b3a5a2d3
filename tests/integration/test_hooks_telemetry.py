"""Hooks around calls, and OpenTelemetry spans and metrics (GenAI semantic conventions)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from builders import build_connector
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llm_connectors as lc
from llm_connectors.observe.telemetry import telemetry
from llm_connectors.testing import FakeServer
from llm_connectors.testing.kit import ScriptedHandler
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit

pytestmark = pytest.mark.anyio
KIT = OpenAIWireKit()
USER = [{"role": "user", "content": "Hi"}]
RETRY = lc.RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.001, min_delay=0, budget=False)


async def test_hooks_see_each_attempt_and_each_outcome_once() -> None:
    events: list[tuple[Any, ...]] = []

    def before(ctx: lc.HookContext) -> None:
        events.append(("before", ctx.operation, ctx.attempt, ctx.model))
        assert ctx.http is not None
        ctx.http.headers["x-audit-id"] = f"audit-{ctx.attempt}"  # middleware may add headers

    async def after(ctx: lc.HookContext, result: Any) -> None:
        events.append(("after", ctx.operation, type(result).__name__))

    def failed(ctx: lc.HookContext, error: Exception) -> None:
        events.append(("error", ctx.operation, type(error).__name__))

    handler = ScriptedHandler(default=KIT.chat_reply("ok"))
    hooks = lc.Hooks(before_request=before, after_response=after, on_error=failed)
    with FakeServer(handler) as server:
        async with build_connector("openai", server.url, hooks=hooks, retry=RETRY) as conn:
            handler.push(KIT.error_reply(503, "busy"))
            await conn.generate_chat("m", USER)  # one retry: two attempts, one outcome
            handler.push(KIT.error_reply(400, "bad"))
            with pytest.raises(lc.InvalidRequestError):
                await conn.generate_chat("m", USER)
            handler.push(KIT.stream_reply(["a", "b"]))
            await conn.generate_chat_stream("m", USER).collect()
            handler.push(KIT.stream_error_reply(["a"]))
            with pytest.raises(lc.StreamInterruptedError):
                await conn.generate_chat_stream("m", USER).collect()
    assert events == [
        ("before", "chat", 1, "m"), ("before", "chat", 2, "m"), ("after", "chat", "ChatResponse"),
        ("before", "chat", 1, "m"), ("error", "chat", "InvalidRequestError"),
        ("before", "stream", 1, "m"), ("after", "stream", "ChatResponse"),
        ("before", "stream", 1, "m"), ("error", "stream", "StreamInterruptedError"),
    ]
    assert [r.headers["x-audit-id"] for r in server.requests[:2]] == ["audit-1", "audit-2"]


async def test_a_hook_can_veto_a_call() -> None:
    def veto(ctx: lc.HookContext) -> None:
        raise lc.InvalidRequestError("blocked by policy")

    with FakeServer(OpenAIFake()) as server:
        async with build_connector("openai", server.url, hooks=lc.Hooks(before_request=veto)) as conn:
            with pytest.raises(lc.InvalidRequestError, match="blocked by policy"):
                await conn.generate_chat("m", USER)
    assert not server.requests
    with pytest.raises(lc.ConfigurationError):
        lc.Hooks(before_request="not callable")  # type: ignore[arg-type]


@pytest.fixture
def otel() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    saved = (telemetry._tracer, telemetry._duration, telemetry._tokens)
    telemetry._tracer = provider.get_tracer("llm_connectors")
    meter = meters.get_meter("llm_connectors")
    telemetry._duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    telemetry._tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    yield exporter, reader
    telemetry._tracer, telemetry._duration, telemetry._tokens = saved
    assert trace and metrics  # the real globals stay untouched


async def test_spans_follow_genai_conventions(otel: tuple[InMemorySpanExporter, InMemoryMetricReader]) -> None:
    exporter, reader = otel
    handler = ScriptedHandler(default=KIT.chat_reply("ok", input_tokens=11, output_tokens=5))
    with FakeServer(handler) as server:
        async with build_connector("openai", server.url, retry=RETRY) as conn:
            handler.push(KIT.error_reply(503, "busy"))
            await conn.generate_chat("m", USER, temperature=0.2, max_tokens=9)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    call = spans["chat m"]
    attributes = dict(call.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat" and attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.request.model"] == "m" and attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.request.max_tokens"] == 9
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (11, 5)
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    attempts = [s for s in exporter.get_finished_spans() if s.name.startswith("attempt")]
    assert [s.name for s in attempts] == ["attempt 1", "attempt 2"]
    assert all(s.parent is not None and s.parent.span_id == call.context.span_id for s in attempts)
    assert dict(attempts[0].attributes or {})["error.type"] == "ProviderError"
    data = reader.get_metrics_data()
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= names


async def test_failed_call_and_fallback_spans(otel: tuple[InMemorySpanExporter, InMemoryMetricReader]) -> None:
    exporter, _ = otel
    sick = ScriptedHandler(default=KIT.error_reply(500, "down"))
    with FakeServer(sick) as a, FakeServer(OpenAIFake("fine")) as b:
        lc.register_openai_compatible("otel-a", base_url=a.url + "/v1", default_model="m", replace=True)
        lc.register_openai_compatible("otel-b", base_url=b.url + "/v1", default_model="m", replace=True)
        async with lc.get_connector(primary="otel-a", fallbacks=["otel-b"], retry=False) as conn:
            await conn.generate_chat(None, USER)
    calls = [s for s in exporter.get_finished_spans() if s.name == "chat m"]
    systems = [dict(s.attributes or {})["gen_ai.system"] for s in calls]
    assert systems == ["otel-a", "otel-b"]
    assert dict(calls[0].attributes or {})["error.type"] == "ProviderError"
    assert calls[0].status.status_code.name == "ERROR"


def test_zero_cost_without_opentelemetry() -> None:
    code = ("import sys; sys.modules['opentelemetry'] = None\n"
            "import llm_connectors.observe.telemetry as t; print(t.telemetry.enabled)\n"
            "import llm_connectors as lc; lc.Message; print('opentelemetry.trace' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
