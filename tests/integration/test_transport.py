"""Both HTTP engines behave the same: results, wire bytes, errors, timeouts, streaming, cancellation.

The aiohttp engine runs on asyncio only; the httpx engine runs on asyncio and trio. No test here
measures speed: that is what ``benchmarks/`` is for.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import engine_matrix
import httpx
import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.http import aiohttp_engine, engine_choice as _transport, pool as _pool
from llm_connectors.http.engines import ClientEngine, Engine, HttpcoreEngine, map_httpcore_error
from llm_connectors.http.settings import PoolLimits, Timeouts, make_client
from llm_connectors.testing import FakeServer, Reply, Request
from llm_connectors.testing.openai_wire import OpenAIFake, openai_chat_json, openai_sse_events
from llm_connectors.wire.classify import transport_error

pytestmark = pytest.mark.anyio
# Every test taking ``engine`` runs on asyncio+httpx, trio+httpx and asyncio+aiohttp.
combo, anyio_backend, engine = engine_matrix.combo, engine_matrix.anyio_backend, engine_matrix.engine
needs_aiohttp = engine_matrix.needs_aiohttp
HAVE_AIOHTTP = engine_matrix.HAVE_AIOHTTP
USER = [{"role": "user", "content": "Hi"}]
MODEL = "gpt-4o-mini"


def engine_of(conn: lc.BaseConnector) -> str:
    return conn._sender.engine().kind


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_closed(server: FakeServer) -> None:
    with anyio.fail_after(5):
        while server.open_connections:
            await anyio.sleep(0.01)


# -- the same answers ---------------------------------------------------------------------------

async def test_chat_stream_embeddings_and_keep_alive(engine: str) -> None:
    with FakeServer(OpenAIFake(dimensions=16)) as server:
        async with build_connector("openai", server.url, transport=engine) as conn:
            assert engine_of(conn) == engine
            resp = await conn.generate_chat(MODEL, USER)
            assert resp.content == "Hello from the fake provider."
            async with conn.generate_chat_stream(MODEL, USER) as stream:
                deltas = [chunk.delta async for chunk in stream]
            assert "".join(deltas) == resp.content and len(deltas) > 3
            emb = await conn.generate_embedding("text-embedding-3-small", ["a", "b", "c"])
            assert [len(v) for v in emb.embeddings] == [16, 16, 16]
            assert [m.id for m in await conn.list_models()] == ["fake-model", "fake-embed"]
        assert server.total_connections == 1  # one keep-alive connection served all four calls


@needs_aiohttp
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_both_engines_send_the_same_bytes() -> None:
    seen: dict[str, list[Request]] = {}
    for engine in ("httpx", "aiohttp"):
        with FakeServer(OpenAIFake()) as server:
            async with build_connector("openai", server.url, transport=engine) as conn:
                await conn.generate_chat(MODEL, USER, temperature=0.5)
                async with conn.generate_chat_stream(MODEL, USER) as stream:
                    await stream.collect()
                await conn.generate_embedding("text-embedding-3-small", "x")
                await conn.list_models()
            seen[engine] = server.requests

    def shape(request: Request) -> tuple[Any, ...]:
        headers = {k: v for k, v in request.headers.items() if k != "host"}
        return request.method, request.path, request.query, headers, request.body

    assert [shape(r) for r in seen["httpx"]] == [shape(r) for r in seen["aiohttp"]]


async def test_gzip_bodies_are_decoded(engine: str) -> None:
    body = gzip.compress(json.dumps({
        "id": "x", "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "zipped " * 100},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 100, "total_tokens": 101}}).encode())
    reply = Reply(200, {"content-type": "application/json", "content-encoding": "gzip"}, body)
    with FakeServer(lambda request: reply) as server:
        async with build_connector("openai", server.url, transport=engine) as conn:
            resp = await conn.generate_chat(MODEL, USER)
    assert resp.content == "zipped " * 100


async def test_large_bodies_arrive_whole(engine: str) -> None:
    fake = OpenAIFake(dimensions=4096)
    with FakeServer(fake) as server:
        async with build_connector("openai", server.url, transport=engine) as conn:
            emb = await conn.generate_embedding("text-embedding-3-small", [f"t{i}" for i in range(64)])
    assert len(emb.embeddings) == 64 and all(len(v) == 4096 for v in emb.embeddings)


async def test_pooled_clients_keep_no_cookies(engine: str) -> None:
    fake = OpenAIFake()

    def handler(request: Request) -> Reply:
        reply = fake(request)
        reply.headers["set-cookie"] = "__cf_bm=tracking; Path=/; HttpOnly"
        return reply

    with FakeServer(handler) as server:
        async with build_connector("openai", server.url, transport=engine) as conn:
            await conn.generate_chat(MODEL, USER)
            await conn.generate_chat(MODEL, USER)
    assert [r.headers.get("cookie") for r in server.requests] == [None, None]


# -- the same errors ----------------------------------------------------------------------------

async def test_http_errors_are_typed(engine: str) -> None:
    fake = OpenAIFake()
    fake.replies.extend([
        Reply.json({"error": {"message": "slow down", "type": "rate_limit_error", "code": None}}, 429,
                   headers={"retry-after": "0.05"}),
        Reply.json({"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}},
                   401),
    ])
    with FakeServer(fake) as server:
        async with build_connector("openai", server.url, transport=engine) as conn:
            with pytest.raises(lc.RateLimitError) as limited:
                await conn.generate_chat(MODEL, USER)
            assert limited.value.retry_after == 0.05 and limited.value.status_code == 429
            with pytest.raises(lc.AuthenticationError):
                await conn.generate_chat(MODEL, USER)
            assert (await conn.generate_chat(MODEL, USER)).content  # the connection is still usable


async def test_refused_connection_is_a_network_error(engine: str) -> None:
    async with build_connector("openai", f"http://127.0.0.1:{closed_port()}", transport=engine) as conn:
        with pytest.raises(lc.NetworkError, match="could not connect") as info:
            await conn.generate_chat(MODEL, USER)
    assert not isinstance(info.value, lc.TimeoutError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_silent_server_is_a_read_timeout(engine: str, silent_port: int) -> None:
    timeouts = Timeouts(total=30, connect=5, read=0.2)
    url = f"http://127.0.0.1:{silent_port}"
    async with build_connector("openai", url, transport=engine, timeout=timeouts) as conn:
        with pytest.raises(lc.TimeoutError, match="read timeout") as info:
            await conn.generate_chat(MODEL, USER)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


async def test_overall_deadline(engine: str, silent_port: int) -> None:
    async with build_connector("openai", f"http://127.0.0.1:{silent_port}", transport=engine, timeout=0.2) as conn:
        with pytest.raises(lc.TimeoutError):
            await conn.generate_chat(MODEL, USER)


async def test_stalled_stream_is_a_read_timeout(engine: str) -> None:
    events = openai_sse_events(["one", " two"])
    reply = Reply.sse([events[0], events[1], 1.0, *events[2:]])
    with FakeServer(lambda request: reply) as server:
        timeouts = Timeouts(total=30, read=0.2)
        async with build_connector("openai", server.url, transport=engine, timeout=timeouts) as conn:
            stream = conn.generate_chat_stream(MODEL, USER)
            with pytest.raises(lc.StreamInterruptedError) as info:
                async with stream:
                    await stream.collect()
    assert info.value.partial == "one"
    assert isinstance(info.value.__cause__, lc.TimeoutError)


async def test_stream_cut_midway(engine: str) -> None:
    events = openai_sse_events(["one", " two", " three"], done=False)
    with FakeServer(lambda request: Reply.sse(events[:3], truncate=True)) as server:
        async with build_connector("openai", server.url, transport=engine) as conn:
            stream = conn.generate_chat_stream(MODEL, USER)
            with pytest.raises(lc.StreamInterruptedError) as info:
                async with stream:
                    await stream.collect()
    assert info.value.partial == "one two"
    assert type(info.value.__cause__) is lc.NetworkError


async def test_dropped_before_answering_is_a_network_error(engine: str) -> None:
    with FakeServer(lambda request: Reply.sse([], truncate=True)) as server:
        async with build_connector("openai", server.url, transport=engine) as conn:
            with pytest.raises(lc.LLMConnectorError) as info:
                await conn.generate_chat(MODEL, USER)
    assert type(info.value) in (lc.NetworkError, lc.ProtocolError)


@pytest.fixture
def garbage_port() -> Iterator[int]:
    """A server that answers every connection with a malformed status line."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 abc\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        sock.close()


