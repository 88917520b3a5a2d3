"""The error tree. Every failure a connector raises is one of these::

    LLMConnectorError                      provider, status_code, request_id, retryable, retry_after
    ├── ConfigurationError                 bad setup: missing key, unknown provider, bad URL
    │   └── NoProviderAvailableError       get_connector("auto") found nothing usable
    ├── AuthenticationError                401: the key is wrong or missing
    ├── PermissionDeniedError              403: the key may not do this
    ├── RateLimitError                     429 (retryable, carries retry_after)
    │   └── QuotaExceededError             429/402: quota or billing exhausted (not retryable)
    ├── InvalidRequestError                400/413/422: the request is wrong everywhere
    │   └── ContextWindowExceededError     the prompt does not fit this model
    ├── NotFoundError                      404: model or endpoint unknown to this provider
    ├── ContentFilterError                 the provider refused on content grounds
    ├── ProviderError                      5xx and 409 (retryable)
    │   ├── OverloadedError                529 / in-stream overloaded_error
    │   └── ProtocolError                  malformed or truncated response
    ├── NetworkError                       connection failed or dropped (retryable)
    │   └── TimeoutError                   connect/read/overall deadline, 408
    ├── StreamInterruptedError             a stream failed after text reached the caller (partial)
    ├── CircuitOpenError                   the breaker is open; nothing was sent
    ├── UnsupportedCapabilityError         the provider cannot do this; raised before any I/O
    └── AllProvidersFailedError            every member of a fallback chain failed (errors)

Three class-level flags drive every policy, so policies never keep ``isinstance`` lists:

* ``retryable``: the same request may succeed if sent again to the same provider.
* ``breaker_failure``: the failure says the provider is unhealthy (counts toward its circuit).
* ``fallback``: a fallback chain should try its next provider.

Messages are built from our own fields and a bounded, scrubbed excerpt of the provider's
message; API keys never appear in them.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "AllProvidersFailedError",
    "AuthenticationError",
    "CircuitOpenError",
    "ConfigurationError",
    "ContentFilterError",
    "ContextWindowExceededError",
    "InvalidRequestError",
    "LLMConnectorError",
    "NetworkError",
    "NoProviderAvailableError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProtocolError",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitError",
    "StreamInterruptedError",
    "TimeoutError",
    "UnsupportedCapabilityError",
]

#: Longest provider message kept in an exception (RELIABILITY.md §6.6: excerpts ≤ 2 KiB).
MAX_MESSAGE_CHARS = 2048


class LLMConnectorError(Exception):
    """Base of every error raised by llm-connectors.

    Attributes:
        message: Human-readable description (already scrubbed of secrets).
        provider: Id of the provider that failed (``"openai"``), or ``None``.
        status_code: HTTP status, when the failure came from an HTTP response.
        request_id: The provider's request id, for support tickets.
        retryable: Whether sending the same request again may succeed.
        retry_after: Seconds the provider asked us to wait, when it said so.
        code: The provider's machine-readable error code or type, when given.
    """

    retryable_default: ClassVar[bool] = False
    #: Class defaults; an instance may override them (a 409 is a ProviderError that is not a
    #: health failure).
    breaker_failure: bool = False
    fallback: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS] + "…"
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.request_id = request_id
        self.retryable = self.retryable_default if retryable is None else retryable
        self.retry_after = retry_after
        self.code = code

    def __str__(self) -> str:
        parts = []
        if self.provider:
            parts.append(f"[{self.provider}]")
        if self.status_code is not None:
            parts.append(str(self.status_code))
        head = " ".join(parts)
        text = f"{head} {self.message}" if head else self.message
        if self.request_id:
            text += f" (request id: {self.request_id})"
        return text

    def __repr__(self) -> str:
        fields = [repr(self.message)]
        for name in ("provider", "status_code", "request_id", "code", "retry_after"):
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(fields)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword fields across pickling (multiprocessing workers, the sync API's threads).
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[LLMConnectorError], message: str, state: dict[str, Any]) -> LLMConnectorError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ConfigurationError(LLMConnectorError):
    """The SDK is set up wrongly: a missing key, an unknown provider, a bad URL or option."""


class NoProviderAvailableError(ConfigurationError):
    """``get_connector("auto")`` found no usable provider. ``checked`` lists what was tried."""

    def __init__(self, message: str, *, checked: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.checked = list(checked)


class AuthenticationError(LLMConnectorError):
    """The provider rejected the credentials (HTTP 401)."""

    fallback = True


class PermissionDeniedError(LLMConnectorError):
    """The credentials are valid but may not do this (HTTP 403)."""

    fallback = True


class RateLimitError(LLMConnectorError):
    """Too many requests (HTTP 429), or a local limiter wait would pass the deadline."""

    retryable_default = True
    fallback = True


class QuotaExceededError(RateLimitError):
    """The account's quota or credit is exhausted; waiting will not help (429/402)."""

    retryable_default = False


