"""The HTTP side of :class:`~llm_connectors.BaseConnector`: send, read, stream, classify.

Kept apart from ``base.py`` so the public class stays readable. Everything here runs once per
HTTP attempt (or per network read, for streams), so it is written for the hot path.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from .._asynclib import current_loop_token
from .._secrets import Secret, scrub
from ..errors import BuiltinTimeoutError, ConfigurationError, LLMConnectorError, ProtocolError
from ..hooks import run_hook
from ..observe.calls import CURRENT_CALL
from ..observe.telemetry import telemetry
from ..requests import HTTPRequest
from ..stream import StreamDecoder
from ..types import ChatChunk
from ..wire import jsonio as _json
from ..wire.classify import classify, transport_error
from ..wire.framing import NDJSONDecoder, SSEDecoder
from ..wire.headers import first_header
from .decode import ACCEPT_ENCODING, BoundedDecoder
from .engines import Engine, EngineResponse, target_url
from .settings import MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES

if TYPE_CHECKING:
    from ..base import BaseConnector

__all__ = ["read_json", "send", "stream_chunks"]

logger = logging.getLogger("llm_connectors")
payload_logger = logging.getLogger("llm_connectors.payloads")
MAX_REDIRECTS = 5
MAX_COMPRESSED_STREAM_BYTES = 64 << 20  # a compressed stream may not inflate past this
_PAYLOAD_LOG_CHARS = 2048
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
                                 "cookie"})


async def send(conn: BaseConnector, request: HTTPRequest, *, stream: bool = False) -> EngineResponse:
    """Send one attempt; return the open response if it succeeded, else raise the typed error."""
    engine = conn._http()
    call = CURRENT_CALL.get()
    span = None
    if call is not None:
        attempt = call.next_attempt()
        hooks = call.hooks
        if hooks is not None and hooks.before_request is not None and call.context is not None:
            call.context.http = request
            call.context.attempt = attempt
            await run_hook(hooks.before_request, call.context)
        if call.span is not None:
            span = telemetry.attempt(call.span, attempt, conn.provider)
    key = conn._api_key if conn._credentials.static else await conn._credentials.current()
    headers = conn.credential_headers(key)
    if conn._headers:
        headers.update(conn._headers)
    if request.headers:
        headers.update(request.headers)
    headers["accept-encoding"] = "identity" if stream else ACCEPT_ENCODING
    content = None
    if request.json is not None:
        content = _json.dumps(request.json)
        headers["content-type"] = "application/json"
        if conn._log_payloads:
            _log_payload(conn, "request", request.path, content)
    try:
        response = await _send_following_redirects(conn, engine, request, conn._url(request.path), content, headers)
        if conn._observe_headers is not None:
            conn._observe_headers(response.headers)
        if response.status < 300:
            return response
        try:
            body = await read_bounded(response, MAX_ERROR_BODY_BYTES, conn.provider)
        except (LLMConnectorError, httpx.HTTPError):
            body = b""
        finally:
            await response.aclose()
        error = error_from_response(conn, response, body)
        if isinstance(key, Secret):
            conn._credentials.report(key, error)
        raise error
    except BaseException as exc:
        if span is not None:
            span.set_attribute("error.type", type(exc).__name__)
        raise
    finally:
        if span is not None:
            span.end()


async def _send_following_redirects(conn: BaseConnector, engine: Engine, request: HTTPRequest, url: str,
                                    content: bytes | None, headers: dict[str, str]) -> EngineResponse:
    """Send, and follow redirects only if the connector allows it, never leaking credentials.

    httpx strips only ``Authorization`` on a cross-origin hop and would forward ``x-api-key``
    (RELIABILITY.md §6.3), so we follow redirects ourselves: method-preserving 307/308 (or any
    redirect of a GET), https never downgraded to http, every credential header dropped as soon
    as the target's origin differs from the configured base URL's.
    """
    method, params = request.method, request.params
    for hop in range(MAX_REDIRECTS + 1):
        response = await engine.send(method, url, params, headers, content, conn.timeouts)
        status = response.status
        if not 300 <= status < 400 or not conn._follow_redirects:
            return response
        location = response.header("location")
        await response.aclose()
        if not location:
            raise ConfigurationError(f"the server answered {status} without a location", provider=conn.provider)
        if hop == MAX_REDIRECTS:
            raise ConfigurationError(f"more than {MAX_REDIRECTS} redirects", provider=conn.provider)
        current = target_url(url, params)
        following = current.join(location)
        if status not in (307, 308) and method != "GET":
            raise ConfigurationError(f"the server redirected a {method} with {status} to {following.host}; only "
                                     "307/308 keep the request intact. Set base_url to the final address.",
                                     provider=conn.provider)
        if current.scheme == "https" and following.scheme != "https":
            raise ConfigurationError(f"refusing a redirect from https to plain http ({following.host})",
                                     provider=conn.provider)
        if _origin(following) != conn._origin:
            headers = {k: v for k, v in headers.items() if k.lower() not in conn._credential_header_names}
        url, params = str(following), None
    raise AssertionError("unreachable")  # pragma: no cover


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def credential_header_names(conn: BaseConnector) -> frozenset[str]:
    auth = conn.definition.auth
    return _CREDENTIAL_HEADERS | {auth.header.lower()}


async def _read_plain(response: EngineResponse, limit: int, provider: str | None) -> bytes:
    """The common case: an uncompressed body, read with only a size check."""
    declared = response.header("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(f"response body of {declared} bytes is over the {limit}-byte limit", provider=provider)
    body = response.in_memory()
    if body is None:
        pieces: list[bytes] = []
        size = 0
        while piece := await response.read():
            size += len(piece)
            if size > limit:
                raise ProtocolError(f"response body is over the {limit}-byte limit", provider=provider)
            pieces.append(piece)
            if response.at_end():
                break
        body = b"".join(pieces)
    if len(body) > limit:
        raise ProtocolError(f"response body is over the {limit}-byte limit", provider=provider)
    return body


def _encoding(response: EngineResponse) -> str | None:
    """The body's content-encoding, unless a client already decoded the body into memory."""
    encoding = response.header("content-encoding")
    return encoding if encoding and encoding != "identity" and response.in_memory() is None else None


