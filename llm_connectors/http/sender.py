"""Where a request is sent: :class:`HTTPSender`, one per connector.

It takes explicit inputs: the checked :class:`~.config.HTTPConfig`, the connector's
:class:`~.credentials.Credentials`, and the provider's :class:`ProviderWire` (how credentials
travel, how error bodies and request ids look, how streams are framed: public members every
connector has). It owns the engine (a shared pooled one, or the caller's client) and does one
attempt: send (redirects followed only when allowed, never leaking credentials), read a bounded
body, classify an error, or frame and decode a stream under the idle, first-token and overall
timers. Everything here runs once per attempt (or per network read, for streams), so it is
written for the hot path.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Literal, Protocol

import anyio
import httpx

from .._secrets import Secret, scrub
from ..definition import ServiceDefinition
from ..errors import BuiltinTimeoutError, ConfigurationError, LLMConnectorError
from ..hooks import run_hook
from ..observe.calls import CURRENT_CALL
from ..observe.telemetry import telemetry
from ..requests import HTTPRequest
from ..stream import OpenStream, StreamDecoder, interrupted
from ..types import ChatChunk
from ..wire import jsonio
from ..wire.classify import ErrorInfo, classify, transport_error
from ..wire.framing import NDJSONDecoder, SSEDecoder
from ..wire.headers import first_header
from . import pool
from .bodies import Deadline, content_encoding, deadline_scope, loop_clock, read_bounded, reader_of
from .config import HTTPConfig
from .credentials import Credentials
from .decode import ACCEPT_ENCODING, BoundedDecoder
from .engines import ClientEngine, Engine, EngineResponse, target_url
from .settings import MAX_ERROR_BODY_BYTES, join_url, make_client

__all__ = ["HTTPSender", "ProviderWire"]

payload_logger = logging.getLogger("llm_connectors.payloads")
MAX_REDIRECTS = 5
MAX_COMPRESSED_STREAM_BYTES = 64 << 20  # a compressed stream may not inflate past this
_PAYLOAD_LOG_CHARS = 2048
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
                                 "cookie"})


class ProviderWire(Protocol):
    """What the sender needs from a provider (every :class:`~llm_connectors.BaseConnector` has it)."""

    provider: str

    @property
    def definition(self) -> ServiceDefinition: ...

    @property
    def stream_format(self) -> Literal["sse", "ndjson"]: ...

    @property
    def request_id_headers(self) -> tuple[str, ...]: ...

    @property
    def error_codes(self) -> Mapping[str, type[LLMConnectorError]]: ...

    def credential_headers(self, key: Secret | None) -> dict[str, str]: ...

    def parse_error(self, status: int, body: bytes) -> ErrorInfo: ...


class HTTPSender:
    """One connector's HTTP side: its engine, its attempts, its error mapping."""

    def __init__(self, wire: ProviderWire, config: HTTPConfig, credentials: Credentials, *,
                 observe_headers: Callable[[httpx.Headers], None] | None = None) -> None:
        self.wire = wire
        self.config = config
        self.credentials = credentials
        self.provider = wire.provider
        self._observe_headers = observe_headers
        self._engine: Engine | None = None
        self._pool_key: tuple[Any, ...] | None = None
        self._closed = False
        self._urls: dict[str, str] = {}
        origin = httpx.URL(config.base_url)
        self._origin = (origin.scheme, origin.host, origin.port)
        self._credential_header_names = _CREDENTIAL_HEADERS | {wire.definition.auth.header.lower()}

    # -- the engine --------------------------------------------------------------------------------

    def engine(self) -> Engine:
        """The engine requests go through, made on first use (pooled engines are bound to a loop)."""
        engine = self._engine
        if engine is not None:
            return engine
        config = self.config
        if self._closed:
            raise ConfigurationError(f"the {self.provider} connector is closed", provider=self.provider)
        if config.client is not None:  # the caller's own client, driven through httpx's API; never closed by us
            engine = ClientEngine(config.client, owned=False)
        elif config.transport is None:  # the usual case: share one pool per endpoint and loop
            engine, self._pool_key = pool.acquire(self.provider, config.base_url, config.timeouts, config.pool,
                                                  config.engine, config.tls)
        else:
            engine = ClientEngine(make_client(config.timeouts, config.pool, config.transport), owned=True)
        self._engine = engine
        return engine

    async def aclose(self) -> None:
        """Release the engine (not a client the caller passed in). Safe to call twice."""
        self._closed = True
        engine, self._engine = self._engine, None
        key, self._pool_key = self._pool_key, None
        if key is not None:
            await pool.release(key)
        elif engine is not None and self.config.client is None:
            await engine.aclose()

    # -- one attempt -------------------------------------------------------------------------------

    async def read_json(self, request: HTTPRequest, deadline: float | None, what: str) -> Any:
        """One complete JSON request/response under the call's deadline."""
        try:
            with deadline_scope(deadline):
                response = await self.send(request)
                try:
                    body = await read_bounded(response, self.config.max_body_bytes, self.provider)
                finally:
                    await response.aclose()
        except (httpx.HTTPError, BuiltinTimeoutError) as exc:
            raise transport_error(exc, self.provider, what) from exc
        if self.config.log_payloads:
            self._log_payload("response", request.path, body)
        return jsonio.loads(body, provider=self.provider, what=what)

    async def open_stream(self, request: HTTPRequest, decoder: StreamDecoder, deadline: float | None) -> OpenStream:
        """Send a streaming request and read up to its first chunk."""
        try:
            with deadline_scope(deadline):
                response = await self.send(request, stream=True)
        except (httpx.HTTPError, BuiltinTimeoutError) as exc:
            raise transport_error(exc, self.provider, "opening the stream") from exc
        rest = self.stream_chunks(response, decoder, deadline)
        try:
            first = await rest.__anext__()
        except StopAsyncIteration:
            first = None
        return OpenStream(first, rest, decoder)

    async def send(self, request: HTTPRequest, *, stream: bool = False) -> EngineResponse:
        """Send one attempt; return the open response if it succeeded, else raise the typed error."""
        engine = self.engine()
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
                span = telemetry.attempt(call.span, attempt, self.provider)
        credentials = self.credentials
        key = credentials.primary if credentials.static else await credentials.current()
        headers, content = self._headers_and_body(request, key, stream)
        try:
            response = await self._send_following_redirects(engine, request, content, headers)
            if self._observe_headers is not None:
                self._observe_headers(response.headers)
            if response.status < 300:
                return response
            raise await self._failed(response, key)
        except BaseException as exc:
            if span is not None:
                span.set_attribute("error.type", type(exc).__name__)
            raise
        finally:
            if span is not None:
                span.end()

    def _headers_and_body(self, request: HTTPRequest, key: Secret | None,
                          stream: bool) -> tuple[dict[str, str], bytes | None]:
        headers = self.wire.credential_headers(key)
        if self.config.headers:
            headers.update(self.config.headers)
        if request.headers:
            headers.update(request.headers)
        headers["accept-encoding"] = "identity" if stream else ACCEPT_ENCODING
        if request.json is None:
            return headers, request.content
        content = jsonio.dumps(request.json)
        headers["content-type"] = "application/json"
        if self.config.log_payloads:
            self._log_payload("request", request.path, content)
        return headers, content

    async def _failed(self, response: EngineResponse, key: Secret | None) -> LLMConnectorError:
        """The typed error for a non-2xx answer (its body read with a small bound, then closed)."""
        try:
            body = await read_bounded(response, MAX_ERROR_BODY_BYTES, self.provider)
        except (LLMConnectorError, httpx.HTTPError):
            body = b""
        finally:
            await response.aclose()
        error = self.error_from_response(response, body)
        if isinstance(key, Secret):
            self.credentials.report(key, error)
        return error

    async def _send_following_redirects(self, engine: Engine, request: HTTPRequest, content: bytes | None,
                                        headers: dict[str, str]) -> EngineResponse:
        """Send, and follow redirects only if the connector allows it, never leaking credentials.

        httpx strips only ``Authorization`` on a cross-origin hop and would forward ``x-api-key``
        (RELIABILITY.md §6.3), so we follow redirects ourselves: method-preserving 307/308 (or any
        redirect of a GET), https never downgraded to http, every credential header dropped as soon
        as the target's origin differs from the configured base URL's.
        """
        method, params, url = request.method, request.params, self._url(request.path)
        for hop in range(MAX_REDIRECTS + 1):
            response = await engine.send(method, url, params, headers, content, self.config.timeouts)
            status = response.status
            if not 300 <= status < 400 or not self.config.follow_redirects:
                return response
            location = response.header("location")
            await response.aclose()
            following = self._redirect_target(method, status, location, target_url(url, params), hop)
            if (following.scheme, following.host, following.port) != self._origin:
                headers = {k: v for k, v in headers.items() if k.lower() not in self._credential_header_names}
            url, params = str(following), None
        raise AssertionError("unreachable")  # pragma: no cover

    def _redirect_target(self, method: str, status: int, location: str | None, current: httpx.URL,
                         hop: int) -> httpx.URL:
        if not location:
            raise ConfigurationError(f"the server answered {status} without a location", provider=self.provider)
        if hop == MAX_REDIRECTS:
            raise ConfigurationError(f"more than {MAX_REDIRECTS} redirects", provider=self.provider)
        following = current.join(location)
        if status not in (307, 308) and method != "GET":
            raise ConfigurationError(f"the server redirected a {method} with {status} to {following.host}; only "
                                     "307/308 keep the request intact. Set base_url to the final address.",
                                     provider=self.provider)
        if current.scheme == "https" and following.scheme != "https":
            raise ConfigurationError(f"refusing a redirect from https to plain http ({following.host})",
                                     provider=self.provider)
        return following

    def _url(self, path: str) -> str:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = join_url(self.config.base_url, path)
        return url

    # -- streams -----------------------------------------------------------------------------------

    async def stream_chunks(self, response: EngineResponse, decoder: StreamDecoder,
                            deadline: float | None) -> AsyncGenerator[ChatChunk, None]:
        """Frame and decode a streamed body read by read, under the idle, first-token and overall timers."""
        bound = self.config.max_body_bytes  # one line or event: the same bound as a whole non-stream body
        framer: SSEDecoder | NDJSONDecoder = (
            SSEDecoder(max_line=bound) if self.wire.stream_format == "sse"
            else NDJSONDecoder(max_line=bound, provider=self.provider))
        feed = decoder.feed
        frame = framer.feed
        now = loop_clock()
        timeouts = self.config.timeouts
        read_deadline = deadline
        if timeouts.first_token is not None:
            ttft_deadline = now() + timeouts.first_token
            read_deadline = ttft_deadline if deadline is None else min(deadline, ttft_deadline)
        # Our pooled engines enforce the read (idle) timeout on every read themselves, so a read only
        # needs a cancel scope of its own when the call's deadline is nearer than that; otherwise a
        # clock check after each read enforces the deadline at a fraction of a scope's cost.
        trusted_reads = self.engine().enforces_timeouts
        idle = timeouts.read
        reader = reader_of(response)
        try:  # from here on, however it ends, the response is closed (an unaccepted encoding included)
            encoding = content_encoding(response)
            inflate = (None if encoding is None
                       else BoundedDecoder(encoding, MAX_COMPRESSED_STREAM_BYTES, self.provider).feed)
            while True:
                try:
                    if read_deadline is None:
                        data = await reader()
                    else:
                        left = read_deadline - now()
                        if trusted_reads and left > idle:
                            data = await reader()
                        else:
                            with Deadline(read_deadline):
                                data = await reader()
                        if now() >= read_deadline:
                            raise BuiltinTimeoutError
                except (httpx.HTTPError, BuiltinTimeoutError) as exc:
                    raise transport_error(exc, self.provider, "streaming") from exc
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
        except LLMConnectorError as exc:
            wrapped = interrupted(decoder, exc)  # broke inside a tool call: the error carries the call begun
            if wrapped is exc:
                raise
            raise wrapped from exc
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    # -- errors ------------------------------------------------------------------------------------

    def error_from_response(self, response: EngineResponse, body: bytes) -> LLMConnectorError:
        status = response.status
        headers = response.headers
        wire = self.wire
        request_id = first_header(headers, wire.request_id_headers)
        if status < 400:
            try:
                location = httpx.URL(headers.get("location", "")).host or "another address"
            except httpx.InvalidURL:  # whatever the server sent, the error is ours to name
                location = "an address that is not a URL"
            return self.scrubbed(ConfigurationError(
                f"the server answered {status} (a redirect to {location[:200]}); redirects are not followed. "
                "Set base_url to the final address, or pass follow_redirects=True.", provider=self.provider,
                status_code=status, request_id=request_id))
        info = wire.parse_error(status, body)
        err = classify(status, info, headers, provider=self.provider, request_id=request_id, codes=wire.error_codes)
        return self.scrubbed(err)

    def scrubbed(self, err: LLMConnectorError) -> LLMConnectorError:
        """``err`` with any credential this connector holds cut out of its message."""
        held = self.credentials.secrets()
        if held:
            message = scrub(err.message, held)
            if message != err.message:
                err.message = message
                err.args = (message,)
            if err.request_id:  # a server may echo anything into a request-id header
                err.request_id = scrub(err.request_id, held)
            if err.code:  # ... or into an error code or type
                err.code = scrub(err.code, held)
        return err

    def _log_payload(self, what: str, path: str, body: bytes) -> None:
        text = scrub(body.decode("utf-8", "replace"), self.credentials.secrets())
        if len(text) > _PAYLOAD_LOG_CHARS:
            text = text[:_PAYLOAD_LOG_CHARS] + "…"
        payload_logger.debug("%s %s %s: %s", self.provider, what, path, text)
