"""The model catalog at work on real connectors and loopback servers: per-model option rules
before any I/O (or dropped with ``drop_params``), retired and deprecated models, a chain moving
past a member whose model refuses an option, ``model_info`` and ``list_models`` merged with the
catalog, and the neutral forms the base adapts (``developer`` turns, documents)."""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors import catalog
from llm_connectors.testing import FakeServer
from llm_connectors.testing.claude_wire import ClaudeFake
from llm_connectors.testing.ollama_wire import OllamaFake
from llm_connectors.testing.openai_wire import OpenAIFake

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def openai() -> Iterator[tuple[OpenAIFake, FakeServer]]:
    fake = OpenAIFake(models=("gpt-5.5", "my-finetune"))
    with FakeServer(fake) as server:
        yield fake, server


def sent(server: FakeServer) -> list[dict[str, Any]]:
    return [r.json() for r in server.requests if r.method == "POST"]


async def test_an_option_the_model_refuses_fails_before_io(openai: tuple[OpenAIFake, FakeServer]) -> None:
    _, server = openai
    async with build_connector("openai", server.url) as conn:
        with pytest.raises(lc.InvalidRequestError) as caught:
            await conn.generate_chat("gpt-6-sol", USER, temperature=0.2)
    assert "gpt-6-sol" in str(caught.value) and "'temperature'" in str(caught.value)
    assert "reasoning_effort='none'" in str(caught.value) and caught.value.code == "model_rule"
    assert server.requests == []


async def test_the_rule_is_lifted_by_the_option_it_names(openai: tuple[OpenAIFake, FakeServer]) -> None:
    _, server = openai
    async with build_connector("openai", server.url) as conn:
        await conn.generate_chat("gpt-6-sol", USER, temperature=0.2, reasoning_effort="none")
    (body,) = sent(server)
    assert body["temperature"] == 0.2 and body["reasoning_effort"] == "none"


@pytest.mark.parametrize("where", ["call", "connector"])
async def test_drop_params_drops_what_the_model_refuses(openai: tuple[OpenAIFake, FakeServer], where: str) -> None:
    _, server = openai
    settings = {"drop_params": True} if where == "connector" else {}
    options = {"drop_params": True} if where == "call" else {}
    async with build_connector("openai", server.url, **settings) as conn:
        resp = await conn.generate_chat("gpt-6-sol", USER, temperature=0.2, max_tokens=20, **options)
        await conn.generate_chat("gpt-5.5", USER, temperature=0.2, **options)  # a model that takes it
    assert resp.content
    first, second = sent(server)
    assert "temperature" not in first and first["max_completion_tokens"] == 20
    assert second["temperature"] == 0.2
    assert "drop_params" not in first


async def test_drop_params_false_on_the_call_overrides_the_connector(openai: tuple[OpenAIFake, FakeServer]) -> None:
    _, server = openai
    async with build_connector("openai", server.url, drop_params=True) as conn:
        with pytest.raises(lc.InvalidRequestError):
            await conn.generate_chat("gpt-6-sol", USER, temperature=0.2, drop_params=False)
        with pytest.raises(lc.InvalidRequestError, match="drop_params"):
            await conn.generate_chat("gpt-6-sol", USER, drop_params="yes")
    with pytest.raises(lc.ConfigurationError, match="drop_params"):
        build_connector("openai", server.url, drop_params=1)
    assert server.requests == []


async def test_unknown_models_pass_with_the_generic_rules(openai: tuple[OpenAIFake, FakeServer]) -> None:
    _, server = openai
    async with build_connector("openai", server.url) as conn:
        await conn.generate_chat("my-finetune", USER, temperature=1.5)
        with pytest.raises(lc.InvalidRequestError, match="temperature"):
            await conn.generate_chat("my-finetune", USER, temperature=9)  # the provider's range still holds
    assert len(sent(server)) == 1


async def test_a_retired_model_fails_before_io_naming_the_successor(
        openai: tuple[OpenAIFake, FakeServer], monkeypatch: pytest.MonkeyPatch) -> None:
    _, server = openai
    monkeypatch.setattr(catalog, "today", lambda: datetime.date(2026, 12, 11))
    async with build_connector("openai", server.url) as conn:
        with pytest.raises(lc.NotFoundError) as caught:
            await conn.generate_chat("gpt-5-mini", USER)
        with pytest.raises(lc.NotFoundError):
            await conn.generate_chat("gpt-5-mini-2025-08-07", USER)  # the dated form too
    successor = catalog.entry("openai", "gpt-5-mini").successor  # type: ignore[union-attr]
    assert caught.value.code == "model_retired" and "2026-12-11" in str(caught.value)
    if successor:
        assert repr(successor) in str(caught.value)
    assert server.requests == []


async def test_a_deprecated_model_warns_once(openai: tuple[OpenAIFake, FakeServer], anyio_backend: str) -> None:
    _, server = openai
    model = f"gpt-old-{anyio_backend}"  # once per process: each backend's run needs its own model
    lc.register_model("openai", model, deprecated=True, retires_on="2030-01-01", successor="gpt-5.5")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        async with build_connector("openai", server.url) as conn:
            for _ in range(3):
                await conn.generate_chat(model, USER)
    deprecations = [w for w in seen if issubclass(w.category, lc.ModelDeprecationWarning)]
    assert len(deprecations) == 1
    assert "2030-01-01" in str(deprecations[0].message) and "'gpt-5.5'" in str(deprecations[0].message)
    assert len(sent(server)) == 3


