"""The conformance suite: one set of behaviour tests for every connector, built-in or third-party.

Each test scripts a real :class:`~llm_connectors.testing.FakeServer` (a socket on 127.0.0.1)
with replies built by the connector's :class:`~llm_connectors.testing.kit.WireKit`, then
checks what the connector sent and what it returned. A plugin author reuses it in five lines::

    from llm_connectors.testing.conformance import ConnectorConformance
    from megachat_llm.testing import MegaChatWireKit

    class TestMegaChatConformance(ConnectorConformance):
        kit = MegaChatWireKit()

The async tests carry ``pytest.mark.anyio`` (anyio's pytest plugin, installed with anyio);
they run on asyncio unless your ``conftest.py`` defines an ``anyio_backend`` fixture with
``params=["asyncio", "trio"]``. To run the suite over several kits, override the
``wire_kit`` fixture with ``params`` (``tests/test_conformance.py`` does that for the
built-ins listed in :data:`BUILTIN_KITS`).

What it checks: the request (path, model, options, messages, tools and tool results, images,
the key in a header and nowhere else), parsing (text, tool calls, usage, finish reasons),
stream-vs-non-stream parity (also with the bytes cut at arbitrary places), the chunk contract
(finish reason and usage only on the last chunk), the status -> error-class table with
``retryable`` / ``retry_after`` / ``request_id``, in-band stream errors before and after the
first delta, cut streams, validation and capability errors before any I/O, embeddings, model
lists, health checks, concurrent calls, deadlines, and that ``aclose()`` leaves no connection
open. Connectors are built with ``retry=False, circuit_breaker=False``: one scripted reply,
one outcome.
"""

from __future__ import annotations

import functools
import importlib
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import anyio
import pytest

from .. import errors as e
from ..base import BaseConnector
from ..definition import Capability, ServiceDefinition
from ..stream import ChatStream
from ..types import ChatChunk, ChatResponse, ToolCall
from .kit import Finish, ScriptedHandler, WireKit
from .server import FakeServer, Reply, Request

__all__ = [
    "BUILTIN_KITS",
    "ERROR_STATUSES",
    "EXPECTED_ERRORS",
    "STREAM_SCENARIOS",
    "ConnectorConformance",
    "StreamScenario",
    "assert_same_response",
    "builtin_kit_params",
    "kit_id",
    "load_kit",
    "load_kit_or_skip",
    "wait_for_closed_connections",
]

#: Wire kits of the built-in connectors, by import path (imported only when a test needs one).
BUILTIN_KITS: tuple[str, ...] = (
    "llm_connectors.testing.openai_wire:OpenAIWireKit",
    "llm_connectors.testing.claude_wire:ClaudeWireKit",
    "llm_connectors.testing.mistral_wire:MistralWireKit",
    "llm_connectors.testing.ollama_wire:OllamaWireKit",
    "llm_connectors.testing.sample_wire:SampleWireKit",
)

#: HTTP status -> (error class, retryable). Exact classes: a 400 must not come out as a
#: ContextWindowExceededError, nor a 429 as QuotaExceededError, from a neutral message.
EXPECTED_ERRORS: dict[int, tuple[type[e.LLMConnectorError], bool]] = {
    400: (e.InvalidRequestError, False),
    401: (e.AuthenticationError, False),
    403: (e.PermissionDeniedError, False),
    404: (e.NotFoundError, False),
    408: (e.TimeoutError, True),
    409: (e.ProviderError, True),
    422: (e.InvalidRequestError, False),
    429: (e.RateLimitError, True),
    500: (e.ProviderError, True),
    502: (e.ProviderError, True),
    503: (e.ProviderError, True),
    529: (e.OverloadedError, True),
}
ERROR_STATUSES: tuple[int, ...] = tuple(EXPECTED_ERRORS)
# Some providers document 503 as "overloaded"; that refinement is fine.
_ALSO_ACCEPTED: dict[int, tuple[type[e.LLMConnectorError], ...]] = {503: (e.OverloadedError,)}

