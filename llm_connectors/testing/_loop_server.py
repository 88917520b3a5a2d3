"""A TCP server on 127.0.0.1 running its own asyncio loop on a background thread.

The base of the test servers (:class:`~llm_connectors.testing.FakeServer`,
:class:`~llm_connectors.testing.faults.FaultProxy`): tests on any backend, asyncio or trio, talk
to it over a real socket, and stopping it aborts every open connection so nothing lingers.
Given an ``ssl.SSLContext`` (a server context, e.g. from ``trustme``) it speaks TLS, still on
127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from types import TracebackType
from typing import TypeVar

__all__ = ["LoopServer"]

S = TypeVar("S", bound="LoopServer")


class LoopServer:
    """Subclasses implement :meth:`handle` for each accepted connection.

    Args:
        ssl_context: A server-side ``ssl.SSLContext`` to serve TLS (``https://`` URLs); ``None``: plain TCP.

    Attributes:
        port: The bound port (0 until started).
        open_connections: Connections currently open.
    """

    thread_name = "loop-server"

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.port = 0
        self.open_connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._transports: set[asyncio.WriteTransport] = set()

    @property
    def url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError  # pragma: no cover - every server defines it

    def track(self, writer: asyncio.StreamWriter) -> None:
        """Abort this connection when the server stops."""
        self._transports.add(writer.transport)

    def untrack(self, writer: asyncio.StreamWriter) -> None:
        self._transports.discard(writer.transport)

    def start(self: S) -> S:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.thread_name} did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.track(writer)
        try:
            await self.handle(reader, writer)
        finally:
            self.open_connections -= 1
            self.untrack(writer)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0, backlog=1024,
                                                              ssl=self.ssl_context))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for transport in list(self._transports):
                transport.abort()  # handlers notice and return on their own
            pending = asyncio.all_tasks(loop)
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=2))
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
