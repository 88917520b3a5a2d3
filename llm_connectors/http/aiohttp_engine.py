"""The aiohttp engine (the ``fast`` extra): aiohttp's connection pool behind our engine interface.

:class:`AiohttpEngine` replaces httpx's pool under asyncio, with no httpx request or response
object built on the way (``engine_choice.py`` says when it is chosen and how it differs).
:class:`AiohttpTransport` is the same pool behind httpx's transport interface, for callers who
want it under their own ``httpx.AsyncClient``. aiohttp is imported at the first request, never at
import time.
"""

from __future__ import annotations

import contextlib
import ssl
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from .engines import Engine, EngineResponse, target_url, wire_headers
from .settings import env_proxies

if TYPE_CHECKING:  # pragma: no cover
    import aiohttp

    from .settings import Timeouts

__all__ = ["READ_SIZE", "AiohttpEngine", "AiohttpTransport", "map_error"]

#: Most bytes one read of a response body returns on the aiohttp engine.
READ_SIZE = 16 << 10
#: Parsed URLs kept per engine; past this many distinct URLs the cache starts again.
_MAX_URLS = 256


class _Session:
    """One ``aiohttp.ClientSession``, opened at the first request (aiohttp is imported then, never
    at import time) and bound to that request's event loop (the shared pool keys engines by loop).

    Args:
        limits: ``max_connections`` (``None``: unlimited) and ``keepalive_expiry`` are applied.
        verify: ``True`` (httpx's default trust store, so both engines trust the same CAs),
            ``False``, or an ``ssl.SSLContext``.
    """

    def __init__(self, limits: httpx.Limits | None = None, *, verify: ssl.SSLContext | bool = True) -> None:
        self._limits = limits or httpx.Limits()
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the transport has been closed")
        import aiohttp

        limits = self._limits
        verify = self._verify
        ssl_context: ssl.SSLContext | bool = httpx.create_ssl_context(verify=verify) if verify is True else verify
        keepalive: dict[str, Any] = {}
        if limits.keepalive_expiry is not None:
            keepalive["keepalive_timeout"] = limits.keepalive_expiry
        connector = aiohttp.TCPConnector(limit=limits.max_connections or 0, limit_per_host=0, ssl=ssl_context,
                                         **keepalive)
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # pooled clients keep no cookies (see _http._NoCookies)
            auto_decompress=False,  # we decode content-encoding ourselves, bounded (_decode.BoundedDecoder)
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=env_proxies(),  # explicit transport='aiohttp' still honours HTTP(S)_PROXY / NO_PROXY
            raise_for_status=False,
            skip_auto_headers=("Content-Type",),  # httpx sends none for a body without one; neither do we
        )
        # A connector nobody closed must end as quietly as on httpx's engine: when this engine is
        # collected, or at interpreter exit, its pooled connections are closed without aiohttp's
        # "Unclosed client session" report (which would otherwise appear after asyncio.run returns).
        self._finalizer = weakref.finalize(self, _close_quietly, connector)
        return self._session

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            if self._finalizer is not None:
                self._finalizer.detach()


def _client_timeout(connect: float | None, read: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    import aiohttp

    # aiohttp's ``connect`` covers the wait for a pooled connection plus connecting.
    overall = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(total=None, connect=overall, sock_connect=connect, sock_read=read)


def _close_quietly(connector: aiohttp.BaseConnector) -> None:
    """Close a connector without its event loop (which may be closed or gone)."""
    close = getattr(connector, "_close", None)  # sync; safe on a closed loop (aiohttp >= 3.0)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


class AiohttpEngine(_Session, Engine):
    """The aiohttp engine: requests straight onto an ``aiohttp.ClientSession`` (asyncio only).

    URLs are parsed once (httpx's parser, so both engines send to the same URL) and kept; the
    headers are the ones httpx's pooled client would send (:func:`~._engine.wire_headers`).
    """

    kind = "aiohttp"

    def __init__(self, limits: httpx.Limits | None = None, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(limits, verify=verify)
        self._targets: dict[str, tuple[Any, str]] = {}
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}

    async def send(self, method: str, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str],
                   content: bytes | None, timeouts: Timeouts) -> EngineResponse:
        session = self._session or self._open()
        target = self._targets.get(url) if params is None else None
        if target is None:
            target = self._target(url, params)
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            timeout = self._timeouts[timeouts] = _client_timeout(timeouts.connect, timeouts.read, timeouts.connect)
        if not "".join(headers.values()).isascii():
            _refuse_non_ascii(headers)
        try:
            response = await session.request(method, target[0], data=content or None, allow_redirects=False,
                                             headers=wire_headers(target[1], method, headers, content), timeout=timeout)
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is exc:
                raise
        else:
            return _AiohttpResponse(response)
        raise mapped  # outside the handler: not chained to aiohttp's error (_mapped says why)

    def _target(self, url: str, params: Mapping[str, str] | None) -> tuple[Any, str]:
        from yarl import URL

        parsed = target_url(url, params)
        target = (URL(str(parsed), encoded=True), parsed.netloc.decode("ascii"))
        if params is None:
            if len(self._targets) >= _MAX_URLS:
                self._targets.clear()
            self._targets[url] = target
        return target


def _refuse_non_ascii(headers: Mapping[str, str]) -> None:
    """Raise what httpx raises for a header value it cannot send (it encodes them as ASCII)."""
    for value in headers.values():
        value.encode("ascii")


