"""Conformance tests of failures: the status -> error-class table, errors in streams, bad requests.

HTTP errors map to exact error classes with ``retryable``, ``retry_after`` and ``request_id``;
in-band stream errors are recognised before and after the first delta; invalid options and
missing capabilities raise before any I/O.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest

from .. import errors as e
from ..definition import Capability
from .conformance_base import API_KEY, TOOLS, USER, ConformanceBase, consume
from .kit import ScriptedHandler, WireKit
from .server import FakeServer

__all__ = ["ERROR_STATUSES", "EXPECTED_ERRORS", "ErrorConformance"]

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


class ErrorConformance(ConformanceBase):
    """Failures and refusals (a mixin of the suite)."""

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
                await conn.generate_chat(None, USER)
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
                async with conn.generate_chat_stream(None, USER) as stream:
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
                async with conn.generate_chat_stream(None, USER) as stream:
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
            stream = conn.generate_chat_stream(None, USER)
            with pytest.raises(e.StreamInterruptedError) as info:
                await consume(stream, delivered)
            assert stream.text == "".join(delivered)
        assert info.value.partial == "".join(delivered) == "Partial answer"
        assert isinstance(info.value.__cause__, e.ProviderError)
        assert not isinstance(info.value.__cause__, e.ProtocolError)

    # -- validation and capabilities, before any I/O --------------------------------------------

    async def test_invalid_options_rejected_before_io(self, wire_kit: WireKit,
                                                      fake_server: FakeServer) -> None:
        async with self.connect(wire_kit, fake_server) as conn:
            with pytest.raises(e.InvalidRequestError, match="temperatur"):
                await conn.generate_chat(None, USER, temperatur=0.5)
            with pytest.raises(e.InvalidRequestError, match="temperature"):
                await conn.generate_chat(None, USER, temperature=99)
            with pytest.raises(e.InvalidRequestError, match="temperatur"):
                conn.generate_chat_stream(None, USER, temperatur=0.5)  # raises at the call
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
            Capability.TOOLS: lambda c: c.generate_chat(None, USER, tools=TOOLS),
            Capability.VISION: lambda c: c.generate_chat(None, image),
            Capability.JSON_MODE: lambda c: c.generate_chat(None, USER,
                                                            response_format={"type": "json_object"}),
            Capability.JSON_SCHEMA: lambda c: c.generate_chat(None, USER, response_format=schema),
        }
        async with self.connect(wire_kit, fake_server) as conn:
            missing = [cap for cap in attempts if cap not in conn.capabilities]
            if Capability.STREAMING not in conn.capabilities:
                with pytest.raises(e.UnsupportedCapabilityError):
                    conn.generate_chat_stream(None, USER)
            for cap in missing:
                with pytest.raises(e.UnsupportedCapabilityError) as info:
                    await attempts[cap](conn)
                assert info.value.provider == conn.provider
                assert info.value.fallback is True  # a chain moves on to the next provider
        assert fake_server.requests == []
        if not missing and Capability.STREAMING in conn.capabilities:
            pytest.skip(f"{conn.provider} has every capability the suite can withhold")
