"""Conformance tests of a connector's life: concurrent calls, deadlines, and closing without leaks."""

from __future__ import annotations

import functools

import anyio
import pytest

from .. import errors as e
from ..base import BaseConnector
from ..types import ChatResponse
from .conformance_base import USER, ConformanceBase
from .kit import ScriptedHandler, WireKit
from .server import FakeServer, Reply

__all__ = ["LifecycleConformance", "wait_for_closed_connections"]

_DRAIN_SECONDS = 5.0


async def wait_for_closed_connections(server: FakeServer, seconds: float = _DRAIN_SECONDS) -> None:
    """Wait (bounded) until the server sees no open connection; fail if some stay open."""
    for _ in range(int(seconds / 0.01)):
        if server.open_connections == 0:
            return
        await anyio.sleep(0.01)
    assert server.open_connections == 0, \
        f"{server.open_connections} connection(s) still open {seconds}s after aclose()"


class LifecycleConformance(ConformanceBase):
    """Concurrency, deadlines and closing (a mixin of the suite)."""

    async def test_concurrent_calls(self, wire_kit: WireKit, fake_server: FakeServer,
                                    scripted_handler: ScriptedHandler) -> None:
        scripted_handler.default = wire_kit.chat_reply("same answer")
        results: list[ChatResponse] = []

        async def one(conn: BaseConnector) -> None:
            results.append(await conn.generate_chat(None, USER))

        async with self.connect(wire_kit, fake_server) as conn, anyio.create_task_group() as tg:
            for _ in range(16):
                tg.start_soon(one, conn)
        assert [r.content for r in results] == ["same answer"] * 16
        assert fake_server.total_connections <= 16

    @pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
    async def test_deadline(self, wire_kit: WireKit, fake_server: FakeServer,
                            scripted_handler: ScriptedHandler, stream: bool) -> None:
        reply = wire_kit.stream_reply(["late"]) if stream else wire_kit.chat_reply("late")
        body = list(reply.chunks or ()) if stream else [reply.body]
        scripted_handler.push(Reply(200, dict(reply.headers), chunks=[3.0, *body]))  # headers, then silence
        started = anyio.current_time()
        async with self.connect(wire_kit, fake_server, timeout=0.15) as conn:
            call = conn.generate_chat_stream(None, USER).collect if stream else \
                functools.partial(conn.generate_chat, None, USER)
            with pytest.raises(e.TimeoutError):
                await call()
        assert anyio.current_time() - started < 2.5, "the call outlived its deadline"

    async def test_no_leaked_connections(self, wire_kit: WireKit, fake_server: FakeServer,
                                         scripted_handler: ScriptedHandler) -> None:
        many = [f"word{i} " for i in range(50)]
        scripted_handler.push(
            wire_kit.chat_reply("one"),
            wire_kit.stream_reply(["two"]),
            wire_kit.stream_reply(many),  # abandoned after its first chunk
            wire_kit.error_reply(500, "conformance failure"),
            wire_kit.stream_error_reply(["x"]),
        )
        conn = self.connect(wire_kit, fake_server)
        try:
            await conn.generate_chat(None, USER)
            await conn.generate_chat_stream(None, USER).collect()
            async with conn.generate_chat_stream(None, USER) as stream:
                async for _ in stream:
                    break
            with pytest.raises(e.ProviderError):
                await conn.generate_chat(None, USER)
            with pytest.raises(e.StreamInterruptedError):
                await conn.generate_chat_stream(None, USER).collect()
        finally:
            await conn.aclose()
        assert len(fake_server.requests) == 5
        await wait_for_closed_connections(fake_server)
        await conn.aclose()  # a second close is harmless
