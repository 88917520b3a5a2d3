"""Callbacks around every call, for audit logging and custom middleware.

    def audit(ctx: lc.HookContext) -> None:
        log.info("%s %s %s", ctx.provider, ctx.operation, ctx.model)

    conn = await lc.get_connector("openai", hooks=lc.Hooks(before_request=audit))

* ``before_request(ctx)`` runs before each HTTP attempt (retries included). ``ctx.http`` is the
  request about to be sent: a hook may add headers or body fields, or raise to veto the call.
* ``after_response(ctx, result)`` runs once when a call succeeds: a ``ChatResponse`` (for
  streams, the accumulated one when the stream ends) or an ``EmbeddingResponse``.
* ``on_error(ctx, error)`` runs once when a call fails, after retries, with the typed error.

Hooks may be plain functions or coroutines. An exception in a hook propagates to the caller.
Hooks see prompts and answers; keys are not in ``ctx`` (credential headers are added after).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .requests import ChatRequest, EmbeddingRequest, HTTPRequest

__all__ = ["HookContext", "Hooks"]

Operation = Literal["chat", "stream", "embedding"]


@dataclass
class HookContext:
    """What a hook sees about one call.

    Attributes:
        provider: The provider id.
        operation: ``chat``, ``stream`` or ``embedding``.
        model: The model asked for.
        request: The validated request.
        http: The HTTP request of the current attempt (``before_request`` only; may be changed).
        attempt: 1 for the first attempt, 2 for the first retry...
        limiter_waits: Seconds the current attempt waited for the client-side rate limiter before
            it was sent, by limit (``requests``, ``tokens``, ``cooldown``, ``concurrency``);
            empty when it did not wait.
        metadata: Free space for hooks to pass data between their calls.
    """

    provider: str
    operation: Operation
    model: str
    request: ChatRequest | EmbeddingRequest
    http: HTTPRequest | None = None
    attempt: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    limiter_waits: dict[str, float] = field(default_factory=dict)


Hook = Callable[..., Awaitable[None] | None]


@dataclass(frozen=True)
class Hooks:
    """The callbacks of one connector (each optional)."""

    before_request: Hook | None = None
    after_response: Hook | None = None
    on_error: Hook | None = None

    def __post_init__(self) -> None:
        for name in ("before_request", "after_response", "on_error"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                from .errors import ConfigurationError

                raise ConfigurationError(f"Hooks.{name} must be callable, got {type(value).__name__}")

    @property
    def empty(self) -> bool:
        return self.before_request is None and self.after_response is None and self.on_error is None


async def run_hook(hook: Hook | None, *args: Any) -> None:
    if hook is None:
        return
    result = hook(*args)
    if inspect.isawaitable(result):
        await result