async def read_bounded(response: EngineResponse, limit: int, provider: str | None = None) -> bytes:
    """Read and decode a body, refusing to hold more than ``limit`` decoded bytes."""
    encoding = _encoding(response)
    if encoding is None:
        return await _read_plain(response, limit, provider)
    decoder = BoundedDecoder(encoding, limit, provider)
    chunks: list[bytes] = []
    while piece := await response.read():
        chunks.append(decoder.feed(piece))
    chunks.append(decoder.flush())
    return b"".join(chunks)


async def read_json(conn: BaseConnector, request: HTTPRequest, deadline: float | None, what: str) -> Any:
    """One complete JSON request/response under the call's deadline."""
    try:
        with _deadline_scope(deadline):
            response = await send(conn, request)
            try:
                body = await read_bounded(response, MAX_BODY_BYTES, conn.provider)
            finally:
                await response.aclose()
    except (httpx.HTTPError, BuiltinTimeoutError) as exc:
        raise transport_error(exc, conn.provider, what) from exc
    if conn._log_payloads:
        _log_payload(conn, "response", request.path, body)
    return _json.loads(body, provider=conn.provider, what=what)


async def stream_chunks(conn: BaseConnector, response: EngineResponse, decoder: StreamDecoder,
                        deadline: float | None) -> AsyncGenerator[ChatChunk, None]:
    """Frame and decode a streamed body read by read, under the idle, first-token and overall timers."""
    framer: SSEDecoder | NDJSONDecoder = (
        SSEDecoder() if conn.stream_format == "sse" else NDJSONDecoder(provider=conn.provider))
    feed = decoder.feed
    frame = framer.feed
    in_memory = response.in_memory()
    encoding = _encoding(response)
    inflate = None if encoding is None else BoundedDecoder(encoding, MAX_COMPRESSED_STREAM_BYTES, conn.provider).feed
    now = _clock()
    first_token = conn.timeouts.first_token
    read_deadline = deadline
    if first_token is not None:
        ttft_deadline = now() + first_token
        read_deadline = ttft_deadline if deadline is None else min(deadline, ttft_deadline)
    # Our pooled engines enforce the read (idle) timeout on every read themselves, so a read only
    # needs a cancel scope of its own when the call's deadline is nearer than that; otherwise a
    # clock check after each read enforces the deadline at a fraction of a scope's cost.
    trusted_reads = conn._http().enforces_timeouts
    idle = conn.timeouts.read
    reader = response.read if in_memory is None else _once(in_memory)
    try:
        while True:
            try:
                if read_deadline is None:
                    data = await reader()
                else:
                    left = read_deadline - now()
                    if trusted_reads and left > idle:
                        data = await reader()
                    else:
                        with _Deadline(read_deadline):
                            data = await reader()
                    if now() >= read_deadline:
                        raise BuiltinTimeoutError
            except (httpx.HTTPError, BuiltinTimeoutError) as exc:
                raise transport_error(exc, conn.provider, "streaming") from exc
            if not data:
                break
            if inflate is not None:
                data = inflate(data)
            for event in frame(data):
                chunk = feed(event)
                if chunk is not None:
                    read_deadline = deadline  # the first-token timer is satisfied
                    yield chunk
        for event in framer.close() or ():
            chunk = feed(event)
            if chunk is not None:
                yield chunk
        chunk = decoder.finish()
        if chunk is not None:
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


