"""Many chats at once: bounded concurrency, input order kept, one typed error per failed item."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio

from .errors import InvalidRequestError, LLMConnectorError
from .types import ChatResponse, MessageInput


class ChatCaller(Protocol):
    """Anything with ``generate_chat``: a connector or a fallback chain."""

    async def generate_chat(self, model: str | None = None, messages: Any = (), **options: Any) -> ChatResponse: ...

__all__ = ["BatchItem", "BatchResult", "ProgressCallback", "run_chat_batch"]

#: A prompt, a conversation, or ``{"messages": [...], "model": ..., **options}``.
BatchItem = str | Sequence[MessageInput] | Mapping[str, Any]
#: Each item's answer, or the typed error it failed with.
BatchResult = ChatResponse | LLMConnectorError
#: ``on_progress(done, total)``; may be a coroutine function.
ProgressCallback = Callable[[int, int], Awaitable[None] | None]


def _split(item: BatchItem, index: int) -> tuple[str | None, Any, dict[str, Any]]:
    if isinstance(item, Mapping):
        if "messages" not in item:
            raise InvalidRequestError(f"requests[{index}] needs 'messages' (and optionally 'model' and options)")
        options = {k: v for k, v in item.items() if k not in ("messages", "model")}
        return item.get("model"), item["messages"], options
    return None, item, {}


async def run_chat_batch(conn: ChatCaller, items: Sequence[BatchItem], *,
                         concurrency: int = 4, on_progress: ProgressCallback | None = None) -> list[BatchResult]:
    """Run ``items`` through ``conn.generate_chat``, at most ``concurrency`` at a time."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidRequestError(f"concurrency must be an integer >= 1, got {concurrency!r}")
    total = len(items)
    results: list[BatchResult | None] = [None] * total
    done = 0
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(index: int, item: BatchItem) -> None:
        nonlocal done
        async with limiter:
            try:
                model, messages, options = _split(item, index)
                results[index] = await conn.generate_chat(model, messages, **options)
            except LLMConnectorError as exc:
                results[index] = exc
        done += 1
        if on_progress is not None:
            outcome = on_progress(done, total)
            if inspect.isawaitable(outcome):
                await outcome

    async with anyio.create_task_group() as tg:
        for index, item in enumerate(items):
            tg.start_soon(one, index, item)
    return [r for r in results if r is not None]
