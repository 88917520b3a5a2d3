"""The conformance suite over every built-in connector's wire kit, and proof that it can fail."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from llm_connectors import errors as e
from llm_connectors.base import BaseConnector
from llm_connectors.connectors.sample import MegaChatStreamDecoder, SampleConnector
from llm_connectors.ids import BUILTINS
from llm_connectors.requests import ChatRequest, HTTPRequest
from llm_connectors.stream import StreamDecoder
from llm_connectors.testing import FakeServer
from llm_connectors.testing.conformance import (
    BUILTIN_KITS,
    STREAM_SCENARIOS,
    ConnectorConformance,
    builtin_kit_params,
    discover_kits,
    kit_id,
    load_kit,
    load_kit_or_skip,
)
from llm_connectors.testing.kit import TEST_KEY, ScriptedHandler, WireKit
from llm_connectors.testing.sample_wire import SampleWireKit
from llm_connectors.types import ChatChunk

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]


# Failures the suite finds in connectors this module does not own, as (kit id, test name, param
# or None) -> reason: strict xfails, so a fix turns each into an XPASS failure asking for its
# removal. (Claude's 408/422 mapping, an earlier entry, was fixed in claude_wire/claude.py.)
KNOWN_FAILURES: dict[tuple[str, str, Any], str] = {
    ("openai_responses", "test_request_shape", engine):
        "the suite sends stop=[...], which OpenAI's Responses API has no field for: refused before I/O"
    for engine in ("httpx", "aiohttp")
}


class TestBuiltinConformance(ConnectorConformance):
    """Every built-in kit; a kit whose module does not exist yet is skipped, saying so."""

    @pytest.fixture(params=builtin_kit_params())
    def wire_kit(self, request: pytest.FixtureRequest) -> WireKit:
        kit = load_kit_or_skip(request.param)
        params = [v for k, v in request.node.callspec.params.items()
                  if k not in ("wire_kit", "anyio_backend") and isinstance(v, (str, int))]
        for param in params or [None]:
            reason = KNOWN_FAILURES.get((kit_id(request.param), request.node.originalname, param))
            if reason:
                request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
        return kit


class TestSubclassWithKit(ConnectorConformance):
    """The plugin-author form: a subclass that only sets ``kit``."""

    kit = SampleWireKit()


# -- the kit list ------------------------------------------------------------------------------

#: Built-in providers with no wire to script: the local model runs in process (tests/integration/test_local.py).
NO_WIRE = {"local"}
#: Kits of a built-in's second API (kit id -> provider id): OpenAI's Responses API.
DIALECTS = {"openai_responses": "openai"}


def test_builtin_kits_cover_builtin_providers() -> None:
    ids = [p.id for p in builtin_kit_params()]
    # one kit per built-in, none twice, in module order, plus the kits of a second API
    # (presets speak the OpenAI wire with that kit; test_presets.py runs the suite over them)
    presets = {pid for pid, path in BUILTINS.items() if path.startswith("llm_connectors.connectors.preset_connector:")}
    assert sorted(ids) == sorted((set(BUILTINS) - NO_WIRE - presets) | set(DIALECTS)) and len(ids) == len(set(ids))
    for path in BUILTIN_KITS:  # ... and each speaks for the connector registered under its id
        kit = load_kit(path)
        provider = DIALECTS.get(kit_id(path), kit_id(path))
        assert (kit.provider_id, kit.connector_path) == (provider, BUILTINS[provider])


def test_discovery_finds_every_kit_a_wire_module_defines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "acme_testing"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "beta_wire.py").write_text(textwrap.dedent('''
        import abc
        from llm_connectors.testing.sample_wire import SampleWireKit  # imported: counted in its own module only

        class BetaWireKit(SampleWireKit):
            provider_id = "beta"

        class _PrivateKit(SampleWireKit):
            pass

        class AbstractKit(SampleWireKit):
            @abc.abstractmethod
            def extra(self) -> None: ...

        class BetaStreamingKit(BetaWireKit):
            pass
    '''))
    (package / "alpha_wire.py").write_text("from llm_connectors.testing.sample_wire import SampleWireKit\n"
                                           "class AlphaKit(SampleWireKit):\n    provider_id = 'alpha'\n")
    (package / "helpers.py").write_text("from llm_connectors.testing.sample_wire import SampleWireKit\n"
                                        "class NotAWireModuleKit(SampleWireKit):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert discover_kits("acme_testing") == ("acme_testing.alpha_wire:AlphaKit", "acme_testing.beta_wire:BetaWireKit",
                                             "acme_testing.beta_wire:BetaStreamingKit")


def test_load_kit_or_skip_skips_only_missing_modules() -> None:
    with pytest.raises(pytest.skip.Exception, match="not importable yet"):
        load_kit_or_skip("llm_connectors.testing.nonexistent_wire:NopeKit")
    with pytest.raises(AttributeError):  # the module exists: a typo must fail, not skip
        load_kit_or_skip("llm_connectors.testing.sample_wire:NopeKit")
    with pytest.raises(TypeError):
        load_kit("llm_connectors.testing.kit:ScriptedHandler")


# -- the suite catches broken connectors -------------------------------------------------------
# Each broken connector differs from the sample in one way; running one suite test against it
# must fail. Without these, a suite that asserts nothing would pass everything.

class _NoUsageDecoder(MegaChatStreamDecoder):
    def chunk(self, *args: Any, **kwargs: Any) -> ChatChunk | None:
        kwargs.pop("usage", None)
        return super().chunk(*args, **kwargs)


class _DropsStreamUsage(SampleConnector):
    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return _NoUsageDecoder(self, request)


class _SwallowsErrors(SampleConnector):
    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        decoder = MegaChatStreamDecoder(self, request)
        feed = decoder.feed

        def lenient(event: Any) -> ChatChunk | None:
            return None if event.event == "error" else feed(event)

        decoder.feed = lenient  # type: ignore[method-assign]
        return decoder


class _KeyInURL(SampleConnector):
    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        built = super().build_chat_request(request)
        key = self._credentials.primary
        built.params = {"key": key.reveal() if key else ""}
        return built


class _QuotaFor429(SampleConnector):
    error_codes: ClassVar[Mapping[str, type[e.LLMConnectorError]]] = {"rate_limited": e.QuotaExceededError}


class _BrokenKit(SampleWireKit):
    def __init__(self, cls: type[SampleConnector]) -> None:
        self.cls = cls

    def make_connector(self, base_url: str, **kwargs: Any) -> BaseConnector:
        kwargs.setdefault("api_key", TEST_KEY)
        return self.cls(base_url=base_url, **kwargs)


@pytest.mark.parametrize(("broken", "test_name", "args"), [
    (_DropsStreamUsage, "test_stream_parity", (STREAM_SCENARIOS[0],)),
    (_SwallowsErrors, "test_inband_error_after_delta", ()),
    (_KeyInURL, "test_request_shape", ()),
    (_QuotaFor429, "test_http_error_mapping", (429,)),
], ids=["stream-usage", "inband-error", "key-in-url", "429-class"])
async def test_suite_fails_on_broken_connector(broken: type[SampleConnector], test_name: str,
                                               args: tuple[Any, ...]) -> None:
    suite = ConnectorConformance()
    kit = _BrokenKit(broken)
    for candidate, expect_failure in ((SampleWireKit(), False), (kit, True)):
        handler = ScriptedHandler()
        with FakeServer(handler) as server:
            test = getattr(suite, test_name)
            if expect_failure:
                with pytest.raises((AssertionError, e.LLMConnectorError)):
                    await test(candidate, server, handler, *args)
            else:
                await test(candidate, server, handler, *args)  # the healthy sample passes
