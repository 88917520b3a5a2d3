"""OpenAI-compatible presets (connectors/presets.py): each one against the OpenAI fake with its quirks,
routing ``"groq:model"``, ``auto`` with a preset's key or a local server, and overriding a preset."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

import llm_connectors as lc
from llm_connectors import factory, registry
from llm_connectors.connectors.preset_connector import PresetConnector, preset_class
from llm_connectors.connectors.presets import MESSAGE_NAME, PRESETS, Preset
from llm_connectors.definition import Capability
from llm_connectors.testing import FakeServer
from llm_connectors.testing.conformance import ConnectorConformance
from llm_connectors.testing.kit import TEST_KEY, WireKit
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit

pytestmark = pytest.mark.anyio
ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "MISTRAL_API_KEY", "OLLAMA_HOST",
       "OLLAMA_API_KEY", "LLM_CONNECTORS_PROVIDERS", "OPENAI_BASE_URL",
       *(p.api_key_env for p in PRESETS.values() if p.api_key_env))
#: A value each rejectable option takes, so a test can send it.
VALUES: dict[str, Any] = {"logprobs": True, "top_logprobs": 2, "logit_bias": {"50256": -100},
                          "frequency_penalty": 0.5, "presence_penalty": 0.5, "stop": ["END"],
                          "parallel_tool_calls": False, "temperature": 0.3, "top_p": 0.9}
#: A model each model-scoped quirk applies to.
QUIRK_MODEL = {"deepseek": "deepseek-reasoner", "xai": "grok-4.3"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(factory, "_local_available", lambda: False)
    factory.clear_probe_cache()
    yield
    factory.clear_probe_cache()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(OpenAIFake("preset answer")) as fake:
        yield fake


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def connect(preset: Preset, server: FakeServer, **settings: Any) -> lc.BaseConnector:
    key = {} if preset.local else {"api_key": TEST_KEY}
    conn = await lc.get_connector(preset.id, base_url=server.url + "/v1", retry=False, circuit_breaker=False,
                                  **key, **settings)
    assert isinstance(conn, PresetConnector)
    return conn


def model_for(preset: Preset) -> str:
    return QUIRK_MODEL.get(preset.id) or preset.default_model or "served-model"


def test_every_fact_has_a_source_and_the_table_covers_the_brief() -> None:
    assert {"groq", "together", "deepseek", "openrouter", "fireworks", "xai", "perplexity", "cerebras", "vllm",
            "lmstudio", "llamacpp"} <= set(PRESETS)
    for preset in PRESETS.values():
        assert {"base_url", "api_key_env", "default_model"} <= set(preset.sources), preset.id
        assert not preset.lacks or "lacks" in preset.sources, preset.id
        assert all(q.source.startswith("https://") and "read 2026" in q.source for q in preset.quirks), preset.id
        assert preset.local == (preset.api_key_env is None)
        assert preset.local == preset.base_url.startswith("http://127.0.0.1:")
        definition = preset_class(preset.id).definition
        assert definition.auth.required is not preset.local and definition.auth.env_var == preset.api_key_env
        assert not (definition.capabilities & preset.lacks)
    assert set(PRESETS) <= set(lc.provider_ids())


@pytest.mark.parametrize("preset", PRESETS.values(), ids=list(PRESETS))
async def test_preset_against_the_openai_fake(preset: Preset, server: FakeServer) -> None:
    conn = await connect(preset, server)
    model = model_for(preset)
    resp = await conn.generate_chat(model, "hi", max_tokens=5)
    assert (resp.content, resp.provider) == ("preset answer", preset.id)
    sent = server.requests[-1]
    assert sent.path == "/v1/chat/completions" and sent.json()["max_tokens"] == 5
    assert sent.json()["model"] == model
    assert sent.headers.get("authorization") == (None if preset.local else f"Bearer {TEST_KEY}")
    chunks = [c.delta async for c in conn.generate_chat_stream(model, "hi")]
    assert "".join(chunks) == "preset answer"
    enforced = [q for q in preset.quirks if not q.ignored and q.option != MESSAGE_NAME and q.applies_to(model)]
    for quirk in enforced:
        seen = len(server.requests)
        with pytest.raises(lc.InvalidRequestError) as info:
            await conn.generate_chat(model, "hi", **{quirk.option: VALUES[quirk.option]})
        assert len(server.requests) == seen  # refused before any I/O
        assert preset.id in info.value.message and repr(quirk.option) in info.value.message
        assert quirk.source.split(" ")[0] in info.value.message
        await conn.generate_chat(model, "hi", drop_params=True, **{quirk.option: VALUES[quirk.option]})
        assert quirk.option not in server.requests[-1].json()
    for quirk in (q for q in preset.quirks if q.ignored and q.applies_to(model)):
        await conn.generate_chat(model, "hi", **{quirk.option: VALUES[quirk.option]})
        assert server.requests[-1].json()[quirk.option] == VALUES[quirk.option]  # documented, still sent
    if Capability.EMBEDDINGS in preset.lacks:
        with pytest.raises(lc.UnsupportedCapabilityError):
            await conn.generate_embedding("e", "text")
    else:
        assert len((await conn.generate_embedding("e", "text")).embeddings) == 1
    if Capability.TOOLS in preset.lacks:
        tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        with pytest.raises(lc.UnsupportedCapabilityError):
            await conn.generate_chat(model, "hi", tools=[tool])
    await conn.aclose()


async def test_options_a_preset_takes_are_sent(server: FakeServer) -> None:
    conn = await connect(PRESETS["together"], server)
    await conn.generate_chat(None, "hi", **{k: VALUES[k] for k in ("logprobs", "frequency_penalty", "stop")})
    body = server.requests[-1].json()
    assert (body["logprobs"], body["frequency_penalty"], body["stop"]) == (True, 0.5, ["END"])
    await conn.aclose()


async def test_model_scoped_quirks_spare_the_other_models(server: FakeServer) -> None:
    deepseek = await connect(PRESETS["deepseek"], server)
    await deepseek.generate_chat("deepseek-chat", "hi", logprobs=True)
    assert server.requests[-1].json()["logprobs"] is True
    xai = await connect(PRESETS["xai"], server)
    await xai.generate_chat("grok-4.20-non-reasoning", "hi", stop=["END"])
    assert server.requests[-1].json()["stop"] == ["END"]
    with pytest.raises(lc.InvalidRequestError, match=re.escape("xai model 'grok-4.20-reasoning' does not take 'stop'")):
        await xai.generate_chat("grok-4.20-reasoning", "hi", stop=["END"])
    await deepseek.aclose()
    await xai.aclose()


async def test_groq_refuses_message_names_or_drops_them(server: FakeServer) -> None:
    conn = await connect(PRESETS["groq"], server)
    messages = [{"role": "user", "content": "hi", "name": "ann"}]
    seen = len(server.requests)
    with pytest.raises(lc.InvalidRequestError, match=r"groq does not take a name on messages \(messages\[0\]\.name\)"):
        await conn.generate_chat(None, messages)
    assert len(server.requests) == seen
    await conn.generate_chat(None, messages, drop_params=True)
    assert "name" not in server.requests[-1].json()["messages"][0]
    await conn.aclose()
    dropping = await connect(PRESETS["groq"], server, drop_params=True)  # on the connector too
    await dropping.generate_chat(None, messages)
    assert "name" not in server.requests[-1].json()["messages"][0]
    await dropping.aclose()


async def test_routing_preset_and_model(monkeypatch: pytest.MonkeyPatch, server: FakeServer) -> None:
    monkeypatch.setenv("GROQ_API_KEY", TEST_KEY)
    conn = await lc.get_connector("groq:llama-3.1-8b-instant", base_url=server.url + "/v1")
    assert (conn.provider, conn.default_model) == ("groq", "llama-3.1-8b-instant")
    await conn.generate_chat(None, "hi")
    assert server.requests[-1].json()["model"] == "llama-3.1-8b-instant"
    await conn.aclose()
    with pytest.raises(lc.ConfigurationError, match="GROQ_API_KEY"):
        monkeypatch.delenv("GROQ_API_KEY")
        await lc.get_connector("groq")


async def test_a_user_catalog_entry_keyed_by_the_preset_adds_rules(server: FakeServer) -> None:
    lc.register_model("groq", "preset-test-model",
                      rules=[{"option": "seed", "rejected": True, "why": "test rule"}])
    conn = await connect(PRESETS["groq"], server)
    with pytest.raises(lc.InvalidRequestError, match="does not take 'seed': test rule"):
        await conn.generate_chat("preset-test-model", "hi", seed=1)
    with pytest.raises(lc.InvalidRequestError, match="'logprobs'"):  # the preset's own rules still apply
        await conn.generate_chat("preset-test-model", "hi", logprobs=True)
    await conn.aclose()


async def test_auto_takes_a_preset_whose_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("OLLAMA_HOST", closed)
    locals_closed = {p.id: {"base_url": closed + "/v1"} for p in PRESETS.values() if p.local}
    monkeypatch.setenv("GROQ_API_KEY", TEST_KEY)
    monkeypatch.setenv("CEREBRAS_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    conn = await lc.get_connector("auto", providers=locals_closed)
    assert isinstance(conn, lc.FallbackConnector)
    assert [m.provider for m in conn.members] == ["openai", "groq", "cerebras"]  # built-ins first, table order
    await conn.aclose()
    monkeypatch.setenv("LLM_CONNECTORS_PROVIDERS", "cerebras,groq")
    conn = await lc.get_connector("auto")
    assert [m.provider for m in conn.members] == ["cerebras", "groq"]
    await conn.aclose()


async def test_auto_counts_a_local_server_only_when_a_bounded_cached_probe_finds_it(
        monkeypatch: pytest.MonkeyPatch, server: FakeServer) -> None:
    closed = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("OLLAMA_HOST", closed)
    elsewhere = {"lmstudio": {"base_url": closed + "/v1"}, "llamacpp": {"base_url": closed + "/v1"}}
    with pytest.raises(lc.NoProviderAvailableError) as info:
        await lc.get_connector("auto", providers={**elsewhere, "vllm": {"base_url": closed + "/v1"}})
    checked = dict(entry.split(": ", 1) for entry in info.value.checked)
    assert all(checked[p].startswith("no answer at") for p in ("ollama", "vllm", "lmstudio", "llamacpp"))
    assert checked["groq"] == "GROQ_API_KEY is not set"
    conn = await lc.get_connector("auto", providers={**elsewhere, "vllm": {"base_url": server.url + "/v1"}})
    assert [m.provider for m in conn.members] == ["vllm"]
    await conn.aclose()
    probes = len(server.requests)
    await (await lc.get_connector("auto", providers={**elsewhere, "vllm": {"base_url": server.url + "/v1"}})).aclose()
    assert len(server.requests) == probes  # the probe result was cached


async def test_register_openai_compatible_overrides_a_preset(monkeypatch: pytest.MonkeyPatch,
                                                            server: FakeServer) -> None:
    monkeypatch.setitem(registry._REGISTERED, "groq", lc.registry.connector_class("groq"))
    with pytest.raises(lc.ConfigurationError, match="replace=True"):
        lc.register_openai_compatible("groq", base_url=server.url + "/v1", api_key_env="MY_GROQ_KEY")
    cls = lc.register_openai_compatible("groq", base_url=server.url + "/v1", api_key_env="MY_GROQ_KEY",
                                        default_model="mine", replace=True)
    assert lc.registry.connector_class("groq") is cls and "preset" not in lc.describe("groq")
    monkeypatch.setenv("MY_GROQ_KEY", TEST_KEY)
    conn = await lc.get_connector("groq", retry=False)
    await conn.generate_chat(None, "hi")
    assert server.requests[-1].json()["model"] == "mine"
    await conn.aclose()


def test_describe_shows_the_preset_facts() -> None:
    data = lc.describe("cerebras")
    assert data["auth"]["env_var"] == "CEREBRAS_API_KEY" and "embeddings" not in data["capabilities"]
    assert {q["option"] for q in data["preset"]["quirks"]} >= {"frequency_penalty", "logit_bias"}
    assert lc.describe("vllm")["auth"] == {"kind": "bearer", "header": "authorization", "env_var": None,
                                           "required": False}


class PresetKit(OpenAIWireKit):
    """The OpenAI wire kit, building a preset's connector (keyless for local servers; a model named
    where the preset has no default)."""

    preset: ClassVar[Preset]

    def make_connector(self, base_url: str, **kwargs: Any) -> lc.BaseConnector:
        if not self.preset.local:
            kwargs.setdefault("api_key", TEST_KEY)
        if self.preset.default_model is None:
            kwargs.setdefault("default_model", self.model)
        kwargs.setdefault("default_embedding_model", "fake-embed")  # no preset names one
        kwargs.setdefault("retry", False)
        kwargs.setdefault("circuit_breaker", False)
        return preset_class(self.preset.id)(base_url=base_url + self.base_path, **kwargs)


#: The presets whose quirks differ in kind (refused fields and message names, no tools, no embeddings,
#: a local server) run the suite in the PR tier; the others, which add no new shape, nightly.
CONFORMANCE_EVERY_PR = ("groq", "perplexity", "cerebras", "llamacpp")


class TestPresetConformance(ConnectorConformance):
    """The shipped conformance suite over every preset, on the OpenAI wire it speaks."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio, pytest.mark.both_engines]

    @pytest.fixture(params=[pytest.param(p, marks=() if p in CONFORMANCE_EVERY_PR else pytest.mark.nightly)
                            for p in PRESETS])
    def wire_kit(self, request: pytest.FixtureRequest) -> WireKit:
        kit = type(f"{request.param}Kit", (PresetKit,), {"provider_id": request.param,
                                                         "preset": PRESETS[request.param]})
        return kit()


def test_the_docs_page_carries_the_table() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "providers" / "presets.md").read_text(encoding="utf-8")
    for preset in PRESETS.values():
        assert f"`{preset.id}`" in text and preset.base_url in text, preset.id
        for quirk in preset.quirks:
            assert f"`{quirk.option}`" in text and quirk.source in text, (preset.id, quirk.option)
        for note in preset.notes:
            assert note in text, (preset.id, note)