#: The key every conformance connector gets; it must show up in a header and nowhere else.
API_KEY = "conformance-key-5f0c9d1e7a"
_TIMEOUT = 10.0  # every call's overall deadline: a hung connector fails the test, not the run
_DRAIN_SECONDS = 5.0


# -- loading kits ------------------------------------------------------------------------------

def load_kit(path: str) -> WireKit:
    """Import ``"package.module:ClassName"`` and instantiate the kit."""
    module_name, _, attr = path.partition(":")
    kit = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(kit, WireKit):
        raise TypeError(f"{path} is not a llm_connectors.testing.kit.WireKit")
    return kit


def load_kit_or_skip(path: str) -> WireKit:
    """Like :func:`load_kit`, but skip the test while the kit or its connector module is missing.

    Only a *missing module* skips; a kit or connector that fails to import for any other
    reason fails the test.
    """
    module_name = path.partition(":")[0]
    try:
        kit = load_kit(path)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        pytest.skip(f"wire kit {path} is not importable yet ({exc.name} does not exist)")
    from ..registry import connector_class, is_provider_id

    if is_provider_id(kit.provider_id):
        try:
            connector_class(kit.provider_id)
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("llm_connectors.connectors."):
                raise
            pytest.skip(f"connector for {kit.provider_id!r} is not importable yet "
                        f"({exc.name} does not exist)")
    return kit


def kit_id(path: str) -> str:
    """``"llm_connectors.testing.openai_wire:OpenAIWireKit"`` -> ``"openai"``."""
    return path.partition(":")[0].rpartition(".")[2].removesuffix("_wire")


def builtin_kit_params() -> list[Any]:
    """``pytest.param`` per built-in kit path, with the provider as the test id."""
    return [pytest.param(path, id=kit_id(path)) for path in BUILTIN_KITS]


# -- helpers -----------------------------------------------------------------------------------

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


async def wait_for_closed_connections(server: FakeServer, seconds: float = _DRAIN_SECONDS) -> None:
    """Wait (bounded) until the server sees no open connection; fail if some stay open."""
    for _ in range(int(seconds / 0.01)):
        if server.open_connections == 0:
            return
        await anyio.sleep(0.01)
    assert server.open_connections == 0, \
        f"{server.open_connections} connection(s) still open {seconds}s after aclose()"


async def _consume(stream: ChatStream, delivered: list[str]) -> None:
    async with stream:
        async for chunk in stream:
            delivered.append(chunk.delta)


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


_WEATHER = ToolCall(id="callAbc12", name="get_weather", arguments={"city": "Paris", "days": 2})
_TIME = ToolCall(id="callDef34", name="get_time", arguments={})
#: What the parity tests stream: plain text (with multi-byte characters), tool calls, a cut-off.
STREAM_SCENARIOS = (
    StreamScenario("text", ("Hel", "lo, ", "wör", "ld ✓ — ", "done.")),
    StreamScenario("tools", ("Checking.",), (_WEATHER, _TIME), "tool_calls"),
    StreamScenario("length", ("Cut ", "short"), finish="length"),
)
_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}, "days": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "get_time",
                                      "parameters": {"type": "object", "properties": {}}}},
]
_USER = [{"role": "user", "content": "ping conformance"}]
_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


# -- the suite ---------------------------------------------------------------------------------

