"""One logical call's bookkeeping: stats, cost, OpenTelemetry span and hooks, each exactly once.

A call may make several HTTP attempts (retries); attempts find their call through a context
variable, set only while the call's own task is inside it (never across a stream's yields).
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import TYPE_CHECKING, Any

from ..hooks import HookContext, Hooks, Operation, run_hook
from ..pricing import estimate_cost
from ..requests import ChatRequest, EmbeddingRequest
from ..types import ChatResponse, EmbeddingResponse, Usage
from .telemetry import telemetry

if TYPE_CHECKING:
    from .stats import ProviderStats

__all__ = ["CURRENT_CALL", "CallRecord"]

logger = logging.getLogger("llm_connectors")

CURRENT_CALL: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar("llm_connectors_call",
                                                                                 default=None)


class CallRecord:
    """Bookkeeping for one call of one connector."""

    __slots__ = ("attempts", "context", "hooks", "limiter_wait", "model", "operation", "provider", "span", "started",
                 "stats", "ttft")

    def __init__(self, *, provider: str, operation: Operation, request: ChatRequest | EmbeddingRequest,
                 stats: ProviderStats, hooks: Hooks | None) -> None:
        self.provider = provider
        self.operation = operation
        self.model = request.model
        self.stats = stats
        self.hooks = hooks
        self.started = time.perf_counter()
        self.attempts = 0
        self.ttft: float | None = None
        self.limiter_wait = 0.0  # seconds this call waited for the rate limiter, over its attempts
        self.context = HookContext(provider, operation, request.model, request) if hooks is not None else None
        self.span: Any = (telemetry.start_call(operation, provider, request.model, request.params)
                          if telemetry.enabled else None)
        stats.requests += 1

    def next_attempt(self) -> int:
        self.attempts += 1
        return self.attempts

    def limiter_waited(self, waits: dict[str, float]) -> None:
        """The coming attempt waited for the rate limiter (seconds by limit): stats, hooks, span."""
        self.stats.record_limiter_wait(waits)
        self.limiter_wait += sum(waits.values())
        if self.context is not None:
            self.context.limiter_waits = dict(waits)
        if self.span is not None:
            telemetry.limiter_wait(self.span, waits, self.limiter_wait, provider=self.provider, model=self.model)

    def succeeded(self, result: ChatResponse | EmbeddingResponse) -> None:
        """Synchronous part of a success (stats, span). Never raises: bookkeeping must not cost the
        caller an answer it already has (a third-party connector may fill usage with odd values)."""
        seconds = time.perf_counter() - self.started
        usage: Usage | None = result.usage
        try:
            cost = estimate_cost(self.provider, result.model or self.model, usage)
        except Exception as exc:
            logger.warning("%s: no cost estimate for an answer (%s); the answer is returned", self.provider,
                           type(exc).__name__)
            cost = None
        self.stats.record_success(seconds, usage, self.ttft, cost)
        if self.span is not None:
            telemetry.end_call(self.span, provider=self.provider, model=self.model, operation=self.operation,
                               seconds=seconds, usage=usage, response_model=result.model,
                               response_id=getattr(result, "id", None),
                               finish_reason=getattr(result, "finish_reason", None))
            self.span = None

    def failed(self, error: BaseException | None, *, abandoned: bool = False) -> None:
        """Synchronous part of a failure (stats, span). ``abandoned``: the caller walked away."""
        if not abandoned and error is not None:
            self.stats.record_error(error)
        if self.span is not None:
            telemetry.end_call(self.span, provider=self.provider, model=self.model, operation=self.operation,
                               seconds=time.perf_counter() - self.started, error=error)
            self.span = None

    async def after_success(self, result: ChatResponse | EmbeddingResponse) -> None:
        if self.hooks is not None and self.context is not None:
            await run_hook(self.hooks.after_response, self.context, result)

    async def after_failure(self, error: BaseException) -> None:
        if self.hooks is not None and self.context is not None and isinstance(error, Exception):
            await run_hook(self.hooks.on_error, self.context, error)
