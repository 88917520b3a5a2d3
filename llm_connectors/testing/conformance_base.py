"""What every part of the conformance suite shares: the connector under test, its fixtures, test data.

:class:`ConformanceBase` holds the fixtures (``wire_kit``, ``scripted_handler``, ``fake_server``)
and :meth:`~ConformanceBase.connect`; the test mixins in ``conformance_*.py`` build on it, and
:class:`~llm_connectors.testing.conformance.ConnectorConformance` combines them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from ..base import BaseConnector
from ..stream import ChatStream
from ..types import ToolCall
from .kit import ScriptedHandler, WireKit
from .server import FakeServer, Request

__all__ = ["API_KEY", "TIME", "TOOLS", "USER", "WEATHER", "ConformanceBase", "consume"]

#: The key every conformance connector gets; it must show up in a header and nowhere else.
API_KEY = "conformance-key-5f0c9d1e7a"
_TIMEOUT = 10.0  # every call's overall deadline: a hung connector fails the test, not the run

# What the tests send: a user turn, two tools, and calls to them.
WEATHER = ToolCall(id="callAbc12", name="get_weather", arguments={"city": "Paris", "days": 2})
TIME = ToolCall(id="callDef34", name="get_time", arguments={})
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}, "days": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "get_time",
                                      "parameters": {"type": "object", "properties": {}}}},
]
USER = [{"role": "user", "content": "ping conformance"}]


async def consume(stream: ChatStream, delivered: list[str]) -> None:
    """Read ``stream`` to its end (or its error), keeping each delta in ``delivered``."""
    async with stream:
        async for chunk in stream:
            delivered.append(chunk.delta)


class ConformanceBase:
    """The connector under test, its fixtures and :meth:`connect`; the suite's test mixins subclass it."""

    #: The kit of the connector under test.
    kit: ClassVar[WireKit | None] = None

    # -- fixtures ------------------------------------------------------------------------------

    @pytest.fixture
    def wire_kit(self) -> WireKit:
        if self.kit is None:
            raise TypeError(f"{type(self).__name__} must set `kit = YourWireKit()`")
        return self.kit

    @pytest.fixture
    def scripted_handler(self) -> ScriptedHandler:
        return ScriptedHandler()

    @pytest.fixture
    def fake_server(self, scripted_handler: ScriptedHandler) -> Iterator[FakeServer]:
        with FakeServer(scripted_handler) as server:
            yield server

    def connect(self, kit: WireKit, server: FakeServer, **kwargs: Any) -> BaseConnector:
        """The connector under test, pointed at ``server`` (use it with ``async with``)."""
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("timeout", _TIMEOUT)
        # One scripted reply, one outcome: retries and breakers would hide the mapping under test
        # (and a breaker's state outlives the test). Kits default to this too.
        kwargs.setdefault("retry", False)
        kwargs.setdefault("circuit_breaker", False)
        return kit.make_connector(server.url, **kwargs)

    def _check_auth(self, conn: BaseConnector, request: Request) -> None:
        if conn.definition.auth.kind != "none":
            assert any(API_KEY in value for value in request.headers.values()), "no header carries the key"
        assert API_KEY not in request.path, "the API key is in the URL path"
        assert all(API_KEY not in v for v in request.query.values()), "the API key is in the query"
        assert API_KEY.encode() not in request.body, "the API key is in the body"