async def test_malformed_response_stays_in_the_error_tree(engine: str, garbage_port: int) -> None:
    async with build_connector("openai", f"http://127.0.0.1:{garbage_port}", transport=engine) as conn:
        with pytest.raises(lc.NetworkError) as info:
            await conn.generate_chat(MODEL, USER)
    assert isinstance(info.value.__cause__, httpx.TransportError)


# -- cancellation, abandonment, pooling ---------------------------------------------------------

def slow_stream(request: Request) -> Reply:
    events = openai_sse_events([f" w{i}" for i in range(50)])
    chunks: list[bytes | float] = []
    for event in events:
        chunks += [event, 0.05]
    return Reply.sse(chunks)


async def test_cancelled_stream_frees_its_connection(engine: str) -> None:
    with FakeServer(slow_stream) as server:
        async with build_connector("openai", server.url, transport=engine) as conn:
            got: list[str] = []
            with anyio.move_on_after(0.3) as scope:
                async with conn.generate_chat_stream(MODEL, USER) as stream:
                    async for chunk in stream:
                        got.append(chunk.delta)
            assert scope.cancelled_caught and 0 < len(got) < 50
            await wait_until_closed(server)
            server.handler = OpenAIFake()
            assert (await conn.generate_chat(MODEL, USER)).content
        assert server.total_connections == 2