class ConnectorConformance:
    """Behaviour every connector must have. Subclass it and set :attr:`kit`.

    Fixtures you may override: ``wire_kit`` (the kit under test, ``self.kit`` by default),
    ``scripted_handler`` and ``fake_server``.
    """

    #: The kit of the connector under test.
    kit: ClassVar[WireKit | None] = None
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

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
            await conn.generate_chat("conformance-model-1",
                                     [{"role": "system", "content": "be brief conformance"}, *_USER],
                                     temperature=0.5, max_tokens=21, stop=["END1"])
        (request,) = fake_server.requests
        assert (request.method, request.path) == ("POST", wire_kit.chat_path)
        assert request.headers.get("content-type", "").startswith("application/json")
        body = request.json()
        assert "conformance-model-1" in request.path or _has_text(body, "conformance-model-1"), \
            "the model is neither in the path nor in the body"
        for needle in ("ping conformance", "be brief conformance", "END1"):
            assert _has_text(body, needle), f"{needle!r} is missing from the body"
        for number in (0.5, 21):
            assert _has_number(body, number), f"option value {number} is missing from the body"
        self._check_auth(conn, request)

    async def test_tool_round_trip_request(self, wire_kit: WireKit, fake_server: FakeServer,
                                           scripted_handler: ScriptedHandler) -> None:
        scripted_handler.push(wire_kit.chat_reply("It is 18C."))
        messages: list[Any] = [*_USER, {"role": "assistant", "content": None, "tool_calls": [_WEATHER]},
                    {"role": "tool", "tool_call_id": _WEATHER.id, "content": "18C and sunny"}]
        async with self.connect(wire_kit, fake_server) as conn:
            if Capability.TOOLS not in conn.capabilities:
                pytest.skip(f"{conn.provider} has no tools capability")
            await conn.generate_chat(None, messages, tools=_TOOLS, tool_choice="auto")
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
            await conn.generate_chat(None, _USER)
        (request,) = fake_server.requests
        assert "conformance-default" in request.path or _has_text(request.json(), "conformance-default")

    def _check_auth(self, conn: BaseConnector, request: Request) -> None:
        if conn.definition.auth.kind != "none":
            assert any(API_KEY in value for value in request.headers.values()), "no header carries the key"
        assert API_KEY not in request.path, "the API key is in the URL path"
        assert all(API_KEY not in v for v in request.query.values()), "the API key is in the query"
        assert API_KEY.encode() not in request.body, "the API key is in the body"

    # -- parsing -------------------------------------------------------------------------------

    async def test_parses_text_usage_finish(self, wire_kit: WireKit, fake_server: FakeServer,
                                            scripted_handler: ScriptedHandler) -> None:
        scripted_handler.push(wire_kit.chat_reply("Hello conformance", input_tokens=11, output_tokens=5),
                              wire_kit.chat_reply("Cut", finish="length"))
        async with self.connect(wire_kit, fake_server) as conn:
            resp = await conn.generate_chat(None, _USER)
            cut = await conn.generate_chat(None, _USER)
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
            scripted_handler.push(wire_kit.chat_reply("", tool_calls=[_WEATHER, _TIME], finish="tool_calls"))
            resp = await conn.generate_chat(None, _USER, tools=_TOOLS)
        assert resp.finish_reason == "tool_calls"
        assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == \
            [(_WEATHER.id, "get_weather", {"city": "Paris", "days": 2}), (_TIME.id, "get_time", {})]
        assert all(c.parse_error is None for c in resp.tool_calls)

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
            options: dict[str, Any] = {"tools": _TOOLS} if calls else {}
            whole = await conn.generate_chat(None, _USER, **options)
            streamed = await conn.generate_chat_stream(None, _USER, **options).collect()
        assert whole.content == scenario.text
        assert (whole.usage.input_tokens, whole.usage.output_tokens) == (13, 8)
        assert_same_response(streamed, whole)
        first, second = fake_server.requests
        assert second.path == first.path
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
            options: dict[str, Any] = {"tools": _TOOLS} if calls else {}
            async with conn.generate_chat_stream(None, _USER, **options) as stream:
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
        calls = [_WEATHER] if seed == 3 else []
        reply = wire_kit.stream_reply(list(scenario.deltas), tool_calls=calls,
                                      finish="tool_calls" if calls else "stop")
        events = wire_kit.stream_events(list(scenario.deltas), tool_calls=calls,
                                        finish="tool_calls" if calls else "stop")
        scripted_handler.push(reply, Reply(200, dict(reply.headers), chunks=_resplit(events, seed)))
        async with self.connect(wire_kit, fake_server) as conn:
            if calls and Capability.TOOLS not in conn.capabilities:
                pytest.skip(f"{conn.provider} has no tools capability")
            options: dict[str, Any] = {"tools": _TOOLS} if calls else {}
            whole = await conn.generate_chat_stream(None, _USER, **options).collect()
            split = await conn.generate_chat_stream(None, _USER, **options).collect()
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
                await _consume(conn.generate_chat_stream(None, _USER), delivered)
        assert info.value.partial == "".join(delivered) == "Partial answer"
        assert isinstance(info.value.__cause__, (e.ProviderError, e.NetworkError))

    # -- errors --------------------------------------------------------------------------------

    @pytest.mark.parametrize("status", ERROR_STATUSES)
    async def test_http_error_mapping(self, wire_kit: WireKit, fake_server: FakeServer,
                                      scripted_handler: ScriptedHandler, status: int) -> None:
        expected, retryable = EXPECTED_ERRORS[status]
        wait = status in (429, 503)
        async with self.connect(wire_kit, fake_server) as conn:
            headers = {conn.request_id_headers[0]: f"req-conformance-{status}"}
            if wait:
                headers["retry-after"] = "2"
            scripted_handler.push(wire_kit.error_reply(status, f"conformance failure {status}",
                                                       headers=headers))
            with pytest.raises(e.LLMConnectorError) as info:
                await conn.generate_chat(None, _USER)
        err = info.value
        assert type(err) in (expected, *_ALSO_ACCEPTED.get(status, ())), \
            f"HTTP {status} raised {type(err).__name__}, expected {expected.__name__}: {err!r}"
        assert err.status_code == status
        assert err.retryable is retryable
        assert err.request_id == f"req-conformance-{status}"
        assert err.retry_after == (2.0 if wait else None)
        assert err.provider == conn.provider
        assert f"conformance failure {status}" in err.message
        for text in (str(err), repr(err), err.message):
            assert API_KEY not in text

    @pytest.mark.parametrize("status", [401, 503])
    async def test_http_error_on_stream(self, wire_kit: WireKit, fake_server: FakeServer,
                                        scripted_handler: ScriptedHandler, status: int) -> None:
        scripted_handler.push(wire_kit.error_reply(status, "conformance stream failure"))
        async with self.connect(wire_kit, fake_server) as conn:
            with pytest.raises(e.LLMConnectorError) as info:
                async with conn.generate_chat_stream(None, _USER) as stream:
                    await stream.collect()
        assert isinstance(info.value, EXPECTED_ERRORS[status][0])
        assert not isinstance(info.value, e.StreamInterruptedError)
        assert info.value.status_code == status

    @pytest.mark.parametrize("kind", ["overloaded", "api"])
    async def test_inband_error_before_first_delta(self, wire_kit: WireKit, fake_server: FakeServer,
                                                   scripted_handler: ScriptedHandler,
                                                   kind: Literal["overloaded", "api"]) -> None:
        scripted_handler.push(wire_kit.stream_error_reply([], kind=kind))
        async with self.connect(wire_kit, fake_server) as conn:
            with pytest.raises(e.LLMConnectorError) as info:
                async with conn.generate_chat_stream(None, _USER) as stream:
                    await stream.collect()
        err = info.value
        assert isinstance(err, e.ProviderError), f"an in-band {kind} error raised {err!r}"
        assert not isinstance(err, e.ProtocolError), f"the in-band {kind} error was not recognised: {err!r}"
        assert err.retryable is True
        assert err.provider == conn.provider

    async def test_inband_error_after_delta(self, wire_kit: WireKit, fake_server: FakeServer,
                                            scripted_handler: ScriptedHandler) -> None:
        scripted_handler.push(wire_kit.stream_error_reply(["Partial ", "answer"]))
        delivered: list[str] = []
        async with self.connect(wire_kit, fake_server) as conn:
            stream = conn.generate_chat_stream(None, _USER)
            with pytest.raises(e.StreamInterruptedError) as info:
                await _consume(stream, delivered)
            assert stream.text == "".join(delivered)
        assert info.value.partial == "".join(delivered) == "Partial answer"
        assert isinstance(info.value.__cause__, e.ProviderError)
        assert not isinstance(info.value.__cause__, e.ProtocolError)

    # -- validation and capabilities, before any I/O --------------------------------------------

    async def test_invalid_options_rejected_before_io(self, wire_kit: WireKit,
                                                      fake_server: FakeServer) -> None:
        async with self.connect(wire_kit, fake_server) as conn:
            with pytest.raises(e.InvalidRequestError, match="temperatur"):
                await conn.generate_chat(None, _USER, temperatur=0.5)
            with pytest.raises(e.InvalidRequestError, match="temperature"):
                await conn.generate_chat(None, _USER, temperature=99)
            with pytest.raises(e.InvalidRequestError, match="temperatur"):
                conn.generate_chat_stream(None, _USER, temperatur=0.5)  # raises at the call
            with pytest.raises(e.InvalidRequestError):
                await conn.generate_chat(None, [])
            with pytest.raises(e.InvalidRequestError):
                await conn.generate_chat(None, [{"role": "robot", "content": "hi"}])
            if Capability.EMBEDDINGS in conn.capabilities:
                with pytest.raises(e.InvalidRequestError, match="dimensionz"):
                    await conn.generate_embedding(None, "text", dimensionz=8)
        assert fake_server.requests == []

    async def test_missing_capabilities_raise_before_io(self, wire_kit: WireKit,
                                                        fake_server: FakeServer) -> None:
        picture = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
        image = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, picture]}]
        schema = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
        attempts: dict[str, Any] = {
            Capability.EMBEDDINGS: lambda c: c.generate_embedding(None, "text"),
            Capability.LIST_MODELS: lambda c: c.list_models(),
            Capability.TOOLS: lambda c: c.generate_chat(None, _USER, tools=_TOOLS),
            Capability.VISION: lambda c: c.generate_chat(None, image),
            Capability.JSON_MODE: lambda c: c.generate_chat(None, _USER,
                                                            response_format={"type": "json_object"}),
            Capability.JSON_SCHEMA: lambda c: c.generate_chat(None, _USER, response_format=schema),
        }
        async with self.connect(wire_kit, fake_server) as conn:
            missing = [cap for cap in attempts if cap not in conn.capabilities]
            if Capability.STREAMING not in conn.capabilities:
                with pytest.raises(e.UnsupportedCapabilityError):
                    conn.generate_chat_stream(None, _USER)
            for cap in missing:
                with pytest.raises(e.UnsupportedCapabilityError) as info:
                    await attempts[cap](conn)
                assert info.value.provider == conn.provider
                assert info.value.fallback is True  # a chain moves on to the next provider
        assert fake_server.requests == []
        if not missing and Capability.STREAMING in conn.capabilities:
            pytest.skip(f"{conn.provider} has every capability the suite can withhold")

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

    async def test_concurrent_calls(self, wire_kit: WireKit, fake_server: FakeServer,
                                    scripted_handler: ScriptedHandler) -> None:
        scripted_handler.default = wire_kit.chat_reply("same answer")
        results: list[ChatResponse] = []

        async def one(conn: BaseConnector) -> None:
            results.append(await conn.generate_chat(None, _USER))

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
            call = conn.generate_chat_stream(None, _USER).collect if stream else \
                functools.partial(conn.generate_chat, None, _USER)
            with pytest.raises(e.TimeoutError):
                await call()
        assert anyio.current_time() - started < 2.5, "the call outlived its deadline"

    # -- lifecycle -------------------------------------------------------------------------------

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
            await conn.generate_chat(None, _USER)
            await conn.generate_chat_stream(None, _USER).collect()
            async with conn.generate_chat_stream(None, _USER) as stream:
                async for _ in stream:
                    break
            with pytest.raises(e.ProviderError):
                await conn.generate_chat(None, _USER)
            with pytest.raises(e.StreamInterruptedError):
                await conn.generate_chat_stream(None, _USER).collect()
        finally:
            await conn.aclose()
        assert len(fake_server.requests) == 5
        await wait_for_closed_connections(fake_server)
        await conn.aclose()  # a second close is harmless
