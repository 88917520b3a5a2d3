"""A real HTTP/1.1 server on 127.0.0.1 for tests: scripted replies, streaming, faults.

It runs its own asyncio loop on a background thread, so tests on any backend (asyncio or
trio) talk to it over a real socket, exactly as they would to a provider.

    def handler(request: Request) -> Reply:
        return Reply.sse([b'data: {"x": 1}\\n\\n', 0.01, b"data: [DONE]\\n\\n"])

    with FakeServer(handler) as server:
        connector = OpenAIConnector(api_key="k", base_url=server.url)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ._loop_server import LoopServer

if TYPE_CHECKING:  # pragma: no cover
    import ssl

__all__ = ["FakeServer", "Reply", "Request"]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
            422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 529: "Overloaded"}
_MAX_HEADER_BYTES = 64 << 10


@dataclass
class Request:
    """A request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What to send back.

    Attributes:
        status: HTTP status.
        headers: Extra response headers.
        body: A complete body (sent with Content-Length).
        chunks: A streamed body: bytes are sent as they come (chunked encoding); a float pauses
            that many seconds first.
        truncate: For streamed bodies, drop the connection after the chunks instead of ending
            the chunked body (a provider dying mid-stream).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: Sequence[bytes | float] | None = None
    truncate: bool = False

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, {"content-type": "application/json", **(headers or {})},
                   json.dumps(data).encode())

    @classmethod
    def sse(cls, chunks: Sequence[bytes | float], *, truncate: bool = False,
            headers: Mapping[str, str] | None = None) -> Reply:
        return cls(200, {"content-type": "text/event-stream", **(headers or {})}, chunks=chunks,
                   truncate=truncate)

    @classmethod
    def ndjson(cls, chunks: Sequence[bytes | float], *, truncate: bool = False) -> Reply:
        return cls(200, {"content-type": "application/x-ndjson"}, chunks=chunks, truncate=truncate)


Handler = Callable[[Request], Reply]


class FakeServer(LoopServer):
    """A threaded-asyncio HTTP server bound to 127.0.0.1 on a free port.

    Args:
        handler: Called for every request (on the server's thread); returns a :class:`Reply`.
        ssl_context: A server-side ``ssl.SSLContext`` (e.g. ``trustme``'s) to serve https.

    Attributes:
        requests: Every request received, in order.
        url: ``http://127.0.0.1:<port>`` (``https://`` with ``ssl_context``).
        open_connections: Connections currently open (to check that clients close them).
    """

    thread_name = "fake-provider"

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(ssl_context=ssl_context)
        self.handler = handler
        self.requests: list[Request] = []
        self.total_connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.total_connections += 1
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                try:
                    reply = self.handler(request)
                except Exception as exc:  # a broken test handler: answer 500 and say why
                    reply = Reply.json({"error": {"message": f"handler failed: {exc!r}"}}, 500)
                if not await self._send(reader, writer, reply):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.transport.abort()

    async def _send(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: Reply) -> bool:
        """Write a reply; return whether the connection may be reused."""
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
        headers = {k.lower(): v for k, v in reply.headers.items()}
        if reply.chunks is None:
            headers["content-length"] = str(len(reply.body))
        else:
            headers["transfer-encoding"] = "chunked"
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if reply.chunks is None:
            writer.write(reply.body)
            await writer.drain()
            return True
        for piece in reply.chunks:
            if writer.transport.is_closing():
                return False  # the client went away
            if isinstance(piece, float):
                await writer.drain()
                if not await _pause(reader, writer, piece):
                    return False  # the client hung up during the pause
                continue
            if piece:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
        if reply.truncate:
            writer.transport.abort()
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


async def _pause(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float) -> bool:
    """Sleep, but stop early (returning False) when the client closes the connection."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while True:
        if reader.at_eof() or writer.transport.is_closing():
            return False
        left = until - loop.time()
        if left <= 0:
            return True
        await asyncio.sleep(min(left, 0.01))


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        return None
    if len(head) > _MAX_HEADER_BYTES:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    parts = urlsplit(target)
    return Request(method, parts.path, dict(parse_qsl(parts.query)), headers, body)
