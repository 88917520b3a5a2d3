"""Mapping failures into the error tree, in one place: status first, then body code, then message."""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .. import errors as e
from .headers import parse_retry_after, should_retry_header

_BY_STATUS: dict[int, type[e.LLMConnectorError]] = {
    400: e.InvalidRequestError,
    401: e.AuthenticationError,
    402: e.QuotaExceededError,
    403: e.PermissionDeniedError,
    404: e.NotFoundError,
    408: e.TimeoutError,
    409: e.ProviderError,
    413: e.InvalidRequestError,
    422: e.InvalidRequestError,
    429: e.RateLimitError,
    529: e.OverloadedError,
}

#: Error codes / types that say more than the status does (seen across providers, WIRE.md).
COMMON_CODES: dict[str, type[e.LLMConnectorError]] = {
    "context_length_exceeded": e.ContextWindowExceededError,
    "model_context_window_exceeded": e.ContextWindowExceededError,
    "insufficient_quota": e.QuotaExceededError,
    "billing_error": e.QuotaExceededError,
    "billing_hard_limit_reached": e.QuotaExceededError,
    "invalid_api_key": e.AuthenticationError,
    "authentication_error": e.AuthenticationError,
    "permission_error": e.PermissionDeniedError,
    "not_found_error": e.NotFoundError,
    "model_not_found": e.NotFoundError,
    "rate_limit_error": e.RateLimitError,
    "rate_limit_exceeded": e.RateLimitError,
    "rate_limited": e.RateLimitError,
    "overloaded_error": e.OverloadedError,
    "api_error": e.ProviderError,
    "timeout_error": e.TimeoutError,
    "content_filter": e.ContentFilterError,
    "content_policy_violation": e.ContentFilterError,
}

_CONTEXT_PATTERNS = re.compile(
    r"context[ _-]?(length|window)|maximum context|prompt is too long|too many tokens|"
    r"input is too long|exceeds? (the )?(model'?s? )?(maximum|max)[a-z ]*(context|tokens)",
    re.IGNORECASE,
)
_HTML = re.compile(r"^\s*<(!doctype|html|head|body)", re.IGNORECASE)
#: ``err.code`` of the error a failed certificate check raises (not a provider code: no provider answered).
TLS_VERIFY_FAILED = "tls_certificate_verify_failed"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What a provider's error body said."""

    message: str
    codes: tuple[str, ...] = ()
    request_id: str | None = None  # some bodies carry it (Anthropic, older Mistral 401s)
    categories: tuple[str, ...] = ()  # content-policy categories, for a ContentFilterError


def parse_error_body(status: int, body: bytes) -> ErrorInfo:
    """Read every error-body shape the providers use (WIRE.md §1.7, §2.7, §3.7, §4.6)."""
    from . import jsonio as _json

    text = body.decode("utf-8", "replace").strip()
    data: Any = None
    if text[:1] in "{[":
        try:
            data = _json.loads(text)
        except e.ProtocolError:
            data = None
    if isinstance(data, Mapping):
        return _from_mapping(data)
    if not text or _HTML.match(text):
        return ErrorInfo(f"HTTP {status} with no readable error body")
    return ErrorInfo(text[:500])


def _from_mapping(data: Mapping[str, Any]) -> ErrorInfo:
    info = _message_and_codes(data)
    request_id = data.get("request_id")
    if isinstance(request_id, str) and request_id:
        return ErrorInfo(info.message, info.codes, request_id)
    return info


def _message_and_codes(data: Mapping[str, Any]) -> ErrorInfo:
    codes: list[str] = []
    error = data.get("error")
    if isinstance(error, Mapping):  # OpenAI / Anthropic / OpenAI-compatible servers
        _add_codes(codes, error.get("code"), error.get("type"))
        return ErrorInfo(_message_text(error.get("message")) or "unknown error", tuple(codes))
    if isinstance(error, str):  # Ollama
        _add_codes(codes, data.get("code"), data.get("type"))
        return ErrorInfo(error, tuple(codes))
    detail = data.get("detail")
    if detail is not None:  # FastAPI-style (Mistral 401/404/422)
        return ErrorInfo(_message_text(detail) or "unknown error", tuple(codes))
    if "message" in data:  # Mistral {"object": "error", "message": ..., "type", "code"}
        _add_codes(codes, data.get("code"), data.get("type"))
        return ErrorInfo(_message_text(data.get("message")) or "unknown error", tuple(codes))
    return ErrorInfo("unknown error")


def _add_codes(codes: list[str], *values: Any) -> None:
    for value in values:
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            codes.append(str(value))


