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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ._loop_server import LoopServer

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


class FaultProxy(LoopServer):
    """A threaded asyncio TCP proxy on 127.0.0.1 applying a :class:`Fault` per connection.

    Args:
        upstream_port: Port of the real server on 127.0.0.1.
        plan: Called with the connection's index (0, 1, 2...) to choose its fault.
        seed: Seed for the slicer's segment sizes (deterministic runs).

    Attributes:
        faults: The fault each connection got, in connection order.
        open_connections: Client connections currently open through the proxy.
    """

    thread_name = "fault-proxy"

    def __init__(self, upstream_port: int, plan: Callable[[int], Fault] = lambda index: NO_FAULT,
                 *, seed: int = 0) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.plan = plan
        self.faults: list[Fault] = []
        self._random = random.Random(seed)

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        fault = self.plan(len(self.faults))
        self.faults.append(fault)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        self.track(upstream_writer)
        upload = asyncio.ensure_future(self._pipe(client_reader, upstream_writer))
        try:
            await self._download(upstream_reader, client_writer, fault)
        finally:
            upload.cancel()
            for writer in (client_writer, upstream_writer):
                self.untrack(writer)
                if fault.kind == "reset":
                    writer.transport.abort()
                else:
                    writer.close()

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