async def test_cancelled_request_frees_its_connection(engine: str, silent_port: int) -> None:
    async with build_connector("openai", f"http://127.0.0.1:{silent_port}", transport=engine) as conn:
        with anyio.move_on_after(0.2) as scope:
            await conn.generate_chat(MODEL, USER)
        assert scope.cancelled_caught


async def test_abandoned_stream_is_closed(engine: str) -> None:
    with FakeServer(slow_stream) as server:
        async with build_connector("openai", server.url, transport=engine) as conn:
            async with conn.generate_chat_stream(MODEL, USER) as stream:
                async for _ in stream:
                    break
            await wait_until_closed(server)
            server.handler = OpenAIFake()
            assert (await conn.generate_chat(MODEL, USER)).content


async def test_pool_limit_bounds_connections(engine: str) -> None:
    peak = 0
    lock = threading.Lock()
    server: FakeServer

    def handler(request: Request) -> Reply:
        nonlocal peak
        with lock:
            peak = max(peak, server.open_connections)
        events = openai_sse_events(["a", "b"])
        return Reply.sse([events[0], 0.1, *events[1:]])

    with FakeServer(handler) as server:
        limits = PoolLimits(max_connections=2)
        async with build_connector("openai", server.url, transport=engine, pool=limits) as conn:

            async def one() -> None:
                async with conn.generate_chat_stream(MODEL, USER) as stream:
                    await stream.collect()

            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(one)
    assert len(server.requests) == 6
    assert peak <= 2


async def test_connectors_share_one_client_per_engine(engine: str) -> None:
    before = _pool.open_clients()  # other suites (the sync API's loop) may hold clients of their own
    with FakeServer(OpenAIFake()) as server:
        async with build_connector("openai", server.url, transport=engine) as a, \
                build_connector("openai", server.url, transport=engine) as b:
            await a.generate_chat(MODEL, USER)
            await b.generate_chat(MODEL, USER)
            assert a._sender.engine() is b._sender.engine()
            assert server.total_connections == 1
    assert _pool.open_clients() == before


@needs_aiohttp
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_engines_do_not_share_clients() -> None:
    before = _pool.open_clients()
    with FakeServer(OpenAIFake()) as server:
        async with build_connector("openai", server.url, transport="httpx") as a, \
                build_connector("openai", server.url, transport="aiohttp") as b:
            await a.generate_chat(MODEL, USER)
            await b.generate_chat(MODEL, USER)
            assert a._sender.engine() is not b._sender.engine()
            assert (engine_of(a), engine_of(b)) == ("httpx", "aiohttp")
            assert _pool.open_clients() == before + 2
    assert _pool.open_clients() == before


# -- choosing the engine ------------------------------------------------------------------------

