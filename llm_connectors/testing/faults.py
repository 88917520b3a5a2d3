"""A fault-injecting TCP proxy for tests, in the spirit of toxiproxy's toxics.

It sits between a connector and a :class:`FakeServer` on 127.0.0.1 and damages the *response*
bytes of each connection according to a :class:`Fault` chosen when the connection opens:
reset the connection after N bytes, stall after N bytes, deliver in 1-7 byte slices, or close
cleanly after N bytes (truncation without the stream's end marker).

    with FakeServer(handler) as upstream, FaultProxy(upstream.port, plan) as proxy:
        connector = OpenAIConnector(api_key="k", base_url=proxy.url + "/v1")
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

__all__ = ["Fault", "FaultProxy"]

FaultKind = Literal["none", "reset", "stall", "slice", "truncate"]


@dataclass(frozen=True)
class Fault:
    """What to do to one connection's response bytes.

    Attributes:
        kind: ``none``; ``reset`` (abort with RST after ``after_bytes``); ``stall`` (stop
            forwarding after ``after_bytes`` for ``seconds``); ``slice`` (forward in segments of
            1-7 bytes, ``seconds`` apart); ``truncate`` (close cleanly after ``after_bytes``).
        after_bytes: Response bytes forwarded before the fault strikes.
        seconds: Stall length, or the pause between slices.
    """

    kind: FaultKind = "none"
    after_bytes: int = 0
    seconds: float = 0.0


NO_FAULT = Fault()


class FaultProxy:
    """A threaded asyncio TCP proxy on 127.0.0.1 applying a :class:`Fault` per connection.

    Args:
        upstream_port: Port of the real server on 127.0.0.1.
        plan: Called with the connection's index (0, 1, 2...) to choose its fault.
        seed: Seed for the slicer's segment sizes (deterministic runs).

    Attributes:
        faults: The fault each connection got, in connection order.
        open_connections: Client connections currently open through the proxy.
    """

    def __init__(self, upstream_port: int, plan: Callable[[int], Fault] = lambda index: NO_FAULT,
                 *, seed: int = 0) -> None:
        self.upstream_port = upstream_port
        self.plan = plan
        self.faults: list[Fault] = []
        self.open_connections = 0
        self._random = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._transports: set[asyncio.WriteTransport] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0, backlog=1024))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for transport in list(self._transports):
                transport.abort()
            pending = asyncio.all_tasks(loop)
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=2))
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        fault = self.plan(len(self.faults))
        self.faults.append(fault)
        self.open_connections += 1
        self._transports.add(client_writer.transport)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            self.open_connections -= 1
            return
        self._transports.add(upstream_writer.transport)
        upload = asyncio.ensure_future(self._pipe(client_reader, upstream_writer))
        try:
            await self._download(upstream_reader, client_writer, fault)
        finally:
            upload.cancel()
            for writer in (client_writer, upstream_writer):
                self._transports.discard(writer.transport)
                if fault.kind == "reset":
                    writer.transport.abort()
                else:
                    writer.close()
            self.open_connections -= 1

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if writer.can_write_eof() and not writer.is_closing():
                with contextlib.suppress(OSError):
                    writer.write_eof()

    async def _download(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: Fault) -> None:
        sent = 0
        kind = fault.kind
        try:
            while data := await reader.read(65536):
                if kind in ("reset", "truncate", "stall") and sent + len(data) >= fault.after_bytes:
                    head = data[:max(0, fault.after_bytes - sent)]
                    writer.write(head)
                    await writer.drain()
                    sent += len(head)
                    if kind == "stall":
                        await self._stall(reader, writer, fault.seconds)
                        kind = "none"
                        data = data[len(head):]
                    else:
                        return  # reset: aborted by the caller; truncate: closed cleanly
                if kind == "slice":
                    await self._slices(writer, data, fault.seconds)
                else:
                    writer.write(data)
                    await writer.drain()
                sent += len(data)
        except ConnectionError:
            return

    @staticmethod
    async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while loop.time() < until and not writer.transport.is_closing():  # noqa: ASYNC110 - polls the peer
            await asyncio.sleep(min(0.01, until - loop.time()))

    async def _slices(self, writer: asyncio.StreamWriter, data: bytes, pause: float) -> None:
        view = memoryview(data)
        while view:
            size = self._random.randint(1, 7)
            writer.write(bytes(view[:size]))
            view = view[size:]
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