class InvalidRequestError(LLMConnectorError):
    """The request is malformed or has an invalid option; it would fail on every provider."""


class ContextWindowExceededError(InvalidRequestError):
    """The prompt (plus ``max_tokens``) does not fit this model's context window."""

    fallback = True


class NotFoundError(LLMConnectorError):
    """The model or endpoint does not exist at this provider (HTTP 404)."""

    fallback = True


class ContentFilterError(LLMConnectorError):
    """The provider refused the request or the output on content-policy grounds.

    ``categories`` names the policy categories the provider said it filtered on (Azure's
    ``content_filter_result``, Gemini's safety ratings), where it says; empty otherwise.
    """

    def __init__(self, message: str, *, categories: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.categories = list(categories)


class ProviderError(LLMConnectorError):
    """The provider failed on its side (5xx) or hit a transient conflict (409)."""

    retryable_default = True
    breaker_failure = True
    fallback = True


class OverloadedError(ProviderError):
    """The provider is overloaded (HTTP 529 or an in-stream ``overloaded_error``)."""


class ProtocolError(ProviderError):
    """The provider's response could not be parsed: malformed, oversized or truncated."""


class NetworkError(LLMConnectorError):
    """The connection could not be made or broke before a response arrived."""

    retryable_default = True
    breaker_failure = True
    fallback = True


class TimeoutError(NetworkError):
    """A connect, read, first-token or overall deadline passed (also HTTP 408)."""


class StreamInterruptedError(LLMConnectorError):
    """A stream failed after text had reached the caller, or inside a tool call.

    Nothing is re-sent: ``partial`` holds exactly the text already delivered, and
    ``__cause__`` the underlying error. ``partial_tool_calls`` holds the tool calls the stream
    had begun but not delivered, in order; the one it broke inside has the argument text
    received so far in ``raw_arguments`` (and ``parse_error`` set, as it is cut short).
    """

    def __init__(self, message: str, *, partial: str = "", partial_tool_calls: Sequence[Any] = (),
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.partial = partial
        #: :class:`~llm_connectors.ToolCall` objects (not annotated so: ``types`` imports this module).
        self.partial_tool_calls: list[Any] = list(partial_tool_calls)


class CircuitOpenError(LLMConnectorError):
    """The provider's circuit breaker is open; the request was not sent.

    ``retry_after`` is the time left until the breaker admits a probe.
    """

    fallback = True


class UnsupportedCapabilityError(LLMConnectorError):
    """The provider lacks the capability (e.g. embeddings on Claude). Raised before any I/O."""

    fallback = True


class AllProvidersFailedError(LLMConnectorError):
    """Every provider of a fallback chain failed. ``errors`` holds each cause, in order."""

    def __init__(self, errors: Sequence[LLMConnectorError], message: str | None = None) -> None:
        self.errors = list(errors)
        if message is None:
            lines = "; ".join(f"{e.provider or '?'}: {type(e).__name__}: {e.message}" for e in self.errors)
            message = f"all {len(self.errors)} providers failed: {lines}"
        super().__init__(message)
        last = self.errors[-1] if self.errors else None
        self.retry_after = min(
            (e.retry_after for e in self.errors if e.retry_after is not None), default=None
        )
        self.status_code = last.status_code if last else None


class InsecureTLSWarning(UserWarning):
    """Issued once per process when a connector is built with TLS certificate verification off
    (``verify=False, allow_unverified_tls=True``). A warning, not an error: nothing failed, but any
    machine on the path can read the key. Not in ``__all__``, which lists the error tree only."""


# The builtin is shadowed above on purpose; keep a handle for code in this package.
BuiltinTimeoutError = builtins.TimeoutError


class ModelDeprecationWarning(FutureWarning):
    """Issued once per process and model when a call names a model its provider has deprecated
    (the model catalog says so); the message names the retirement date and the successor. After
    that date the call fails before anything is sent, with a ``NotFoundError``.

    A ``FutureWarning`` (shown by default) rather than a ``DeprecationWarning`` (hidden outside
    ``__main__``): the people who must act are the application's users, not its developers alone."""
