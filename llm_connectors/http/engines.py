"""The seam between ``_io`` and the HTTP libraries: send one request, read its body piece by piece.

``_io`` talks only to :class:`Engine` and :class:`EngineResponse`. Three engines implement them:

* :class:`HttpcoreEngine`, a pooled client on httpx's engine. On a pooled client httpx's client
  layer does nothing we use: auth, cookies, redirects and event hooks are all off, and its request,
  response and header objects cost about a third of a call's CPU. So requests go straight to the
  connection pool httpx would use (httpcore), with the headers httpx would send, and failures
  mapped to httpx's exceptions as httpx maps them.
* :class:`ClientEngine`, any ``httpx.AsyncClient`` driven through httpx's public API: the
  caller's own client (``http_client=``), one around a caller's transport (``transport=<object>``),
  or a pooled one when the environment configures a proxy (httpx's proxy handling is the
  reference). Mocks (respx, ``httpx.MockTransport``) see exactly what they always saw.
* :class:`~llm_connectors.http.aiohttp_engine.AiohttpEngine`, aiohttp's pool with no httpx object in between.

Every engine raises httpx's exceptions (``httpx.ConnectError``, ``httpx.ReadTimeout``...), so
``_classify.transport_error`` maps a failure to the same typed error whichever engine ran, and
every engine puts the same headers on the wire, in the same order (tests/integration/test_transport.py).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from .settings import USER_AGENT, PoolLimits, Timeouts

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    import httpcore

__all__ = ["ClientEngine", "Engine", "EngineResponse", "HttpcoreEngine", "wire_headers"]

#: The headers httpx's pooled client sends by default, in its order (our user agent replaces
#: httpx's, and httpx's ``update`` moves a replaced header to the end).
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"), ("user-agent", USER_AGENT))
_DEFAULTS_BY_NAME = tuple((item[0].lower(), item) for item in DEFAULT_HEADERS)
_DEFAULT_NAMES = frozenset(name for name, _ in _DEFAULTS_BY_NAME)
#: Methods httpx gives an explicit ``Content-Length: 0`` when they carry no body.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Parsed URLs kept per engine; past this many distinct URLs the cache starts again.
_MAX_URLS = 256


def wire_headers(host: str, method: str, headers: Mapping[str, str], content: bytes | None) -> list[tuple[str, str]]:
    """The request headers httpx's pooled client would send, in its order.

    httpx starts from the client's defaults, drops each default the request names again (any
    case) and appends the request's own; ``Host`` goes first (h11 writes it first in any case),
    ``Content-Length`` at the end for a body, or ``Content-Length: 0`` right after ``Host`` for a
    POST, PUT or PATCH without one.
    """
    names = set(map(str.lower, headers))
    out = [("Host", host)] if "host" not in names else []
    if content is None and method in _BODY_METHODS and "content-length" not in names:
        out.append(("Content-Length", "0"))
    if names.isdisjoint(_DEFAULT_NAMES):
        out += DEFAULT_HEADERS
    else:
        out += [item for name, item in _DEFAULTS_BY_NAME if name not in names]
    out += headers.items()
    if content is not None and "content-length" not in names:
        out.append(("Content-Length", str(len(content))))
    return out


def target_url(url: str, params: Mapping[str, str] | None) -> httpx.URL:
    """The URL httpx's ``build_request`` would send to (``params`` replace the URL's query)."""
    return httpx.URL(url) if params is None else httpx.URL(url, params=params)


class EngineResponse(abc.ABC):
    """An open response: status and headers read, body not yet (or only by a mock).

    ``read()`` returns the body piece by piece as it arrives, still content-encoded, and ``b""``
    at its end; failures are httpx exceptions. ``aclose()`` must always be called: it returns the
    connection to the pool when the body was read to its end, and discards it otherwise.
    """

    __slots__ = ("status",)

    status: int

    @abc.abstractmethod
    def header(self, name: str) -> str | None:
        """One response header by its lower-case name (repeated headers joined with ``", "``)."""

    @property
    @abc.abstractmethod
    def headers(self) -> httpx.Headers:
        """Every header, case-insensitive, with ``httpx.Headers`` semantics (off the hot path)."""

    def in_memory(self) -> bytes | None:
        """The body, already read and decoded, when a client read it into memory (a mock
        transport, a caller's client); ``None`` when it is still to be read with :meth:`read`."""
        return None

    @abc.abstractmethod
    async def read(self) -> bytes:
        """The next piece of the body as it arrived (still content-encoded); ``b""`` at its end."""

    def at_end(self) -> bool:
        """Whether the body has been read to its end already, so that another :meth:`read` would
        only return ``b""`` (a hint that saves that read; ``False`` is always a correct answer)."""
        return False

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Return the connection to the pool (body read to its end) or discard it."""


class Engine(abc.ABC):
    """Sends requests for the connectors that share it (a pool entry, or one connector's client)."""

    __slots__ = ()

    #: ``"httpx"`` or ``"aiohttp"``: which library moves the bytes.
    kind = "httpx"
    #: Whether the engine bounds every wait (pool, connect, each read) by the connector's
    #: timeouts itself, so a read needs no cancel scope of its own while the call's deadline is
    #: further away than the read timeout. False for a client or transport we did not configure.
    enforces_timeouts = True

    @property
    @abc.abstractmethod
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` has run (a pool entry is then replaced)."""

    @abc.abstractmethod
    async def send(self, method: str, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str],
                   content: bytes | None, timeouts: Timeouts) -> EngineResponse:
        """Send one request (no redirects followed); the response is open, its body unread."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the pool (or the client, when the engine owns it)."""


# -- any httpx client, through httpx's public API ------------------------------------------------


class _HttpxResponse(EngineResponse):
    __slots__ = ("_iter", "_response")

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self._response = response
        self._iter: Any = None

    def header(self, name: str) -> str | None:
        value: str | None = self._response.headers.get(name)
        return value

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    def in_memory(self) -> bytes | None:
        response = self._response
        return response.content if response.is_stream_consumed else None

    async def read(self) -> bytes:
        pieces = self._iter
        if pieces is None:
            pieces = self._iter = self._response.aiter_raw()
        try:
            return await pieces.__anext__()  # type: ignore[no-any-return]
        except StopAsyncIteration:
            return b""

    async def aclose(self) -> None:
        pieces, self._iter = self._iter, None
        try:
            if pieces is not None:
                await pieces.aclose()
        finally:
            await self._response.aclose()


class ClientEngine(Engine):
    """An ``httpx.AsyncClient`` driven through httpx's public API (``build_request`` and ``send``).

    Args:
        client: The client.
        owned: Whether :meth:`aclose` closes it (not a caller's own client).
        enforces_timeouts: Whether we configured its transport (a pooled client behind a proxy).
    """

    __slots__ = ("_owned", "_timeouts", "client", "enforces_timeouts")

    def __init__(self, client: httpx.AsyncClient, *, owned: bool, enforces_timeouts: bool = False) -> None:
        self.client = client
        self._owned = owned
        self.enforces_timeouts = enforces_timeouts
        self._timeouts: dict[Timeouts, httpx.Timeout] = {}

    @property
    def is_closed(self) -> bool:
        return self.client.is_closed

    async def send(self, method: str, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str],
                   content: bytes | None, timeouts: Timeouts) -> EngineResponse:
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            timeout = self._timeouts[timeouts] = timeouts.httpx_timeout()
        client = self.client
        request = client.build_request(method, url, content=content, params=params, headers=headers, timeout=timeout)
        return _HttpxResponse(await client.send(request, stream=True))

    async def aclose(self) -> None:
        if self._owned:
            await self.client.aclose()


# -- httpx's own connection pool, without httpx's client layer ----------------------------------


class _Target:
    """One URL, parsed once: what httpcore needs, and the ``Host`` header httpx would send."""

    __slots__ = ("host", "url")

    def __init__(self, url: httpx.URL) -> None:
        import httpcore

        self.url = httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path)
        self.host = url.netloc.decode("ascii")


class _CoreResponse(EngineResponse):
    __slots__ = ("_index", "_iter", "_raw", "_stream")

    def __init__(self, response: httpcore.Response) -> None:
        self.status = response.status
        self._raw: list[tuple[bytes, bytes]] = response.headers
        self._stream: Any = response.stream
        self._iter: Any = None
        self._index: dict[bytes, bytes] | None = None

    def header(self, name: str) -> str | None:
        index = self._index
        if index is None:  # built once, on the first lookup, like httpx.Headers.get would join them
            index = self._index = {}
            for key, value in self._raw:
                key = key.lower()
                index[key] = index[key] + b", " + value if key in index else value
        found = index.get(name.encode("ascii"))
        return None if found is None else found.decode("latin-1")

    @property
    def headers(self) -> httpx.Headers:
        return httpx.Headers(self._raw)

    async def read(self) -> bytes:
        pieces = self._iter
        if pieces is None:
            pieces = self._iter = self._stream.__aiter__()
        try:
            while True:
                piece: bytes = await pieces.__anext__()
                if piece:  # b"" means the end here; a stream (a mock's) may yield an empty piece
                    return piece
        except StopAsyncIteration:
            return b""
        except Exception as exc:
            mapped = map_httpcore_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class HttpcoreEngine(Engine):
    """A pooled client on httpx's engine: httpx's own transport, called below its client layer.

    The transport is ``httpx.AsyncHTTPTransport`` exactly as ``httpx.AsyncClient`` would make it
    (TLS verified with httpx's trust store and ``SSL_CERT_FILE``/``SSL_CERT_DIR``, or with the
    connector's ``verify`` context, HTTP/1.1, the pool limits); requests go to its httpcore pool,
    which is also what respx patches, so respx-mocked tests see every request.
    """

    __slots__ = ("_closed", "_extensions", "_pool", "_targets", "_transport")

    def __init__(self, limits: PoolLimits, *, verify: ssl.SSLContext | bool = True) -> None:
        self._transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits.httpx_limits(), trust_env=True)
        self._pool: Any = self._transport._pool
        self._targets: dict[str, _Target] = {}
        self._extensions: dict[Timeouts, dict[str, float]] = {}
        self._closed = False

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def send(self, method: str, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str],
                   content: bytes | None, timeouts: Timeouts) -> EngineResponse:
        import httpcore

        if self._closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        target = self._targets.get(url) if params is None else None
        if target is None:
            target = _Target(target_url(url, params))
            if params is None:
                if len(self._targets) >= _MAX_URLS:
                    self._targets.clear()
                self._targets[url] = target
        timeout = self._extensions.get(timeouts)
        if timeout is None:
            timeout = self._extensions[timeouts] = timeouts.httpx_timeout().as_dict()  # type: ignore[assignment]
        raw = [(name.encode("ascii"), value.encode("ascii"))  # httpx encodes header text as ASCII too
               for name, value in wire_headers(target.host, method, headers, content)]
        request = httpcore.Request(method.encode("ascii"), target.url, headers=raw, content=content or b"",
                                   extensions={"timeout": timeout})
        try:
            response = await self._pool.handle_async_request(request)
        except Exception as exc:
            mapped = map_httpcore_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return _CoreResponse(response)

    async def aclose(self) -> None:
        self._closed = True
        await self._transport.aclose()


_HTTPCORE_ERRORS: list[tuple[type[Exception], type[httpx.HTTPError]]] = []


def map_httpcore_error(exc: Exception) -> httpx.HTTPError | None:
    """The httpx exception httpx's transport raises for an httpcore one (the most specific match),
    or ``None`` for anything else (an httpx exception raised by a mock, a bug), to be re-raised as is."""
    if not _HTTPCORE_ERRORS:
        import httpcore

        _HTTPCORE_ERRORS.extend([
            (httpcore.TimeoutException, httpx.TimeoutException), (httpcore.ConnectTimeout, httpx.ConnectTimeout),
            (httpcore.ReadTimeout, httpx.ReadTimeout), (httpcore.WriteTimeout, httpx.WriteTimeout),
            (httpcore.PoolTimeout, httpx.PoolTimeout), (httpcore.NetworkError, httpx.NetworkError),
            (httpcore.ConnectError, httpx.ConnectError), (httpcore.ReadError, httpx.ReadError),
            (httpcore.WriteError, httpx.WriteError), (httpcore.ProxyError, httpx.ProxyError),
            (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol), (httpcore.ProtocolError, httpx.ProtocolError),
            (httpcore.LocalProtocolError, httpx.LocalProtocolError),
            (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
        ])
    mapped: type[httpx.HTTPError] | None = None
    for source, target in _HTTPCORE_ERRORS:
        if isinstance(exc, source) and (mapped is None or issubclass(target, mapped)):
            mapped = target
    return None if mapped is None else mapped(str(exc))
