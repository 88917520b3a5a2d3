"""Finding connectors: ids, aliases, provider:model, environment, describe."""

from __future__ import annotations

import pytest

import llm_connectors as lc
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.registry import connector_class, create_connector, split_spec

pytestmark = pytest.mark.anyio


async def test_get_connector_reads_env_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    conn = await lc.get_connector("openai:gpt-4.1")
    assert isinstance(conn, OpenAIConnector)
    assert (conn.default_model, conn.base_url, conn.provider) == ("gpt-4.1", "http://127.0.0.1:9/v1", "openai")
    assert conn.auth_headers() == {"authorization": "Bearer sk-env"}
    await conn.aclose()
    async with lc.get_connector("openai", api_key="sk-arg", base_url="https://example.test/v1") as conn2:
        assert conn2.auth_headers()["authorization"] == "Bearer sk-arg"
        assert conn2.base_url == "https://example.test/v1"


async def test_missing_key_names_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(lc.ConfigurationError, match="OPENAI_API_KEY"):
        await lc.get_connector("openai")


def test_unknown_provider_did_you_mean() -> None:
    with pytest.raises(lc.ConfigurationError) as info:
        connector_class("opneai")
    assert "Did you mean 'openai'?" in str(info.value) and "Registered providers:" in str(info.value)


@pytest.mark.parametrize("spec", ["", ":model", "openai:", 3])
def test_malformed_specs(spec: object) -> None:
    with pytest.raises(lc.ConfigurationError):
        split_spec(spec)  # type: ignore[arg-type]


def test_split_spec_keeps_colons_in_model() -> None:
    assert split_spec("ollama:llama3.2:1b") == ("ollama", "llama3.2:1b")
    assert split_spec("openai") == ("openai", None)


def test_register_connector_rules() -> None:
    class Mine(OpenAIConnector):
        definition = OpenAIConnector.definition.with_changes(id="mine-test", name="Mine")

    lc.register_connector("mine-test", Mine, aliases=["mine-alias"], replace=True)
    assert connector_class("mine-alias") is Mine and "mine-test" in lc.provider_ids()
    with pytest.raises(lc.ConfigurationError, match="already registered"):
        lc.register_connector("mine-test", Mine)
    with pytest.raises(lc.ConfigurationError, match="not a subclass"):
        lc.register_connector("x-test", object)  # type: ignore[arg-type]
    with pytest.raises(lc.ConfigurationError, match="without ':'"):
        lc.register_connector("a:b", Mine)
    conn = create_connector("mine-alias", api_key="k")
    assert conn.provider == "mine-test"


def test_describe_unknown() -> None:
    with pytest.raises(lc.ConfigurationError):
        lc.describe("nope-provider")
