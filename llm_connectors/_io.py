"""The HTTP side of :class:`~llm_connectors.BaseConnector`: send, read, stream, classify.

Kept apart from ``base.py`` so the public class stays readable. Everything here runs once per
HTTP attempt (or per network read, for streams), so it is written for the hot path.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from . import _json
from ._calls import CURRENT_CALL
from ._classify import classify, first_header, transport_error
from ._decode import ACCEPT_ENCODING, BoundedDecoder
from ._framing import NDJSONDecoder, SSEDecoder
from ._http import MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES
from ._secrets import Secret, scrub
from ._telemetry import telemetry
from .errors import BuiltinTimeoutError, ConfigurationError, LLMConnectorError, ProtocolError
from .hooks import run_hook
from .requests import HTTPRequest
from .stream import StreamDecoder
from .types import ChatChunk

if TYPE_CHECKING:
    from .base import BaseConnector

__all__ = ["read_json", "send", "stream_chunks"]

logger = logging.getLogger("llm_connectors")
payload_logger = logging.getLogger("llm_connectors.payloads")
MAX_REDIRECTS = 5
MAX_COMPRESSED_STREAM_BYTES = 64 << 20  # a compressed stream may not inflate past this
_PAYLOAD_LOG_CHARS = 2048
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
                                 "cookie"})


async def send(conn: BaseConnector, request: HTTPRequest, *, stream: bool = False) -> httpx.Response:
    """Send one attempt; return the open response if it succeeded, else raise the typed error."""
    client = conn._http()
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
        response = await _send_following_redirects(conn, client, request, conn._url(request.path), content, headers)
        if conn._observe_headers is not None:
            conn._observe_headers(response.headers)
        if response.status_code < 300:
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


async def _send_following_redirects(conn: BaseConnector, client: httpx.AsyncClient, request: HTTPRequest,
                                    url: str, content: bytes | None, headers: dict[str, str]) -> httpx.Response:
    """Send, and follow redirects only if the connector allows it, never leaking credentials.

    httpx strips only ``Authorization`` on a cross-origin hop and would forward ``x-api-key``
    (RELIABILITY.md §6.3), so we follow redirects ourselves: method-preserving 307/308 (or any
    redirect of a GET), https never downgraded to http, every credential header dropped as soon
    as the target's origin differs from the configured base URL's.
    """
    method, params = request.method, request.params
    target = httpx.URL(url)
    for hop in range(MAX_REDIRECTS + 1):
        http_request = client.build_request(method, target, content=content, params=params, headers=headers,
                                            timeout=conn._httpx_timeout)
        response = await client.send(http_request, stream=True)
        if not 300 <= response.status_code < 400 or not conn._follow_redirects:
            return response
        location = response.headers.get("location")
        status = response.status_code
        await response.aclose()
        if not location:
            raise ConfigurationError(f"the server answered {status} without a location", provider=conn.provider)
        if hop == MAX_REDIRECTS:
            raise ConfigurationError(f"more than {MAX_REDIRECTS} redirects", provider=conn.provider)
        following = http_request.url.join(location)
        if status not in (307, 308) and method != "GET":
            raise ConfigurationError(f"the server redirected a {method} with {status} to {following.host}; only "
                                     "307/308 keep the request intact. Set base_url to the final address.",
                                     provider=conn.provider)
        if http_request.url.scheme == "https" and following.scheme != "https":
            raise ConfigurationError(f"refusing a redirect from https to plain http ({following.host})",
                                     provider=conn.provider)
        if _origin(following) != conn._origin:
            headers = {k: v for k, v in headers.items() if k.lower() not in conn._credential_header_names}
        target, params = following, None
    raise AssertionError("unreachable")  # pragma: no cover


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def credential_header_names(conn: BaseConnector) -> frozenset[str]:
    auth = conn.definition.auth
    return _CREDENTIAL_HEADERS | {auth.header.lower()}


async def _raw_pieces(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it came off the wire. A body already read into memory (by a mock transport,
    or the caller's own client) was decoded by httpx already, so it is returned as is."""
    if response.is_stream_consumed:
        yield response.content
        return
    async for piece in response.aiter_raw():
        yield piece


