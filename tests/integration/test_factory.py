"""get_connector in every form, "auto", plugins, and the errors bad input gets."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import llm_connectors as lc
from llm_connectors import factory, ids, registry
from llm_connectors.connectors.presets import PRESETS
from llm_connectors.testing import FakeServer
from llm_connectors.testing.openai_wire import OpenAIFake

pytestmark = pytest.mark.anyio
KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "MISTRAL_API_KEY", "OLLAMA_HOST",
            "OLLAMA_API_KEY", "LLM_CONNECTORS_PROVIDERS", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY",
            *(p.api_key_env for p in PRESETS.values() if p.api_key_env))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    # "auto" appends the in-process model when its extra is installed; these tests are about the
    # remote providers (test_local.py covers the local one).
    monkeypatch.setattr(factory, "_local_available", lambda: False)
    factory.clear_probe_cache()
    yield
    factory.clear_probe_cache()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


async def test_single_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    handle = lc.get_connector("openai")
    assert isinstance(handle, lc.ConnectorHandle)
    async with handle as conn:
        assert isinstance(conn, lc.BaseConnector) and conn.provider == "openai"
    assert conn._sender._closed  # the context manager closed it
    conn = await lc.get_connector("openai:gpt-4.1", timeout=12)
    assert conn.default_model == "gpt-4.1" and conn.timeouts.total == 12
    await conn.aclose()
    conn = await lc.get_connector({"primary": "openai", "model": "o3"})
    assert conn.default_model == "o3"
    await conn.aclose()
    conn = await lc.get_connector(primary="openai", providers={"openai": {"api_key": "sk-override"}})
    assert isinstance(conn, lc.BaseConnector) and conn.auth_headers()["authorization"] == "Bearer sk-override"
    await conn.aclose()


async def test_chain_forms_and_member_dicts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    lc.register_openai_compatible("fac-local", base_url="http://127.0.0.1:9/v1", replace=True)
    conn = await lc.get_connector({"primary": "openai", "fallbacks": [
        "fac-local:small", {"provider": "fac-local", "model": "big", "base_url": "http://127.0.0.1:10/v1"}],
        "timeout": 20})
    assert isinstance(conn, lc.FallbackConnector)
    assert [(m.provider, m.default_model, m.base_url) for m in conn.members] == [
        ("openai", "gpt-5.4-mini", "https://api.openai.com/v1"), ("fac-local", "small", "http://127.0.0.1:9/v1"),
        ("fac-local", "big", "http://127.0.0.1:10/v1")]
    assert all(m.timeouts.total == 20 for m in conn.members)
    await conn.aclose()
    conn2 = await lc.get_connector("openai", fallbacks=["fac-local"])
    assert isinstance(conn2, lc.FallbackConnector)
    await conn2.aclose()


@pytest.mark.parametrize(("call", "fragment"), [
    (lambda: lc.get_connector("opnai"), "Did you mean 'openai'?"),
    (lambda: lc.get_connector("opnai"), "Registered providers: "),
    (lambda: lc.get_connector("openai:"), "malformed provider spec"),
    (lambda: lc.get_connector(":gpt-4"), "malformed provider spec"),
    (lambda: lc.get_connector(primary="openai", fallbacks=[3]), "is not a provider"),
    (lambda: lc.get_connector(primary="openai", fallbacks=[{"model": "x"}]), "is not a provider"),
    (lambda: lc.get_connector(primary="openai", fallbacks="mistral"), "must be a list"),
    (lambda: lc.get_connector(primary="openai", fallbacks=["mistal"]), "Did you mean 'mistral'?"),
    (lambda: lc.get_connector(primary="openai", fallbacks=["ollama"], api_key="k"), "belongs to one provider"),
    (lambda: lc.get_connector(primary="openai", fallbacks=["ollama"], retyr=1), "Did you mean 'retry'?"),
    (lambda: lc.get_connector(), "no provider given"),
    (lambda: lc.get_connector(42), "got int"),  # type: ignore[arg-type]
    (lambda: lc.get_connector("openai", primary="claude"), "not both"),
    (lambda: lc.get_connector({"primary": "openai", "retry": 1, "retry_policy": 2}), "mean the same"),
    (lambda: lc.get_connector("openai"), "OPENAI_API_KEY"),
])
async def test_bad_input_errors(call: object, fragment: str) -> None:
    with pytest.raises(lc.ConfigurationError) as info:
        await call()  # type: ignore[operator]
    assert fragment in str(info.value)


async def test_auto_orders_usable_providers(monkeypatch: pytest.MonkeyPatch, silent_port: int) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-o")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-a")
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{silent_port}")
    conn = await lc.get_connector("auto")
    assert isinstance(conn, lc.FallbackConnector)
    assert [m.provider for m in conn.members] == ["claude", "openai"]
    await conn.aclose()
    monkeypatch.setenv("LLM_CONNECTORS_PROVIDERS", "openai, claude")
    conn = await lc.get_connector("auto")
    assert [m.provider for m in conn.members] == ["openai", "claude"]
    await conn.aclose()


async def test_auto_probe_finds_ollama_and_is_bounded_and_cached(monkeypatch: pytest.MonkeyPatch,
                                                                silent_port: int) -> None:
    from llm_connectors.testing.ollama_wire import OllamaFake

    with FakeServer(OllamaFake()) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        conn = await lc.get_connector("auto")
        assert [m.provider for m in conn.members] == ["ollama"]
        await conn.aclose()
        seen = len(server.requests)
        await (await lc.get_connector("auto")).aclose()
        assert len(server.requests) == seen  # the probe result was cached
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{silent_port}")
    started = anyio.current_time()
    with pytest.raises(lc.NoProviderAvailableError) as info:
        await lc.get_connector("auto")
    assert anyio.current_time() - started < 1.0  # well under a second even against a hung server
    text = str(info.value)
    for fragment in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "MISTRAL_API_KEY", f"127.0.0.1:{silent_port}"):
        assert fragment in text
    assert [c.split(":")[0] for c in info.value.checked][:4] == ["claude", "openai", "mistral", "ollama"]


async def test_auto_rejects_unknown_ids_in_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_CONNECTORS_PROVIDERS", "openai,clade")
    with pytest.raises(lc.ConfigurationError, match="Did you mean 'claude'"):
        await lc.get_connector("auto")


async def test_auto_against_local_servers_serves_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer(OpenAIFake("auto works")) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("LLM_CONNECTORS_PROVIDERS", "openai")
        async with lc.get_connector("auto") as conn:
            resp = await conn.generate_chat(None, "hi")
    assert (resp.content, resp.provider) == ("auto works", "openai")


PLUGIN = '''
from llm_connectors.connectors.openai_compat import OpenAICompatibleConnector

class TinyConnector(OpenAICompatibleConnector):
    definition = OpenAICompatibleConnector.definition.with_changes(
        id="tinyplug", name="Tiny plugin", base_url="http://127.0.0.1:1/v1")
'''


def make_plugin(root: Path) -> Path:
    """A tiny installed distribution: a module plus a dist-info declaring the entry point."""
    (root / "tinyplug_pkg.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "tinyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[llm_connectors.providers]\ntinyplug = tinyplug_pkg:TinyConnector\n")
    (info / "RECORD").write_text("")
    return root


def test_plugin_discovered_by_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin(tmp_path)
    code = ("import anyio, llm_connectors as lc\n"
            "async def main():\n"
            "    conn = await lc.get_connector('tinyplug:m1')\n"
            "    print(type(conn).__name__, conn.provider, conn.default_model, 'tinyplug' in lc.provider_ids())\n"
            "    await conn.aclose()\n"
            "anyio.run(main)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["TinyConnector", "tinyplug", "m1", "True"]


def test_plugin_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(make_plugin(tmp_path)))
    monkeypatch.setattr(ids, "_plugin_names", None)
    cls = registry.connector_class("tinyplug")
    assert cls.__name__ == "TinyConnector" and lc.describe("tinyplug")["name"] == "Tiny plugin"
    registry._REGISTERED.pop("tinyplug", None)
    ids.REGISTERED_IDS.discard("tinyplug")
