"""Conformance tests of what a connector sends and what it makes of the answer.

The connector and its definition (no I/O); the request (path, model, options, messages, tools
and tool results, images, the default model, the key in a header and nowhere else); parsing
(text, tool calls, usage, finish reasons); embeddings, model lists and health checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from ..base import BaseConnector
from ..definition import Capability, ServiceDefinition
from .conformance_base import API_KEY, TIME, TOOLS, USER, WEATHER, ConformanceBase
from .kit import ScriptedHandler, WireKit
from .server import FakeServer, Reply

__all__ = ["RequestConformance"]

_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _leaves(obj: Any) -> Iterator[Any]:
    if isinstance(obj, Mapping):
        for value in obj.values():
            yield from _leaves(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _leaves(value)
    else:
        yield obj


def _dicts(obj: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(obj, Mapping):
        yield obj
        for value in obj.values():
            yield from _dicts(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _dicts(value)


def _has_text(obj: Any, needle: str) -> bool:
    return any(isinstance(v, str) and needle in v for v in _leaves(obj))


def _has_number(obj: Any, number: float) -> bool:
    return any(isinstance(v, (int, float)) and not isinstance(v, bool) and v == number for v in _leaves(obj))


class RequestConformance(ConformanceBase):
    """The request a connector sends, and the response it parses (a mixin of the suite)."""

    # -- the connector and its definition (no I/O) ---------------------------------------------

    def test_kit_matches_connector(self, wire_kit: WireKit) -> None:
        connector = wire_kit.make_connector("http://127.0.0.1:9", api_key=API_KEY, retry=False,
                                            circuit_breaker=False)
        assert isinstance(connector, BaseConnector)
        definition = connector.definition
        assert isinstance(definition, ServiceDefinition)
        assert wire_kit.provider_id in (connector.provider, definition.id, *definition.aliases)
        assert Capability.CHAT in connector.capabilities
        json.dumps(definition.to_dict())  # lc.describe() must give JSON-able data
        assert connector.request_id_headers, "request_id_headers names no header"
        assert API_KEY not in repr(connector)
        assert wire_kit.chat_path.startswith("/")

    # -- the request ---------------------------------------------------------------------------

    async def test_request_shape(self, wire_kit: WireKit, fake_server: FakeServer,
                                 scripted_handler: ScriptedHandler) -> None:
        scripted_handler.push(wire_kit.chat_reply("pong"))
        async with self.connect(wire_kit, fake_server) as conn:
            # A provider whose API refuses temperature for every model (Claude's 2026-10-21) says so in
            # its model rules; the option is then left out here rather than refused before I/O.
            refused = any(rule.option == "temperature" and rule.rejected
                          for rule in conn.model_rules("conformance-model-1", None))
            sampling = {} if refused else {"temperature": 0.5}
            await conn.generate_chat("conformance-model-1",
                                     [{"role": "system", "content": "be brief conformance"}, *USER],
                                     max_tokens=21, stop=["END1"], **sampling)
        (request,) = fake_server.requests
        assert (request.method, request.path) == ("POST", wire_kit.chat_path)
        assert request.headers.get("content-type", "").startswith("application/json")
        body = request.json()
        assert "conformance-model-1" in request.path or _has_text(body, "conformance-model-1"), \
            "the model is neither in the path nor in the body"
        for needle in ("ping conformance", "be brief conformance", "END1"):
            assert _has_text(body, needle), f"{needle!r} is missing from the body"
        for number in (*sampling.values(), 21):
            assert _has_number(body, number), f"option value {number} is missing from the body"
        self._check_auth(conn, request)

    async def test_tool_round_trip_request(self, wire_kit: WireKit, fake_server: FakeServer,
                                           scripted_handler: ScriptedHandler) -> None:
        scripted_handler.push(wire_kit.chat_reply("It is 18C."))
        messages: list[Any] = [*USER, {"role": "assistant", "content": None, "tool_calls": [WEATHER]},
                    {"role": "tool", "tool_call_id": WEATHER.id, "content": "18C and sunny"}]
        async with self.connect(wire_kit, fake_server) as conn:
            if Capability.TOOLS not in conn.capabilities:
                pytest.skip(f"{conn.provider} has no tools capability")
            await conn.generate_chat(None, messages, tools=TOOLS, tool_choice="auto")
        body = fake_server.requests[0].json()
        for needle in ("get_weather", "Weather for a city.", "get_time", "Paris", "18C and sunny"):
            assert _has_text(body, needle), f"{needle!r} is missing from the body"
        assert any(isinstance(v, Mapping) and "city" in v for v in _dicts(body)), \
            "the tool's parameter schema is missing from the body"

    async def test_image_request(self, wire_kit: WireKit, fake_server: FakeServer,
                                 scripted_handler: ScriptedHandler) -> None:
        scripted_handler.push(wire_kit.chat_reply("A pixel."))
        messages = [{"role": "user", "content": [
            {"type": "text", "text": "describe conformance"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + _PNG}}]}]
        async with self.connect(wire_kit, fake_server) as conn:
            if Capability.VISION not in conn.capabilities:
                pytest.skip(f"{conn.provider} has no vision capability")
            await conn.generate_chat(None, messages)
        body = fake_server.requests[0].json()
        assert _has_text(body, "describe conformance")
        assert _has_text(body, _PNG), "the image data is missing from the body"

    async def test_default_model_is_used(self, wire_kit: WireKit, fake_server: FakeServer,
                                         scripted_handler: ScriptedHandler) -> None:
        scripted_handler.push(wire_kit.chat_reply("pong"))
        async with self.connect(wire_kit, fake_server, default_model="conformance-default") as conn:
            await conn.generate_chat(None, USER)
        (request,) = fake_server.requests
        assert "conformance-default" in request.path or _has_text(request.json(), "conformance-default")

    # -- parsing -------------------------------------------------------------------------------

    async def test_parses_text_usage_finish(self, wire_kit: WireKit, fake_server: FakeServer,
                                            scripted_handler: ScriptedHandler) -> None:
        scripted_handler.push(wire_kit.chat_reply("Hello conformance", input_tokens=11, output_tokens=5),
                              wire_kit.chat_reply("Cut", finish="length"))
        async with self.connect(wire_kit, fake_server) as conn:
            resp = await conn.generate_chat(None, USER)
            cut = await conn.generate_chat(None, USER)
        assert resp.content == "Hello conformance"
        assert resp.finish_reason == "stop"
        assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (11, 5, 16)
        assert resp.tool_calls == []
        assert resp.provider == conn.provider
        assert isinstance(resp.model, str)
        assert resp.model
        assert (cut.content, cut.finish_reason) == ("Cut", "length")

    async def test_parses_tool_calls(self, wire_kit: WireKit, fake_server: FakeServer,
                                     scripted_handler: ScriptedHandler) -> None:
        async with self.connect(wire_kit, fake_server) as conn:
            if Capability.TOOLS not in conn.capabilities:
                pytest.skip(f"{conn.provider} has no tools capability")
            scripted_handler.push(wire_kit.chat_reply("", tool_calls=[WEATHER, TIME], finish="tool_calls"))
            resp = await conn.generate_chat(None, USER, tools=TOOLS)
        assert resp.finish_reason == "tool_calls"
        assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == \
            [(WEATHER.id, "get_weather", {"city": "Paris", "days": 2}), (TIME.id, "get_time", {})]
        assert all(c.parse_error is None for c in resp.tool_calls)

    # -- embeddings, models, health -------------------------------------------------------------

    def _kit_reply(self, kit: WireKit, method: str, capability: str, *args: Any, **kwargs: Any) -> Reply:
        # A capability the connector declares must be testable: a kit without the reply fails.
        try:
            reply: Reply = getattr(kit, method)(*args, **kwargs)
        except NotImplementedError:
            pytest.fail(f"{kit.provider_id} declares {capability!r} but its kit has no {method}()")
        return reply

    async def test_embeddings(self, wire_kit: WireKit, fake_server: FakeServer,
                              scripted_handler: ScriptedHandler) -> None:
        vectors = [[0.25, -0.5, 1.0], [0.125, 0.0, -1.0]]
        conn = self.connect(wire_kit, fake_server)
        if Capability.EMBEDDINGS not in conn.capabilities:
            pytest.skip(f"{conn.provider} has no embeddings capability")
        scripted_handler.push(self._kit_reply(wire_kit, "embedding_reply", Capability.EMBEDDINGS, vectors,
                                              input_tokens=5))
        async with conn:
            emb = await conn.generate_embedding("conformance-embed", ["first text", "second text"])
        assert emb.embeddings == vectors  # exact: these values survive float32 too
        assert emb.provider == conn.provider
        assert emb.usage.input_tokens == 5
        (request,) = fake_server.requests
        assert "conformance-embed" in request.path or _has_text(request.json(), "conformance-embed")
        assert _has_text(request.json(), "second text")
        self._check_auth(conn, request)

    async def test_list_models_and_health(self, wire_kit: WireKit, fake_server: FakeServer,
                                          scripted_handler: ScriptedHandler) -> None:
        conn = self.connect(wire_kit, fake_server)
        if Capability.LIST_MODELS not in conn.capabilities:
            pytest.skip(f"{conn.provider} has no list_models capability")
        pages = [self._kit_reply(wire_kit, "models_reply", Capability.LIST_MODELS, ids)
                 for ids in (["model-a", "model-b"], ["model-a"])]
        scripted_handler.push(*pages, wire_kit.error_reply(401, "conformance bad key"))
        async with conn:
            models = await conn.list_models()
            assert [m.id for m in models] == ["model-a", "model-b"]
            assert await conn.health_check() is True
            assert await conn.health_check() is False
        for request in fake_server.requests:
            self._check_auth(conn, request)