def _mapped(exc: Exception) -> Exception:
    """An aiohttp failure as the httpx exception httpx's own engine would raise; anything else as is.

    The mapped error is raised outside the ``except`` block, so it is neither the cause nor the
    context of aiohttp's: some of those (``ClientResponseError``) hold the request, and their repr
    shows its headers, the API key among them. The message (``str`` of aiohttp's error) is kept."""
    import aiohttp

    return map_error(exc) if isinstance(exc, aiohttp.ClientError) else exc


class _AiohttpResponse(EngineResponse):
    """An aiohttp response: body bytes as soon as they arrive, at most :data:`READ_SIZE` per read, so
    a stream whose events arrive faster than they are consumed still hands over its first events
    quickly rather than in one large batch."""

    __slots__ = ("_content", "_response")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.status = response.status
        self._response = response
        self._content = response.content

    def header(self, name: str) -> str | None:
        values = self._response.headers.getall(name, None)
        if values is None:
            return None
        return values[0] if len(values) == 1 else ", ".join(values)  # as httpx.Headers.get joins them

    @property
    def headers(self) -> httpx.Headers:
        return httpx.Headers(self._response.raw_headers)

    async def read(self) -> bytes:
        try:
            return await self._content.read(READ_SIZE)
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is exc:
                raise
        raise mapped  # outside the handler: not chained to aiohttp's error (_mapped says why)

    def at_end(self) -> bool:
        return self._content.at_eof()

    async def aclose(self) -> None:
        response = self._response
        if response.content.is_eof():
            response.release()  # the whole body was read: the connection goes back to the pool
        else:
            response.close()  # abandoned mid-body: the connection cannot be reused


class AiohttpTransport(_Session, httpx.AsyncBaseTransport):
    """The aiohttp engine behind httpx's transport interface, for an ``httpx.AsyncClient`` of your own.

    Args:
        limits: ``max_connections`` (``None``: unlimited) and ``keepalive_expiry`` are applied.
        verify: ``True`` (httpx's default trust store), ``False``, or an ``ssl.SSLContext``.
    """

    def __init__(self, limits: httpx.Limits | None = None, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(limits, verify=verify)
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    def _timeout(self, extension: Any) -> aiohttp.ClientTimeout:
        """httpx's per-request timeout extension as an aiohttp ``ClientTimeout`` (cached)."""
        timeout = extension or {}
        key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            found = _client_timeout(*key)
            if len(self._timeouts) < 64:
                self._timeouts[key] = found
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp
        from yarl import URL

        session = self._session or self._open()
        headers = request.headers
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = _RequestBody(request.stream)  # type: ignore[arg-type]
            headers = headers.copy()
            headers.pop("transfer-encoding", None)  # aiohttp frames streamed bodies itself
        failure: httpx.TransportError | None = None
        try:
            response = await session.request(
                request.method, URL(str(request.url), encoded=True), headers=headers.multi_items(), data=data,
                allow_redirects=False, timeout=self._timeout(request.extensions.get("timeout")),
            )
        except aiohttp.ClientError as exc:
            failure = map_error(exc, request)
        if failure is not None:
            raise failure  # outside the handler: not chained to aiohttp's error (_mapped says why)
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(status_code=response.status, headers=response.raw_headers,
                              stream=_ResponseStream(response, request), request=request, extensions=extensions)

    async def aclose(self) -> None:
        await _Session.aclose(self)


class _ResponseStream(httpx.AsyncByteStream):
    """An aiohttp response body as httpx sees it: bytes as soon as they arrive, errors mapped."""

    __slots__ = ("_request", "_response")

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    def __aiter__(self) -> _ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        import aiohttp

        failure: httpx.TransportError | None = None
        try:
            chunk = await self._response.content.read(READ_SIZE)
        except aiohttp.ClientError as exc:
            failure = map_error(exc, self._request)
        if failure is not None:
            raise failure  # outside the handler: not chained to aiohttp's error (_mapped says why)
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        response = self._response
        if response.content.is_eof():
            response.release()
        else:
            response.close()


class _RequestBody:
    """Adapts an httpx request stream to the async iterable aiohttp sends chunked."""

    __slots__ = ("_stream",)

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    def __aiter__(self) -> Any:
        return self._stream.__aiter__()


def map_error(exc: BaseException, request: httpx.Request | None = None) -> httpx.TransportError:
    """The httpx exception httpx's own transport would have raised for an aiohttp failure."""
    import aiohttp

    message = str(exc) or type(exc).__name__
    error: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        error = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        error = httpx.ReadTimeout
    elif isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        error = httpx.ProxyError
    elif isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake
        error = httpx.ConnectError
    elif isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        error = httpx.UnsupportedProtocol
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
                          aiohttp.ClientResponseError)):
        error = httpx.RemoteProtocolError  # closed early, cut body, malformed response
    elif isinstance(exc, aiohttp.ClientOSError):
        error = httpx.ReadError  # reset or broken pipe on an established connection
    else:
        error = httpx.TransportError
    mapped = error(message, request=request)
    mapped.__cause__ = _ssl_reason(exc)  # kept for the TLS classification; aiohttp's own error is not chained
    return mapped


def _ssl_reason(exc: BaseException) -> BaseException | None:
    """The ``ssl`` module's own error behind an aiohttp failure, if any: it carries OpenSSL's reason and
    nothing of the request (aiohttp's exceptions may hold the request, headers included)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        if isinstance(current, ssl.SSLError) and type(current).__module__ == "ssl":
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
