"""A byte-level HTTP/1.1 server on 127.0.0.1 that plays scripted bytes, malformed ones included.

``llm_connectors.testing.FakeServer`` speaks correct HTTP; this one writes exactly the bytes a test
gives it, so a status line, a header block, chunked framing or a close can be as wrong as a broken
provider or proxy makes them. It runs on plain threads (an accept thread and one thread per
connection), so tests on asyncio and trio, on httpx and aiohttp, all talk to it over a real socket.

Every loop is bounded: connections per server, requests per connection, bytes per request head
and body, seconds per read and per connection, seconds per scripted pause.

    def handler(request: RawRequest) -> Script:
        return http_response(200, [("content-type", "application/json")], b'{"ok": true}')

    with RawHTTPServer(handler) as server:   # or the ``raw_server`` fixture, one per test module
        connector = OpenAIConnector(api_key="k", base_url=server.url + "/v1")

A script is a list of steps: ``bytes`` are written as they are, a ``float`` pauses that many
seconds, :data:`CLOSE` ends the connection with a FIN and :data:`RESET` with a RST. A script that
ends without either closes the connection too: no case ever shares a connection with the next.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import pytest

__all__ = ["CLOSE", "RESET", "RawHTTPServer", "RawRequest", "Script", "chunked", "http_response", "raw_server"]

CLOSE = "close"
RESET = "reset"
Step = bytes | float | Literal["close", "reset"]
Script = Sequence[Step]
Headers = Sequence[tuple[str | bytes, str | bytes]] | Mapping[str, str]

MAX_CONNECTIONS = 50_000        # per server: more means a runaway client loop
MAX_LIVE_CONNECTIONS = 64       # at once; further ones are refused (closed at once)
MAX_REQUESTS_PER_CONNECTION = 1  # every script closes; a second request would be a bug here
MAX_HEAD_BYTES = 64 << 10
MAX_BODY_BYTES = 8 << 20
READ_TIMEOUT = 10.0             # seconds without a byte from the client
CONNECTION_DEADLINE = 30.0      # seconds for one connection, all told
MAX_PAUSE = 5.0                 # longest scripted pause


@dataclass
class RawRequest:
    """A request as it arrived: the head exactly as sent, the body after de-chunking."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    head: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))


Handler = Callable[[RawRequest], Script]


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def _header_lines(headers: Headers) -> list[bytes]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [_as_bytes(name) + b": " + _as_bytes(value) for name, value in pairs]


def chunked(pieces: Sequence[bytes | float], *, end: bool = True) -> list[Step]:
    """``pieces`` in chunked transfer coding (one chunk per piece; floats pause), and the last chunk."""
    steps: list[Step] = []
    for piece in pieces:
        if isinstance(piece, float):
            steps.append(piece)
        elif piece:
            steps.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    if end:
        steps.append(b"0\r\n\r\n")
    return steps


def http_response(status: int = 200, headers: Headers = (), body: bytes | Sequence[bytes | float] = b"", *,
                  framing: Literal["length", "chunked", "close", "raw"] = "length", reason: str = "Whatever",
                  version: str = "HTTP/1.1", ending: Step = CLOSE) -> list[Step]:
    """A response script.

    Args:
        status: The status code written in the status line.
        headers: Header pairs, written in order and exactly (names and values may be any bytes).
        body: The body; a sequence of pieces is sent as separate writes (chunks with ``chunked``).
        framing: ``length`` adds a correct Content-Length, ``chunked`` adds ``Transfer-Encoding:
            chunked`` and frames the pieces, ``close`` adds nothing and ends the body by closing,
            ``raw`` adds nothing and writes the body as given (a test frames it itself).
        reason: The reason phrase.
        version: The protocol written in the status line.
        ending: How the connection ends after the body: :data:`CLOSE` or :data:`RESET`.
    """
    pieces: list[bytes | float] = [body] if isinstance(body, bytes) else list(body)
    lines = [f"{version} {status} {reason}".encode("latin-1"), *_header_lines(headers)]
    if framing == "length":
        size = sum(len(p) for p in pieces if isinstance(p, bytes))
        lines.append(b"content-length: %d" % size)
    elif framing == "chunked":
        lines.append(b"transfer-encoding: chunked")
    if framing in ("length", "chunked"):
        lines.append(b"connection: close")
    steps: list[Step] = [b"\r\n".join(lines) + b"\r\n\r\n"]
    if framing == "chunked":
        steps += chunked(pieces)
    else:
        steps += [p for p in pieces if p != b""]
    steps.append(ending)
    return steps


class _RequestError(Exception):
    """The client sent something this server will not read (too big, too slow, not HTTP)."""