def _clock() -> Callable[[], float]:
    """``anyio.current_time`` without its backend lookup on every call (two calls per read of a
    stream, a tenth of a stream's CPU): the running loop's own clock, which is what anyio reads."""
    token = current_loop_token()
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and isinstance(token, asyncio.AbstractEventLoop):
        loop_time: Callable[[], float] = token.time
        return loop_time
    import trio

    return trio.current_time


def _once(body: bytes) -> Callable[[], Awaitable[bytes]]:
    """A reader handing over a body already in memory, then its end."""
    pieces = [b"", body] if body else [b""]

    async def read() -> bytes:
        return pieces.pop() if pieces else b""

    return read


def error_from_response(conn: BaseConnector, response: EngineResponse, body: bytes) -> LLMConnectorError:
    status = response.status
    headers = response.headers
    request_id = first_header(headers, conn.request_id_headers)
    if status < 400:
        location = httpx.URL(headers.get("location", "")).host or "another address"
        return ConfigurationError(
            f"the server answered {status} (a redirect to {location}); redirects are not followed. "
            "Set base_url to the final address, or pass follow_redirects=True.", provider=conn.provider,
            status_code=status, request_id=request_id)
    info = conn.parse_error(status, body)
    err = classify(status, info, headers, provider=conn.provider, request_id=request_id,
                   codes=conn.error_codes)
    return scrubbed(conn, err)


def scrubbed(conn: BaseConnector, err: LLMConnectorError) -> LLMConnectorError:
    held = conn.secrets()
    if held:
        message = scrub(err.message, held)
        if message != err.message:
            err.message = message
            err.args = (message,)
    return err


def _log_payload(conn: BaseConnector, what: str, path: str, body: bytes) -> None:
    text = scrub(body.decode("utf-8", "replace"), conn.secrets())
    if len(text) > _PAYLOAD_LOG_CHARS:
        text = text[:_PAYLOAD_LOG_CHARS] + "…"
    payload_logger.debug("%s %s %s: %s", conn.provider, what, path, text)


class _Deadline:
    """Raise the builtin ``TimeoutError`` if the body is still running at ``deadline`` (anyio's clock).

    What ``anyio.fail_after`` does, without its generator-based context manager on the hot path.
    """

    __slots__ = ("_scope",)

    def __init__(self, deadline: float) -> None:
        self._scope = anyio.CancelScope(deadline=deadline)

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(self, *exc: Any) -> bool:
        suppressed = bool(self._scope.__exit__(*exc))
        if self._scope.cancelled_caught:  # only our own deadline cancels this scope
            raise BuiltinTimeoutError
        return suppressed


_NO_DEADLINE: contextlib.nullcontext[None] = contextlib.nullcontext()


def _deadline_scope(deadline: float | None) -> _Deadline | contextlib.nullcontext[None]:
    """A deadline scope until ``deadline`` (anyio's clock), or nothing when there is none."""
    return _NO_DEADLINE if deadline is None else _Deadline(deadline)
