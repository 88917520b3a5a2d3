"""OpenTelemetry spans and metrics, following the GenAI semantic conventions.

Only active when ``opentelemetry-api`` is installed (the ``otel`` extra): the check runs once,
and without it every helper here is a no-op costing one attribute lookup. Span per call
(``chat {model}``), a child span per attempt; metrics ``gen_ai.client.operation.duration`` and
``gen_ai.client.token.usage``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from .._version import __version__
from ..types import Usage

__all__ = ["Telemetry", "telemetry"]


class Telemetry:
    """Lazily bound tracer and instruments; ``enabled`` is False when OpenTelemetry is absent."""

    def __init__(self) -> None:
        self.enabled = importlib.util.find_spec("opentelemetry") is not None
        self._tracer: Any = None
        self._duration: Any = None
        self._tokens: Any = None
        self._limiter_wait: Any = None

    @property
    def tracer(self) -> Any:
        if self._tracer is None:
            from opentelemetry import trace

            self._tracer = trace.get_tracer("llm_connectors", __version__)
        return self._tracer

    def _instruments(self) -> tuple[Any, Any]:
        if self._duration is None:
            from opentelemetry import metrics

            meter = metrics.get_meter("llm_connectors", __version__)
            self._duration = meter.create_histogram(
                "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration")
            self._tokens = meter.create_histogram(
                "gen_ai.client.token.usage", unit="{token}", description="Tokens used per call")
        return self._duration, self._tokens

    def start_call(self, operation: str, provider: str, model: str, params: Mapping[str, Any]) -> Any:
        """Start (not enter) a span for one call; end it with :meth:`end_call`."""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "embeddings" if operation == "embedding" else "chat",
            "gen_ai.system": provider,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
        }
        for name, key in (("temperature", "gen_ai.request.temperature"), ("top_p", "gen_ai.request.top_p"),
                          ("max_tokens", "gen_ai.request.max_tokens"), ("seed", "gen_ai.request.seed")):
            if name in params:
                attributes[key] = params[name]
        if operation == "stream":
            attributes["gen_ai.request.stream"] = True
        name = f"{attributes['gen_ai.operation.name']} {model}"
        return self.tracer.start_span(name, attributes=attributes)

    def end_call(self, span: Any, *, provider: str, model: str, operation: str, seconds: float,
                 usage: Usage | None = None, response_model: str | None = None, response_id: str | None = None,
                 finish_reason: str | None = None, error: BaseException | None = None) -> None:
        if span is None:
            return
        if response_model:
            span.set_attribute("gen_ai.response.model", response_model)
        if response_id:
            span.set_attribute("gen_ai.response.id", response_id)
        if finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
        if usage is not None:
            if usage.input_tokens is not None:
                span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            if usage.output_tokens is not None:
                span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("error.type", type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()
        duration, tokens = self._instruments()
        base = {"gen_ai.operation.name": "embeddings" if operation == "embedding" else "chat",
                "gen_ai.system": provider, "gen_ai.provider.name": provider, "gen_ai.request.model": model}
        if error is not None:
            base["error.type"] = type(error).__name__
        duration.record(seconds, base)
        if usage is not None:
            for kind, value in (("input", usage.input_tokens), ("output", usage.output_tokens)):
                if value is not None:
                    tokens.record(value, {**base, "gen_ai.token.type": kind})

    def limiter_wait(self, span: Any, waits: dict[str, float], total: float, *, provider: str, model: str) -> None:
        """An attempt waited for the rate limiter: a span event, the call's running total, a metric.

        ``waits`` is seconds by limit (``requests``, ``tokens``, ``cooldown``, ``concurrency``);
        ``total`` what the call has waited so far, over all its attempts.
        """
        limit = max(waits, key=waits.__getitem__)
        waited = sum(waits.values())
        span.add_event("rate_limit_wait", {"llm_connectors.rate_limit.wait_s": waited,
                                           "llm_connectors.rate_limit.limit": limit})
        span.set_attribute("llm_connectors.rate_limit.wait_s", total)
        span.set_attribute("llm_connectors.rate_limit.limit", limit)
        if self._limiter_wait is None:
            from opentelemetry import metrics

            self._limiter_wait = metrics.get_meter("llm_connectors", __version__).create_histogram(
                "llm_connectors.client.rate_limit.wait", unit="s",
                description="Time a call attempt waited for the client-side rate limiter")
        for name, seconds in waits.items():
            self._limiter_wait.record(seconds, {"gen_ai.provider.name": provider, "gen_ai.request.model": model,
                                                "llm_connectors.rate_limit.limit": name})

    def attempt(self, parent: Any, attempt: int, provider: str) -> Any:
        """A child span for one HTTP attempt of the call ``parent`` (started, not entered)."""
        from opentelemetry import trace

        context = trace.set_span_in_context(parent)
        return self.tracer.start_span(f"attempt {attempt}", context=context,
                                      attributes={"gen_ai.provider.name": provider, "llm_connectors.attempt": attempt})


telemetry = Telemetry()
