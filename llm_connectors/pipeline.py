"""The call sequence of every connector, in one place.

    cache → record → retry → circuit breaker → rate limiter → one attempt (HTTP)

:class:`CallPipeline` owns the order for chats, streams and embeddings. *Record* is the call's
bookkeeping (stats, cost, span, hooks: exactly once per call, however many attempts); retry,
breaker and limiter are :class:`~.resilience.policies.Resilience`; the attempt is the connector's
translator plus its :class:`~.http.sender.HTTPSender`, passed in as a function. A fallback chain
wraps whole connectors, so it sits outside all of this. Streams pass through the policies only
until their first chunk (see ``policies.py``) and are never cached.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx

from .errors import ConfigurationError, LLMConnectorError, ProviderError
from .hooks import Hooks, Operation
from .observe.calls import CURRENT_CALL, CallRecord
from .observe.stats import ProviderStats
from .requests import ChatRequest, EmbeddingRequest, HTTPRequest
from .resilience.cache import ResponseCache, cache_key, shared_cache
from .resilience.policies import Resilience
from .stream import OpenStream
from .types import ChatResponse, EmbeddingResponse, ModelInfo, Usage

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["CallPipeline"]

Res = TypeVar("Res", ChatResponse, EmbeddingResponse)
Req = TypeVar("Req", ChatRequest, EmbeddingRequest)


class CallPipeline:
    """One connector's policies, cache, counters and hooks, applied in the fixed order.

    Args:
        provider: The connector's provider id.
        base_url: Its endpoint (breakers, budgets, cooldowns and cache keys are per endpoint).
        credential: The fingerprint of the key in use, so answers are never shared across keys.
        policies: Retry, breaker and rate limiter.
        stats: The connector's counters.
        cache: The response cache, or ``None``.
        hooks: Callbacks around each call, or ``None``.
    """

    def __init__(self, provider: str, base_url: str, *, credential: Callable[[], str | None], policies: Resilience,
                 stats: ProviderStats, cache: ResponseCache | None, hooks: Hooks | None) -> None:
        self.provider = provider
        self.base_url = base_url
        self.policies = policies
        self.stats = stats
        self.cache = cache
        self.hooks = hooks
        self._credential = credential

    @classmethod
    def build(cls, provider: str, base_url: str, *, credential: Callable[[], str | None], retry: Any = None,
              circuit_breaker: Any = None, rate_limit: Any = None, cache: Any = None, shared_state: Any = None,
              hooks: Hooks | None = None) -> CallPipeline:
        """Check the policy settings (see :class:`~llm_connectors.BaseConnector`) and bind the shared state."""
        stats = ProviderStats()
        policies = Resilience(provider, base_url, retry=retry, circuit_breaker=circuit_breaker,
                              rate_limit=rate_limit, stats=stats, shared_state=shared_state)
        if hooks is not None and not isinstance(hooks, Hooks):
            raise ConfigurationError(f"hooks must be llm_connectors.Hooks, got {type(hooks).__name__}")
        return cls(provider, base_url, credential=credential, policies=policies, stats=stats,
                   cache=shared_cache(cache, policies.shared_state),
                   hooks=hooks if hooks is not None and not hooks.empty else None)

    def header_observer(self) -> Callable[[httpx.Headers], None] | None:
        """What the sender shows every response's headers to (an adaptive rate limit), or ``None``."""
        config = self.policies.rate_limit
        if config is None or not config.adapt_to_headers:
            return None
        return self.policies.observe_headers

    # -- calls ------------------------------------------------------------------------------------

    async def complete(self, operation: Operation, request: Req, attempt: Callable[[Req], Awaitable[Res]],
                       wire: Callable[[Req], HTTPRequest]) -> Res:
        """A non-streaming call: from the cache when it holds the answer (``wire`` builds the body it
        is keyed on), else recorded and run through the policies."""
        if self.cache is None:
            return await self._recorded(operation, request, attempt)
        key = self._key(wire(request))
        return await self.cache.get_or_call(key, lambda: self._recorded(operation, request, attempt))

    async def embed(self, request: EmbeddingRequest,
                    attempt: Callable[[EmbeddingRequest], Awaitable[EmbeddingResponse]],
                    wire: Callable[[EmbeddingRequest], HTTPRequest], *, batch_size: int | None,
                    concurrency: int) -> EmbeddingResponse:
        """An embedding call, split into batches of ``batch_size`` inputs (``concurrency`` at once)."""
        if batch_size is None or len(request.inputs) <= batch_size:
            return await self.complete("embedding", request, attempt, wire)
        batches = [replace(request, inputs=request.inputs[i:i + batch_size])
                   for i in range(0, len(request.inputs), batch_size)]
        results: list[EmbeddingResponse | None] = [None] * len(batches)
        limiter = anyio.CapacityLimiter(concurrency)

        async def run(index: int, batch: EmbeddingRequest) -> None:
            async with limiter:
                results[index] = await self.complete("embedding", batch, attempt, wire)

        try:
            async with anyio.create_task_group() as tg:
                for index, batch in enumerate(batches):
                    tg.start_soon(run, index, batch)
        except BaseExceptionGroup as group:  # one failed batch fails the call, with its own error
            raise _first_error(group) from None
        return _joined([r for r in results if r is not None], self.provider)

    async def open_stream(self, request: ChatRequest,
                          attempt: Callable[[ChatRequest], Awaitable[OpenStream]]) -> OpenStream:
        """A stream opened through the policies up to its first chunk; recorded when it ends."""
        async with _Recording(self._record("stream", request)) as call:
            stream = await self.policies.open_stream(attempt, request)
        call.ttft = time.perf_counter() - call.started  # the first chunk has been read

        def finished(response: ChatResponse | None, error: BaseException | None) -> None:
            if response is not None:
                call.succeeded(response)
            else:
                call.failed(error, abandoned=not isinstance(error, Exception))

        async def hooks_after(response: ChatResponse | None, error: BaseException | None) -> None:
            if response is not None:
                await call.after_success(response)
            elif error is not None:
                await call.after_failure(error)

        stream.on_finish.append(finished)
        if self.hooks is not None:
            stream.on_finish_async.append(hooks_after)
        return stream

    async def models(self, fetch: Callable[[], Awaitable[list[ModelInfo]]]) -> list[ModelInfo]:
        """A model list, from the cache (kept briefly) when it is on."""
        if self.cache is None:
            return await fetch()
        key = cache_key(provider=self.provider, base_url=self.base_url, credential=self._credential(),
                        path="models", body=None)
        return await self.cache.get_or_call(key, fetch, models=True)

    def snapshot(self) -> dict[str, Any]:
        """Counters, breaker and budget state, and cache statistics, for ``stats()``."""
        snapshot = {**self.stats.snapshot(), **self.policies.snapshot()}
        if self.cache is not None:
            snapshot["cache"] = dict(self.cache.snapshot())
        return snapshot

    # -- internals --------------------------------------------------------------------------------

    async def _recorded(self, operation: Operation, request: Req, attempt: Callable[[Req], Awaitable[Res]]) -> Res:
        async with _Recording(self._record(operation, request)) as call:
            result = await self.policies.call(attempt, request)
        call.succeeded(result)
        await call.after_success(result)
        return result

    def _record(self, operation: Operation, request: ChatRequest | EmbeddingRequest) -> CallRecord:
        return CallRecord(provider=self.provider, operation=operation, request=request, stats=self.stats,
                          hooks=self.hooks)

    def _key(self, request: HTTPRequest) -> str:
        return cache_key(provider=self.provider, base_url=self.base_url, credential=self._credential(),
                         path=request.path, body=request.json)


class _Recording:
    """Make ``call`` the current call while its attempts run; record a failure (and its hook) once.

    A plain class rather than ``contextlib.asynccontextmanager``: it runs on every call.
    """

    __slots__ = ("call", "token")

    def __init__(self, call: CallRecord) -> None:
        self.call = call

    async def __aenter__(self) -> CallRecord:
        self.token = CURRENT_CALL.set(self.call)
        return self.call

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        CURRENT_CALL.reset(self.token)
        if exc is not None:
            self.call.failed(exc, abandoned=not isinstance(exc, Exception))
            if isinstance(exc, Exception):
                await self.call.after_failure(exc)


def _joined(parts: list[EmbeddingResponse], provider: str) -> EmbeddingResponse:
    usage = Usage()
    for part in parts:
        usage = usage + part.usage
    return EmbeddingResponse(embeddings=[vector for part in parts for vector in part.embeddings],
                             model=parts[0].model, provider=provider, usage=usage)


def _first_error(group: BaseExceptionGroup[Any]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if isinstance(exc, LLMConnectorError):
            return exc
    return group.exceptions[0] if group.exceptions else ProviderError("embedding batch failed")