async def _read_plain(response: httpx.Response, limit: int, provider: str | None) -> bytes:
    """The common case: an uncompressed body, read with only a size check."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(f"response body of {declared} bytes is over the {limit}-byte limit", provider=provider)
    if response.is_stream_consumed:
        body = response.content
    else:
        pieces: list[bytes] = []
        size = 0
        async for piece in response.aiter_raw():
            size += len(piece)
            if size > limit:
                raise ProtocolError(f"response body is over the {limit}-byte limit", provider=provider)
            pieces.append(piece)
        body = b"".join(pieces)
    if len(body) > limit:
        raise ProtocolError(f"response body is over the {limit}-byte limit", provider=provider)
    return body


def _encoding(response: httpx.Response) -> str | None:
    return None if response.is_stream_consumed else response.headers.get("content-encoding")


async def read_bounded(response: httpx.Response, limit: int, provider: str | None = None) -> bytes:
    """Read and decode a body, refusing to hold more than ``limit`` decoded bytes."""
    encoding = _encoding(response)
    if not encoding or encoding == "identity":
        return await _read_plain(response, limit, provider)
    decoder = BoundedDecoder(encoding, limit, provider)
    chunks: list[bytes] = []
    pieces = _raw_pieces(response)
    try:
        async for piece in pieces:
            chunks.append(decoder.feed(piece))
    finally:
        await pieces.aclose()  # type: ignore[attr-defined]
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


async def stream_chunks(conn: BaseConnector, response: httpx.Response, decoder: StreamDecoder,
                        deadline: float | None) -> AsyncGenerator[ChatChunk, None]:
    """Frame and decode a streamed body read by read, under the idle, first-token and overall timers."""
    framer: SSEDecoder | NDJSONDecoder = (
        SSEDecoder() if conn.stream_format == "sse" else NDJSONDecoder(provider=conn.provider))
    feed = decoder.feed
    frame = framer.feed
    encoding = _encoding(response)
    inflate = None if not encoding or encoding == "identity" else \
        BoundedDecoder(encoding, MAX_COMPRESSED_STREAM_BYTES, conn.provider).feed
    first_token = conn.timeouts.first_token
    read_deadline = deadline
    if first_token is not None:
        ttft_deadline = anyio.current_time() + first_token
        read_deadline = ttft_deadline if deadline is None else min(deadline, ttft_deadline)
    # Our pooled clients enforce the read (idle) timeout on every read themselves, so a read only
    # needs a cancel scope of its own when the call's deadline is nearer than that; otherwise a
    # clock check after each read enforces the deadline at a fraction of a scope's cost.
    trusted_reads = conn._transport is None and conn._owns_client
    idle = conn.timeouts.read
    now = anyio.current_time
    reads: AsyncIterator[bytes] = _raw_pieces(response)
    reader = reads.__anext__
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
            except StopAsyncIteration:
                break
            except (httpx.HTTPError, BuiltinTimeoutError) as exc:
                raise transport_error(exc, conn.provider, "streaming") from exc
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
            await reads.aclose()  # type: ignore[attr-defined]
            await response.aclose()


def error_from_response(conn: BaseConnector, response: httpx.Response, body: bytes) -> LLMConnectorError:
    status = response.status_code
    request_id = first_header(response.headers, conn.request_id_headers)
    if status < 400:
        location = httpx.URL(response.headers.get("location", "")).host or "another address"
        return ConfigurationError(
            f"the server answered {status} (a redirect to {location}); redirects are not followed. "
            "Set base_url to the final address, or pass follow_redirects=True.", provider=conn.provider,
            status_code=status, request_id=request_id)
    info = conn.parse_error(status, body)
    err = classify(status, info, response.headers, provider=conn.provider, request_id=request_id,
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