async def test_a_chain_moves_past_a_member_whose_model_refuses_the_option(
        openai: tuple[OpenAIFake, FakeServer]) -> None:
    _, openai_server = openai
    with FakeServer(ClaudeFake()) as claude_server:
        claude = build_connector("claude", claude_server.url, default_model="claude-sonnet-5-5")
        chain = lc.FallbackConnector([claude, build_connector("openai", openai_server.url)])
        async with chain:
            resp = await chain.generate_chat(None, USER, temperature=0.7)
            assert resp.provider == "openai"
            assert claude_server.requests == []
            answered = await chain.generate_chat(None, USER, temperature=0.7, drop_params=True)
            assert answered.provider == "claude"
        (body,) = [r.json() for r in claude_server.requests]
        assert "temperature" not in body


async def test_model_info_and_list_models_come_with_the_catalog(openai: tuple[OpenAIFake, FakeServer]) -> None:
    _, server = openai
    async with build_connector("openai", server.url, default_model="gpt-5.5") as conn:
        info = conn.model_info()
        assert info.id == "gpt-5.5" and info.price is not None and info.source
        assert conn.model_info("openai:gpt-6-sol").rules
        bare = conn.model_info("my-finetune")
        assert (bare.id, bare.price, bare.rules) == ("my-finetune", None, ())
        listed = {m.id: m for m in await conn.list_models()}
    assert listed["gpt-5.5"].price == info.price
    assert listed["my-finetune"].price is None


def test_the_sync_facade_has_model_info() -> None:
    from llm_connectors.sync import SyncConnector

    with SyncConnector(build_connector("openai")) as sync:
        assert sync.model_info("gpt-5.5") == catalog.entry("openai", "gpt-5.5")


async def test_developer_turns_go_as_system_where_the_provider_has_no_such_role() -> None:
    fake = OllamaFake()
    with FakeServer(fake) as server:
        async with build_connector("ollama", server.url) as conn:
            await conn.generate_chat("llama3.2", [{"role": "developer", "content": "Be brief."}, *USER])
    (body,) = sent(server)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


async def test_documents_are_refused_before_io_where_the_provider_has_none() -> None:
    pdf = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK", "filename": "a.pdf"}}
    with FakeServer(OllamaFake()) as server:
        async with build_connector("ollama", server.url) as conn:
            with pytest.raises(lc.UnsupportedCapabilityError, match="document"):
                await conn.generate_chat("llama3.2", [{"role": "user", "content": ["Summarise", pdf]}])
    assert server.requests == []


async def test_count_tokens_is_a_labelled_estimate_where_the_provider_cannot_count(
        openai: tuple[OpenAIFake, FakeServer]) -> None:
    _, server = openai
    async with build_connector("openai", server.url) as conn:
        count = await conn.count_tokens("gpt-5.5", [{"role": "user", "content": "x" * 384}])
        with pytest.raises(lc.InvalidRequestError):
            await conn.count_tokens("gpt-6-sol", USER, temperature=0.3)  # validated like the call
    assert count == lc.TokenCount(input_tokens=101, exact=False, model="gpt-5.5")
    assert server.requests == []


async def test_auto_moves_past_claude_for_temperature_and_drop_params_lets_claude_answer(
        monkeypatch: pytest.MonkeyPatch, openai: tuple[OpenAIFake, FakeServer]) -> None:
    """The issue's "done" case: get_connector('auto') with Claude first and temperature=0.7."""
    _, openai_server = openai
    with FakeServer(ClaudeFake("from claude")) as claude_server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-local")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", claude_server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
        monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
        monkeypatch.setenv("LLM_CONNECTORS_PROVIDERS", "claude,openai")
        async with lc.get_connector("auto") as conn:
            moved = await conn.generate_chat(None, "hi", temperature=0.7)
        assert moved.provider == "openai" and claude_server.requests == []
        async with lc.get_connector("auto", drop_params=True) as conn:
            kept = await conn.generate_chat(None, "hi", temperature=0.7)
        assert (kept.provider, kept.content) == ("claude", "from claude")
        assert "temperature" not in claude_server.requests[0].json()


async def test_rules_registered_later_apply_to_a_connector_already_in_use(
        openai: tuple[OpenAIFake, FakeServer], anyio_backend: str) -> None:
    """Rules are kept per model for speed, but a new catalog entry replaces them."""
    _, server = openai
    model = f"ft-later-{anyio_backend}"
    async with build_connector("openai", server.url) as conn:
        await conn.generate_chat(model, USER, temperature=0.5)
        lc.register_model("openai", model, rules=[{"option": "temperature", "rejected": True, "why": "tuned"}])
        with pytest.raises(lc.InvalidRequestError, match="tuned"):
            await conn.generate_chat(model, USER, temperature=0.5)
    assert len(sent(server)) == 1