def _message_text(message: Any) -> str:
    """Messages may be a string, a JSON string, a dict with ``detail``, or a validation list."""
    if isinstance(message, str):
        stripped = message.strip()
        if stripped[:1] in "{[":
            from . import jsonio as _json

            try:
                return _message_text(_json.loads(stripped))
            except e.ProtocolError:
                return message
        return message
    if isinstance(message, Mapping):
        for key in ("message", "detail", "msg"):
            if key in message:
                return _message_text(message[key])
        return str(dict(message))[:500]
    if isinstance(message, list):
        parts = []
        for item in message[:5]:
            if isinstance(item, Mapping):
                loc = ".".join(str(x) for x in item.get("loc", ()) if x != "body")
                msg = _message_text(item.get("msg") or item.get("message") or "")
                parts.append(f"{loc}: {msg}" if loc else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return "" if message is None else str(message)


def classify(
    status: int,
    info: ErrorInfo,
    headers: Mapping[str, str],
    *,
    provider: str,
    request_id: str | None,
    codes: Mapping[str, type[e.LLMConnectorError]],
) -> e.LLMConnectorError:
    """Build the typed error for an HTTP error response."""
    cls = _BY_STATUS.get(status) or (e.ProviderError if status >= 500 else e.InvalidRequestError)
    for code in info.codes:
        mapped = codes.get(code) or COMMON_CODES.get(code)
        if mapped is e.ProviderError and status in _BY_STATUS:
            continue  # a generic "api_error" must not turn a specific 408/422 into a retryable 5xx
        if mapped is not None:
            cls = mapped
            break
    if issubclass(cls, e.InvalidRequestError) and _CONTEXT_PATTERNS.search(info.message):
        cls = e.ContextWindowExceededError
    err = cls(
        info.message,
        provider=provider,
        status_code=status,
        request_id=request_id or info.request_id,
        retryable=should_retry_header(headers),
        retry_after=parse_retry_after(headers),
        code=info.codes[0] if info.codes else None,
    )
    if info.categories and isinstance(err, e.ContentFilterError):
        err.categories = list(info.categories)
    if status == 409:
        err.breaker_failure = False  # a lock conflict, not a sick provider (RELIABILITY.md §1.7)
    return err


def _certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate check failure behind a connect error, if that is what it was.

    Every engine chains it: httpx and httpcore raise ``from`` the ``ssl`` error (through trio's
    ``BrokenResourceError`` on trio), aiohttp's ``ClientConnectorCertificateError`` too, and our
    engines raise the httpx exception ``from`` theirs. The innermost one is returned: aiohttp's
    wrapper is an ``SSLCertVerificationError`` too, but only ``ssl``'s own carries OpenSSL's
    reason, so both engines report the same text. The walk is bounded and cycle-safe.
    """
    found: ssl.SSLCertVerificationError | None = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        if isinstance(current, ssl.SSLCertVerificationError):
            found = current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return found


def transport_error(exc: BaseException, provider: str, what: str) -> e.LLMConnectorError:
    """Turn an httpx/anyio failure into our tree, with a message built from our own fields."""
    if isinstance(exc, httpx.TransportError):
        failure = _certificate_failure(exc)
        if failure is not None:
            return _tls_error(failure, provider, what)
    if isinstance(exc, (httpx.TimeoutException, e.BuiltinTimeoutError)):
        kinds: dict[type[BaseException], str] = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for data (read timeout)",
            httpx.WriteTimeout: "sending the request",
            httpx.PoolTimeout: "waiting for a free connection",
        }
        kind = kinds.get(type(exc), "the call (deadline)")
        return e.TimeoutError(f"timed out {kind} during {what}", provider=provider)
    if isinstance(exc, httpx.ConnectError):
        return e.NetworkError(f"could not connect during {what} ({type(exc).__name__})", provider=provider)
    if isinstance(exc, httpx.HTTPError):
        return e.NetworkError(f"connection failed during {what} ({type(exc).__name__})", provider=provider)
    return e.NetworkError(f"connection failed during {what} ({type(exc).__name__})", provider=provider)


def _tls_error(failure: ssl.SSLCertVerificationError, provider: str, what: str) -> e.ConfigurationError:
    """A certificate the connector does not trust is a setup problem, as a redirect is: sending again
    cannot help and the provider is not unhealthy, so it is a ConfigurationError (not retried, not
    counted by the circuit breaker) that says how to fix it."""
    # OpenSSL's fixed reason text ("self-signed certificate", "Hostname mismatch, certificate is not
    # valid for 'h'."): nothing the server sends, nothing secret.
    reason = str(getattr(failure, "verify_message", "") or "")[:200].rstrip(".") or "certificate verify failed"
    return e.ConfigurationError(
        f"TLS certificate verification failed during {what}: {reason}. The server's certificate is not "
        "signed by a CA this connector trusts, or is not valid for its host. If the server uses a private "
        "or self-signed CA, pass verify='/path/to/ca-bundle.pem' or verify=<ssl.SSLContext> trusting it; "
        "otherwise check base_url's host name", provider=provider, code=TLS_VERIFY_FAILED)