def test_bad_choice_is_refused() -> None:
    with pytest.raises(lc.ConfigurationError, match="transport must be one of"):
        OpenAIConnector(api_key="k", transport="curl")


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_aiohttp_on_trio_is_a_clear_configuration_error() -> None:
    async with build_connector("openai", "http://127.0.0.1:9", transport="aiohttp") as conn:
        with pytest.raises(lc.ConfigurationError, match="needs asyncio"):
            await conn.generate_chat(MODEL, USER)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_auto_selection(anyio_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLM_CONNECTORS_TRANSPORT", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                 "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    fast = "aiohttp" if anyio_backend == "asyncio" and HAVE_AIOHTTP else "httpx"
    assert _transport.resolve("auto") == fast
    assert _transport.resolve("httpx") == "httpx"
    monkeypatch.setenv("LLM_CONNECTORS_TRANSPORT", "httpx")
    assert _transport.resolve("auto") == "httpx"
    monkeypatch.setenv("LLM_CONNECTORS_TRANSPORT", "Auto")
    assert _transport.resolve("auto") == fast
    monkeypatch.setenv("LLM_CONNECTORS_TRANSPORT", "curl")
    with pytest.raises(lc.ConfigurationError, match="LLM_CONNECTORS_TRANSPORT"):
        _transport.resolve("auto")
    monkeypatch.delenv("LLM_CONNECTORS_TRANSPORT")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert _transport.resolve("auto") == "httpx"  # httpx's proxy support is the reference


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_explicit_aiohttp_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_transport, "_installed", False)
    with pytest.raises(lc.ConfigurationError, match=r"llm-connectors-sdk\[fast\]"):
        _transport.resolve("aiohttp")
    monkeypatch.delenv("LLM_CONNECTORS_TRANSPORT", raising=False)
    assert _transport.resolve("auto") == "httpx"


def test_no_optional_dependency_is_imported_eagerly() -> None:
    import subprocess
    import sys

    code = ("import sys, llm_connectors, llm_connectors.connectors.openai; "
            "print(sorted(m for m in ('aiohttp', 'httpx_aiohttp', 'yarl', 'trio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


UNCLOSED = """
import asyncio, sys
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.testing import FakeServer
from llm_connectors.testing.openai_wire import OpenAIFake

async def main(url):
    conn = OpenAIConnector(api_key="k", base_url=url + "/v1", transport=sys.argv[1])
    print((await conn.generate_chat("m", "hi")).content)  # and never closed

with FakeServer(OpenAIFake()) as server:
    asyncio.run(main(server.url))
"""


@pytest.mark.parametrize("engine", ["httpx", pytest.param("aiohttp", marks=needs_aiohttp)])
def test_a_connector_never_closed_ends_quietly(engine: str) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", UNCLOSED, engine], capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "Hello from the fake provider."
    assert "Unclosed" not in out.stderr, out.stderr


# -- the aiohttp adapter itself -----------------------------------------------------------------

@needs_aiohttp
def test_aiohttp_errors_map_like_httpx_transport() -> None:
    import aiohttp
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("h", 1, False, True, None, None, None)
    cases: list[tuple[BaseException, type[httpx.TransportError], type[lc.LLMConnectorError]]] = [
        (aiohttp.ConnectionTimeoutError("t"), httpx.ConnectTimeout, lc.TimeoutError),
        (aiohttp.SocketTimeoutError("t"), httpx.ReadTimeout, lc.TimeoutError),
        (aiohttp.ClientConnectorError(key, OSError(111, "refused")), httpx.ConnectError, lc.NetworkError),
        (aiohttp.ClientConnectorDNSError(key, OSError(-2, "no such host")), httpx.ConnectError, lc.NetworkError),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError, lc.NetworkError),
        (aiohttp.ClientPayloadError("cut"), httpx.RemoteProtocolError, lc.NetworkError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError, lc.NetworkError),
        (aiohttp.ClientError("other"), httpx.TransportError, lc.NetworkError),
    ]
    for exc, expected, ours in cases:
        mapped = aiohttp_engine.map_error(exc)
        assert type(mapped) is expected, exc
        assert type(transport_error(mapped, "p", "x")) is ours, exc
    assert "could not connect" in transport_error(aiohttp_engine.map_error(cases[2][0]), "p", "x").message