class RawHTTPServer:
    """Threads on 127.0.0.1 answering each request with ``handler(request)``'s script.

    Attributes:
        requests: Every request read, in order.
        connections: How many connections were accepted.
        errors: What went wrong on the server side (a broken handler, an unreadable request).
        url: ``http://127.0.0.1:<port>``.
    """

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or (lambda request: http_response(500, body=b"no script"))
        self.requests: list[RawRequest] = []
        self.connections = 0
        self.errors: list[str] = []
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self, handler: Handler) -> None:
        """Serve ``handler`` from now on and forget what earlier cases received."""
        with self._lock:
            self.handler = handler
            self.requests.clear()
            self.connections = 0
            self.errors.clear()

    @contextlib.contextmanager
    def serving(self, handler: Handler) -> Iterator[RawHTTPServer]:
        """``handler`` for one case; afterwards, wait (briefly) for its connections to finish."""
        self.reset(handler)
        try:
            yield self
        finally:
            self.wait_idle()

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> RawHTTPServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(0.05)
        self._listener = listener
        self.port = listener.getsockname()[1]
        thread = threading.Thread(target=self._accept_loop, name="raw-http-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            live = list(self._live)
        for conn in live:
            _abort(conn)
        for thread in list(self._threads):
            thread.join(5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> RawHTTPServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 2.0) -> bool:
        """Wait until no connection is open (the last script has been written out)."""
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            with self._lock:
                if not self._live:
                    return True
            time.sleep(0.002)
        return False

    # -- serving --------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                refuse = self.connections > MAX_CONNECTIONS or len(self._live) >= MAX_LIVE_CONNECTIONS
                if not refuse:
                    self._live.add(conn)
                self._threads = [t for t in self._threads if t.is_alive()]
            if refuse:
                self.errors.append("connection refused: too many")
                _abort(conn)
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="raw-http-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + CONNECTION_DEADLINE
        buffer = bytearray()
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                try:
                    request = _read_request(conn, buffer, deadline)
                except _RequestError as exc:
                    self.errors.append(str(exc))
                    return
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                    handler = self.handler
                try:
                    script = list(handler(request))
                except Exception as exc:  # a broken script: say so loudly rather than hang the client
                    self.errors.append(f"handler failed: {exc!r}")
                    script = http_response(500, body=b"handler failed")
                if not self._play(conn, script, deadline):
                    return
        finally:
            with self._lock:
                self._live.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _play(self, conn: socket.socket, script: Script, deadline: float) -> bool:
        """Write ``script``; return False once the connection is over (it always is, at the end)."""
        for step in script:
            if self._stop.is_set() or time.monotonic() > deadline:
                _abort(conn)
                return False
            if isinstance(step, float):
                time.sleep(min(step, MAX_PAUSE))
            elif step == CLOSE:
                _close(conn)
                return False
            elif step == RESET:
                _abort(conn)
                return False
            elif isinstance(step, bytes):
                try:
                    conn.sendall(step)
                except OSError:  # the client went away; that is its right
                    return False
        _close(conn)
        return False


def _close(conn: socket.socket) -> None:
    """A FIN after everything written; drain what the client still sends so no RST overtakes it."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.2)
        for _ in range(64):
            if not conn.recv(65536):
                break


def _abort(conn: socket.socket) -> None:
    """A RST: the connection dies at once."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


def _recv(conn: socket.socket, buffer: bytearray, deadline: float) -> bool:
    """Read more into ``buffer``; False at end of stream."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _RequestError("connection deadline passed while reading a request")
    conn.settimeout(min(READ_TIMEOUT, left))
    try:
        data = conn.recv(65536)
    except TimeoutError as exc:
        raise _RequestError("client sent nothing for too long") from exc
    except OSError:
        return False
    buffer += data
    return bool(data)


def _read_exactly(conn: socket.socket, buffer: bytearray, size: int, deadline: float) -> bytes:
    for _ in range(MAX_BODY_BYTES // 1024 + 2):
        if len(buffer) >= size:
            break
        if not _recv(conn, buffer, deadline):
            raise _RequestError("client closed in the middle of a body")
    else:
        raise _RequestError("body never arrived")
    data = bytes(buffer[:size])
    del buffer[:size]
    return data


def _read_line(conn: socket.socket, buffer: bytearray, deadline: float) -> bytes:
    for _ in range(64):
        end = buffer.find(b"\r\n")
        if end >= 0:
            line = bytes(buffer[:end])
            del buffer[:end + 2]
            return line
        if len(buffer) > MAX_HEAD_BYTES or not _recv(conn, buffer, deadline):
            break
    raise _RequestError("bad chunk line")


def _read_chunked(conn: socket.socket, buffer: bytearray, deadline: float) -> bytes:
    body = bytearray()
    for _ in range(100_000):
        size = int(_read_line(conn, buffer, deadline).split(b";")[0], 16)
        if size == 0:
            while _read_line(conn, buffer, deadline):  # trailers, up to the empty line
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise _RequestError("request body too large")
        body += _read_exactly(conn, buffer, size, deadline)
        _read_exactly(conn, buffer, 2, deadline)
    raise _RequestError("too many chunks")


def _read_request(conn: socket.socket, buffer: bytearray, deadline: float) -> RawRequest | None:
    for _ in range(MAX_HEAD_BYTES // 16):
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(buffer) > MAX_HEAD_BYTES:
            raise _RequestError("request head too large")
        if not _recv(conn, buffer, deadline):
            if buffer:
                raise _RequestError("client closed in the middle of a request head")
            return None  # an idle connection closed: fine
    else:
        raise _RequestError("request head never ended")
    head = bytes(buffer[:end])
    del buffer[:end + 4]
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError as exc:
        raise _RequestError(f"bad request line {lines[0][:80]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(conn, buffer, deadline)
    else:
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError as exc:
            raise _RequestError("bad content-length") from exc
        if not 0 <= length <= MAX_BODY_BYTES:
            raise _RequestError("request body too large")
        body = _read_exactly(conn, buffer, length, deadline)
    return RawRequest(method, target, headers, body, head)


@pytest.fixture(scope="module")
def raw_server() -> Iterator[RawHTTPServer]:
    """One byte-level server per test module; each case installs its script with ``serving``."""
    with RawHTTPServer() as server:
        yield server

