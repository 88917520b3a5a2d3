"""Streaming: per-stream decoders (pure), the opened stream, and the public :class:`ChatStream`.

The life of a stream:

1. A connector opens the HTTP response and reads until the first chunk worth delivering.
   That is an :class:`OpenStream`. Retries, breakers and fallbacks act only up to here.
2. :class:`ChatStream` hands chunks to the caller. Once one has been delivered, any failure is
   raised as :class:`StreamInterruptedError` carrying exactly the text delivered so far, so no
   text is ever lost or delivered twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

from .errors import LLMConnectorError, ProtocolError, StreamInterruptedError
from .types import ChatChunk, ChatResponse, ReasoningBlock, ToolCall, Usage

__all__ = ["ChatStream", "OpenStream", "StreamDecoder", "interrupted"]

_NO_CALLS: tuple[ToolCall, ...] = ()


class StreamDecoder:
    """Per-stream state of one provider's stream: events in, :class:`ChatChunk` out.

    Subclasses implement :meth:`feed`; they call :meth:`chunk` to emit (and accumulate) a chunk
    and set :attr:`done` when the provider's end marker arrives. :meth:`response` then gives the
    same :class:`ChatResponse` the non-streaming call would have.
    """

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.id: str | None = None
        self.done = False
        self.finish_reason: str | None = None
        self.native_finish_reason: str | None = None
        self.usage: Usage | None = None
        self.tool_calls: list[ToolCall] = []
        self.reasoning_blocks: list[ReasoningBlock] = []
        self.raw: Any = None
        self._text: list[str] = []
        self._reasoning: list[str] = []

    def feed(self, event: Any) -> ChatChunk | None:
        """Consume one framed event (an ``SSEEvent`` or a parsed NDJSON object)."""
        raise NotImplementedError  # pragma: no cover - every decoder overrides it

    def chunk(
        self,
        delta: str = "",
        reasoning: str = "",
        tool_calls: Sequence[ToolCall] = _NO_CALLS,
        finish_reason: str | None = None,
        usage: Usage | None = None,
        raw: Any = None,
    ) -> ChatChunk | None:
        """Record a step and return it as a chunk, or ``None`` if it carries nothing."""
        if delta:
            self._text.append(delta)
        if reasoning:
            self._reasoning.append(reasoning)
        if tool_calls:
            self.tool_calls.extend(tool_calls)
        if finish_reason is not None:
            self.finish_reason = finish_reason
        if usage is not None:
            self.usage = usage
        if not (delta or reasoning or tool_calls or finish_reason is not None or usage is not None):
            return None
        return ChatChunk(delta, reasoning, tool_calls, finish_reason, usage, raw)

    def finish(self) -> ChatChunk | None:
        """Called at end of input. A stream without its end marker was cut: raise."""
        if not self.done:
            raise ProtocolError("the stream ended before the provider's end-of-stream marker",
                                provider=self.provider)
        return None

    def pending_tool_calls(self) -> list[ToolCall]:
        """Tool calls the stream has begun and not delivered, in order (the last may be cut short).

        Decoders of providers that stream a call in pieces override it; the default has none.
        """
        return []

    @property
    def text(self) -> str:
        return "".join(self._text)

    def response(self) -> ChatResponse:
        reasoning = "".join(self._reasoning)
        blocks = self.reasoning_blocks
        if reasoning and not blocks:
            blocks = [ReasoningBlock(text=reasoning)]
        return ChatResponse(
            content=self.text,
            finish_reason=self.finish_reason,
            usage=self.usage or Usage(),
            tool_calls=list(self.tool_calls),
            provider=self.provider,
            model=self.model,
            raw=self.raw,
            id=self.id,
            reasoning=reasoning,
            reasoning_blocks=list(blocks),
            native_finish_reason=self.native_finish_reason,
        )


def interrupted(decoder: StreamDecoder, error: LLMConnectorError) -> LLMConnectorError:
    """What a stream that failed with ``error`` raises: ``error`` itself, unless it broke inside a tool call.

    Then it is a :class:`StreamInterruptedError` carrying the text delivered so far and the begun
    calls, so neither is lost. It keeps ``error``'s retry, breaker and fallback flags: before the
    first chunk nothing reached the caller, and the policies treat the failure as they would
    have. The decoder's text is the delivered text: a chunk is yielded before more is read.
    """
    calls = decoder.pending_tool_calls() if not isinstance(error, StreamInterruptedError) else None
    if not calls:
        return error
    cut = calls[-1]
    wrapped = StreamInterruptedError(
        f"stream broke inside tool call {cut.name or '?'!r} ({len(cut.raw_arguments or '')} characters of "
        f"arguments received): {type(error).__name__}: {error.message}",
        partial=decoder.text, partial_tool_calls=calls, provider=error.provider or decoder.provider,
        status_code=error.status_code, request_id=error.request_id, retryable=error.retryable,
        retry_after=error.retry_after, code=error.code)
    wrapped.breaker_failure = error.breaker_failure
    wrapped.fallback = error.fallback
    wrapped.__cause__ = error
    return wrapped


#: Told once how an opened stream ended: (response, None) on success, (None, error) on failure,
#: (None, None) when the caller abandoned it.
FinishHook = Callable[[ChatResponse | None, BaseException | None], None]
AsyncFinishHook = Callable[[ChatResponse | None, BaseException | None], Awaitable[None]]


class OpenStream:
    """A stream whose response is open and whose first chunk (if any) has been read.

    ``on_finish`` hooks (the rate limiter's slot, the breaker's mid-stream accounting) run
    exactly once when the stream ends, however it ends.
    """

    __slots__ = ("decoder", "first", "on_finish", "on_finish_async", "provider", "rest")

    def __init__(self, first: ChatChunk | None, rest: AsyncGenerator[ChatChunk, None],
                 decoder: StreamDecoder) -> None:
        self.first = first
        self.rest = rest
        self.decoder = decoder
        self.provider = decoder.provider
        self.on_finish: list[FinishHook] = []
        #: Awaited after ``on_finish`` when the stream ends inside an ``await`` (user hooks).
        self.on_finish_async: list[AsyncFinishHook] = []

    def finish(self, response: ChatResponse | None, error: BaseException | None) -> None:
        hooks, self.on_finish = self.on_finish, []
        for hook in hooks:
            hook(response, error)

    async def finish_async(self, response: ChatResponse | None, error: BaseException | None) -> None:
        hooks, self.on_finish_async = self.on_finish_async, []
        for hook in hooks:
            await hook(response, error)

    async def aclose(self) -> None:
        try:
            await self.rest.aclose()
        finally:
            self.finish(None, None)

    def __del__(self) -> None:
        # Abandoned without aclose() (a bare `async for` left early): still give back the
        # concurrency slot. Hooks are synchronous and idempotent.
        if self.on_finish:
            with contextlib.suppress(Exception):  # never raise from a finalizer
                self.finish(None, None)


class ChatStream:
    """A streamed chat answer: an async iterator of :class:`ChatChunk` and an async context manager.

    ``async with`` guarantees the HTTP response is closed, even if you stop early.
    After the last chunk, :attr:`response` holds the accumulated :class:`ChatResponse`;
    ``await stream.collect()`` drains the stream and returns it.
    """

    __slots__ = ("_closed", "_delivered", "_finished", "_open", "_opener", "_response", "provider")

    def __init__(self, opener: Callable[[], Awaitable[OpenStream]]) -> None:
        self._opener = opener
        self._open: OpenStream | None = None
        self._response: ChatResponse | None = None
        self._delivered: list[str] = []
        self._closed = False
        self._finished = False
        self.provider: str | None = None

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatChunk:
        if self._closed:
            raise StopAsyncIteration
        stream = self._open
        if stream is None:
            try:
                stream = self._open = await self._opener()
            except BaseException:
                # The opener's own policies recorded this failure; nothing was delivered.
                self._closed = self._finished = True
                raise
            self.provider = stream.provider
            chunk = stream.first
            stream.first = None
            if chunk is not None:
                return self._deliver(chunk)
        try:
            chunk = await stream.rest.__anext__()
        except StopAsyncIteration:
            self._closed = True
            self._response = stream.decoder.response()
            await self._finish(self._response, None)
            raise
        except LLMConnectorError as exc:
            self._closed = True
            if self._delivered and not isinstance(exc, StreamInterruptedError):
                partial = "".join(self._delivered)
                interrupted = StreamInterruptedError(
                    f"stream broke after {len(partial)} characters were delivered: "
                    f"{type(exc).__name__}: {exc.message}",
                    partial=partial, provider=exc.provider or stream.provider,
                    status_code=exc.status_code, request_id=exc.request_id, code=exc.code,
                )
                interrupted.__cause__ = exc  # hooks look at what broke the stream
                await self._finish(None, interrupted)
                raise interrupted from exc
            await self._finish(None, exc)
            raise
        except BaseException as exc:
            self._closed = True
            await self._finish(None, exc)
            raise
        return self._deliver(chunk)

    def _deliver(self, chunk: ChatChunk) -> ChatChunk:
        if chunk.delta:
            self._delivered.append(chunk.delta)
        return chunk

    async def _finish(self, response: ChatResponse | None, error: BaseException | None) -> None:
        """Tell the opened stream's hooks how it ended, exactly once."""
        if self._finished or self._open is None:
            return
        self._finished = True
        self._open.finish(response, error)
        if response is not None or isinstance(error, Exception):
            await self._open.finish_async(response, error)

    @property
    def response(self) -> ChatResponse:
        """The accumulated answer, once the stream has been drained."""
        if self._response is None:
            raise RuntimeError("the stream has not finished yet; iterate it to the end or "
                               "`await stream.collect()` first")
        return self._response

    @property
    def text(self) -> str:
        """The text delivered so far."""
        return "".join(self._delivered)

    async def collect(self) -> ChatResponse:
        """Drain the remaining chunks and return the complete :class:`ChatResponse`."""
        async for _ in self:
            pass
        if self._response is None:  # closed early by the caller
            raise RuntimeError("the stream was closed before it finished")
        return self._response

    async def aclose(self) -> None:
        """Close the underlying HTTP response. Safe to call more than once."""
        self._closed = True
        stream = self._open
        if stream is None:
            return
        if not self._finished:  # abandoned by the caller: neither success nor failure
            self._finished = True
            stream.finish(None, None)
        await stream.rest.aclose()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