@needs_aiohttp
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aiohttp_transport_directly_and_closed() -> None:
    transport = aiohttp_engine.AiohttpTransport()
    with FakeServer(lambda request: Reply.json({"path": request.path}, 404)) as server:
        async with httpx.AsyncClient(transport=transport) as client:
            resp = await client.get(server.url + "/y?q=1")
            assert resp.status_code == 404 and resp.reason_phrase == "Not Found"
            assert resp.http_version == "HTTP/1.1" and resp.json() == {"path": "/y"}
    with pytest.raises(RuntimeError, match="closed"):
        transport._open()


# -- the engine interface (_engine.py) ----------------------------------------------------------

RAW_REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Twice: a\r\nx-twice: b\r\n"
             b"Content-Length: 12\r\n\r\n{\"ok\": true}")


@pytest.fixture
def raw_server() -> Iterator[tuple[int, list[bytes]]]:
    """A keep-alive HTTP/1.1 server recording each request exactly as it came off the wire
    (request line and headers, casing and order included) and answering every one alike."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    heads: list[bytes] = []
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        buffer = b""
        with conn:
            conn.settimeout(5)
            try:
                while not stop.is_set():
                    while b"\r\n\r\n" not in buffer:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(buffer) < length:
                        buffer += conn.recv(65536)
                    buffer = buffer[length:]
                    heads.append(head)
                    conn.sendall(RAW_REPLY)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], heads
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def pooled(engine: str) -> Engine:
    return _transport.make_engine(engine, Timeouts(), PoolLimits())


async def read_all(response: Any) -> bytes:
    body = b""
    while piece := await response.read():
        body += piece
    return body


#: (method, URL suffix, headers, body, params): what _io sends, and what a caller's headers may override.
WIRE_CASES: list[tuple[str, str, dict[str, str], bytes | None, dict[str, str] | None]] = [
    ("POST", "/v1/chat/completions", {"authorization": "Bearer k", "accept-encoding": "gzip, deflate",
                                      "content-type": "application/json"}, b"{}", None),
    ("GET", "/v1/models?q=1", {"User-Agent": "mine", "Accept": "text/plain", "accept-encoding": "identity",
                               "X-A": "1"}, None, {"after": "m 1", "limit": "2"}),
    ("POST", "/p", {"Content-Length": "2"}, b"{}", None),
    ("POST", "/empty", {}, None, None),
]


async def test_engines_send_what_httpx_sends(engine: str, raw_server: tuple[int, list[bytes]]) -> None:
    port, heads = raw_server
    url = f"http://127.0.0.1:{port}"
    for candidate in (ClientEngine(make_client(Timeouts(), PoolLimits()), owned=True), pooled(engine)):
        for method, path, headers, body, params in WIRE_CASES:
            response = await candidate.send(method, url + path, params, headers, body, Timeouts())
            assert response.status == 200 and await read_all(response) == b'{"ok": true}'
            await response.aclose()
        await candidate.aclose()
    reference, ours = heads[:len(WIRE_CASES)], heads[len(WIRE_CASES):]
    if engine == "aiohttp":  # aiohttp writes the same headers, names in its own casing
        assert [h.lower() for h in ours] == [h.lower() for h in reference]
    else:
        assert ours == reference  # byte for byte: request line, header names, values and order
    assert reference[1].startswith(b"GET /v1/models?after=m+1&limit=2 HTTP/1.1\r\n")


async def test_engine_interface(engine: str, raw_server: tuple[int, list[bytes]]) -> None:
    port, heads = raw_server
    candidate = pooled(engine)
    assert candidate.kind == engine and candidate.enforces_timeouts and not candidate.is_closed
    url = f"http://127.0.0.1:{port}/x"
    for _ in range(3):  # the second and third reuse the connection
        response = await candidate.send("GET", url, None, {}, None, Timeouts())
        assert response.status == 200 and response.in_memory() is None
        assert response.header("x-twice") == "a, b"  # repeated headers joined, as httpx.Headers.get does
        assert response.header("content-type") == "application/json" and response.header("absent") is None
        assert response.headers["X-TWICE"] == "a, b" and response.headers.get("absent") is None
        assert await read_all(response) == b'{"ok": true}'
        assert await response.read() == b""
        await response.aclose()
        await response.aclose()  # closing twice is harmless
    await candidate.aclose()
    assert candidate.is_closed and len(heads) == 3
    with pytest.raises(RuntimeError, match="closed"):
        await candidate.send("GET", url, None, {}, None, Timeouts())


async def test_engine_failures_are_httpx_exceptions(engine: str, silent_port: int) -> None:
    candidate = pooled(engine)
    try:
        with pytest.raises(httpx.ConnectError):
            await candidate.send("GET", f"http://127.0.0.1:{closed_port()}/", None, {}, None, Timeouts())
        with pytest.raises(httpx.ReadTimeout):
            await candidate.send("GET", f"http://127.0.0.1:{silent_port}/", None, {}, None,
                                 Timeouts(read=0.2))
    finally:
        await candidate.aclose()


def test_an_engine_must_implement_the_whole_interface() -> None:
    """The seam is abstract: an engine or response missing a method fails when made, not mid-call."""
    from llm_connectors.http.engines import EngineResponse

    class HalfEngine(Engine):
        @property
        def is_closed(self) -> bool:
            return False

    class HalfResponse(EngineResponse):
        async def read(self) -> bytes:
            return b""

    with pytest.raises(TypeError, match="aclose"):
        HalfEngine()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="header"):
        HalfResponse()  # type: ignore[abstract]


def test_httpcore_errors_map_like_httpx() -> None:
    import httpcore
    from httpx._transports.default import map_httpcore_exceptions

    for error in (httpcore.ConnectTimeout, httpcore.ReadTimeout, httpcore.WriteTimeout, httpcore.PoolTimeout,
                  httpcore.TimeoutException, httpcore.ConnectError, httpcore.ReadError, httpcore.WriteError,
                  httpcore.NetworkError, httpcore.ProxyError, httpcore.UnsupportedProtocol,
                  httpcore.LocalProtocolError, httpcore.RemoteProtocolError, httpcore.ProtocolError):
        with pytest.raises(httpx.HTTPError) as reference, map_httpcore_exceptions():
            raise error("boom")
        mapped = map_httpcore_error(error("boom"))
        assert type(mapped) is type(reference.value) and str(mapped) == "boom", error
    assert map_httpcore_error(httpx.ConnectError("from a mock")) is None  # re-raised as it is
    assert map_httpcore_error(ValueError("a bug")) is None


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_which_engine_a_connector_uses(anyio_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with build_connector("openai", "http://127.0.0.1:9", transport="httpx") as conn:
        assert isinstance(conn._sender.engine(), HttpcoreEngine)  # ours: httpx's pool, below httpx's client
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    proxied = _transport.make_engine("httpx", Timeouts(), PoolLimits())
    assert isinstance(proxied, ClientEngine) and proxied.enforces_timeouts  # httpx's client applies the proxy
    assert proxied.client._mounts  # type: ignore[attr-defined]
    await proxied.aclose()
    assert proxied.client.is_closed  # type: ignore[attr-defined]


def mock_openai(request: httpx.Request) -> httpx.Response:
    """A caller's mock transport: bodies in memory, the chat answer gzip-encoded (httpx decodes it)."""
    if json.loads(request.content).get("stream"):
        body = b"".join(openai_sse_events(["Hel", "lo"]))
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    return httpx.Response(200, content=gzip.compress(json.dumps(openai_chat_json("Hello")).encode()),
                          headers={"content-type": "application/json", "content-encoding": "gzip"})


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_callers_client_or_transport_goes_through_httpx(anyio_backend: str) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(mock_openai))
    for conn in (build_connector("openai", transport=httpx.MockTransport(mock_openai)),
                 build_connector("openai", http_client=client)):
        async with conn:
            engine = conn._sender.engine()
            assert isinstance(engine, ClientEngine) and not engine.enforces_timeouts  # reads get a scope each
            assert (await conn.generate_chat(MODEL, USER)).content == "Hello"
            async with conn.generate_chat_stream(MODEL, USER) as stream:
                assert [chunk.delta async for chunk in stream if chunk.delta] == ["Hel", "lo"]
    assert not client.is_closed  # the caller's client is the caller's to close
    await client.aclose()
