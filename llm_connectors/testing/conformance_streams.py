"""Conformance tests of streaming: parity with the whole answer, the chunk contract, cut streams.

A collected stream must equal the non-streaming answer on the same content (also with the bytes
cut at arbitrary places); finish reason and usage come on the last chunk only; a stream cut
short raises ``StreamInterruptedError`` with the text delivered so far.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from .. import errors as e
from ..definition import Capability
from ..types import ChatChunk, ChatResponse, ToolCall
from .conformance_base import TIME, TOOLS, USER, WEATHER, ConformanceBase, consume
from .kit import Finish, ScriptedHandler, WireKit
from .server import FakeServer, Reply

__all__ = ["STREAM_SCENARIOS", "StreamConformance", "StreamScenario", "assert_same_response"]


@dataclass(frozen=True)
class StreamScenario:
    """One answer, given both whole and as stream deltas."""

    name: str
    deltas: tuple[str, ...]
    tool_calls: tuple[ToolCall, ...] = ()
    finish: Finish = "stop"

    @property
    def text(self) -> str:
        return "".join(self.deltas)


#: What the parity tests stream: plain text (with multi-byte characters), tool calls, a cut-off.
STREAM_SCENARIOS = (
    StreamScenario("text", ("Hel", "lo, ", "wör", "ld ✓ — ", "done.")),
    StreamScenario("tools", ("Checking.",), (WEATHER, TIME), "tool_calls"),
    StreamScenario("length", ("Cut ", "short"), finish="length"),
)


def _summary(response: ChatResponse) -> dict[str, Any]:
    return {
        "content": response.content,
        "finish_reason": response.finish_reason,
        "usage": response.usage,
        "tool_calls": [(c.id, c.name, c.arguments) for c in response.tool_calls],
        "reasoning": response.reasoning,
        "provider": response.provider,
        "model": response.model,
    }


def assert_same_response(streamed: ChatResponse, whole: ChatResponse) -> None:
    """Stream/non-stream parity: every normalised field equal (``raw`` excepted)."""
    a, b = _summary(streamed), _summary(whole)
    diff = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not diff, f"collected stream differs from generate_chat (streamed, whole): {diff}"


def _resplit(chunks: Sequence[bytes], seed: int) -> list[bytes | float]:
    """The same bytes cut at arbitrary places (1-7 bytes per write)."""
    data = b"".join(chunks)
    rng = random.Random(seed)
    out: list[bytes | float] = []
    i = 0
    while i < len(data):
        size = rng.randint(1, 7)
        out.append(data[i:i + size])
        i += size
    return out


class StreamConformance(ConformanceBase):
    """Streaming behaviour (a mixin of the suite)."""

    # -- streaming -----------------------------------------------------------------------------

    @pytest.mark.parametrize("scenario", STREAM_SCENARIOS, ids=[s.name for s in STREAM_SCENARIOS])
    async def test_stream_parity(self, wire_kit: WireKit, fake_server: FakeServer,
                                 scripted_handler: ScriptedHandler, scenario: StreamScenario) -> None:
        calls = list(scenario.tool_calls)
        scripted_handler.push(
            wire_kit.chat_reply(scenario.text, tool_calls=calls, input_tokens=13, output_tokens=8,
                                finish=scenario.finish),
            wire_kit.stream_reply(list(scenario.deltas), tool_calls=calls, input_tokens=13, output_tokens=8,
                                  finish=scenario.finish))
        async with self.connect(wire_kit, fake_server) as conn:
            if calls and Capability.TOOLS not in conn.capabilities:
                pytest.skip(f"{conn.provider} has no tools capability")
            options: dict[str, Any] = {"tools": TOOLS} if calls else {}
            whole = await conn.generate_chat(None, USER, **options)
            streamed = await conn.generate_chat_stream(None, USER, **options).collect()
        assert whole.content == scenario.text
        assert (whole.usage.input_tokens, whole.usage.output_tokens) == (13, 8)
        assert_same_response(streamed, whole)
        first, second = fake_server.requests
        assert wire_kit.same_endpoint(first.path, second.path)
        self._check_auth(conn, second)

    @pytest.mark.parametrize("scenario", STREAM_SCENARIOS[:2], ids=[s.name for s in STREAM_SCENARIOS[:2]])
    async def test_stream_chunks(self, wire_kit: WireKit, fake_server: FakeServer,
                                 scripted_handler: ScriptedHandler, scenario: StreamScenario) -> None:
        calls = list(scenario.tool_calls)
        scripted_handler.push(wire_kit.stream_reply(list(scenario.deltas), tool_calls=calls,
                                                    finish=scenario.finish))
        chunks: list[ChatChunk] = []
        async with self.connect(wire_kit, fake_server) as conn:
            if calls and Capability.TOOLS not in conn.capabilities:
                pytest.skip(f"{conn.provider} has no tools capability")
            options: dict[str, Any] = {"tools": TOOLS} if calls else {}
            async with conn.generate_chat_stream(None, USER, **options) as stream:
                async for chunk in stream:
                    chunks.append(chunk)
                response = stream.response
        assert "".join(c.delta for c in chunks) == scenario.text == response.content
        assert [c for chunk in chunks for c in chunk.tool_calls] == response.tool_calls, \
            "tool calls on the chunks differ from the collected response"
        assert all(c.parse_error is None for c in response.tool_calls)
        assert chunks
        assert chunks[-1].finish_reason == scenario.finish
        assert all(c.finish_reason is None for c in chunks[:-1]), "finish_reason before the last chunk"
        assert all(c.usage is None for c in chunks[:-1]), "usage before the last chunk"
        assert chunks[-1].usage is not None
        assert chunks[-1].usage == response.usage

    @pytest.mark.parametrize("seed", [1, 2, 3])
    async def test_stream_any_split(self, wire_kit: WireKit, fake_server: FakeServer,
                                    scripted_handler: ScriptedHandler, seed: int) -> None:
        scenario = STREAM_SCENARIOS[0]
        calls = [WEATHER] if seed == 3 else []
        reply = wire_kit.stream_reply(list(scenario.deltas), tool_calls=calls,
                                      finish="tool_calls" if calls else "stop")
        events = wire_kit.stream_events(list(scenario.deltas), tool_calls=calls,
                                        finish="tool_calls" if calls else "stop")
        scripted_handler.push(reply, Reply(200, dict(reply.headers), chunks=_resplit(events, seed)))
        async with self.connect(wire_kit, fake_server) as conn:
            if calls and Capability.TOOLS not in conn.capabilities:
                pytest.skip(f"{conn.provider} has no tools capability")
            options: dict[str, Any] = {"tools": TOOLS} if calls else {}
            whole = await conn.generate_chat_stream(None, USER, **options).collect()
            split = await conn.generate_chat_stream(None, USER, **options).collect()
        assert whole.content == scenario.text
        assert_same_response(split, whole)

    @pytest.mark.parametrize("drop", ["end_marker", "connection"])
    async def test_cut_stream_raises(self, wire_kit: WireKit, fake_server: FakeServer,
                                     scripted_handler: ScriptedHandler, drop: str) -> None:
        events = wire_kit.stream_events(["Partial ", "answer"])
        reply = wire_kit.stream_reply(["Partial ", "answer"])
        scripted_handler.push(Reply(200, dict(reply.headers), chunks=list(events[:-1]),
                                    truncate=drop == "connection"))
        delivered: list[str] = []
        async with self.connect(wire_kit, fake_server) as conn:
            with pytest.raises(e.StreamInterruptedError) as info:
                await consume(conn.generate_chat_stream(None, USER), delivered)
        assert info.value.partial == "".join(delivered) == "Partial answer"
        assert isinstance(info.value.__cause__, (e.ProviderError, e.NetworkError))
