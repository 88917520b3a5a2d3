"""Runs the provider and resilience suites on both HTTP engines (httpx and aiohttp).

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["transport_plugin"]``.

* Every test runs with ``LLM_CONNECTORS_TRANSPORT=httpx`` unless it is an aiohttp variant, so
  results never depend on whether the optional ``fast`` extra happens to be installed.
* The async tests marked ``both_engines`` (a module's ``pytestmark``: the suites that talk to real
  loopback servers through a connector's pooled client) also run on aiohttp, under asyncio only
  (aiohttp cannot run on trio); their ids gain ``-aiohttp``.
* In an aiohttp variant a test that activates respx is skipped: respx mocks httpx's own transport,
  so it would not exercise the aiohttp engine at all (it runs in the httpx variant).
* ``--transport=httpx`` runs everything on httpx only; ``--transport=aiohttp`` only the aiohttp
  variants (plus the tests that are not async); the default, ``both``, runs both when aiohttp is
  installed.
"""

from __future__ import annotations

from typing import Any

import pytest

from llm_connectors.http.engine_choice import ENV_VAR, aiohttp_installed

#: The marker of the tests that also run on aiohttp (registered in pyproject.toml).
BOTH_ENGINES = "both_engines"
_SKIP_RESPX = "respx mocks httpx's own transport; this test runs in its httpx variant"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--transport", choices=("httpx", "aiohttp", "both"), default="both",
                     help="HTTP engine(s) for the provider and resilience suites (default: both)")


def _engines(config: pytest.Config) -> list[str]:
    choice = config.getoption("--transport")
    if choice == "httpx" or not aiohttp_installed():
        return ["httpx"]
    return ["aiohttp"] if choice == "aiohttp" else ["httpx", "aiohttp"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(BOTH_ENGINES) is None or "anyio_backend" not in metafunc.fixturenames:
        return
    engines = _engines(metafunc.config)
    if engines != ["httpx"]:
        metafunc.parametrize("llm_transport", engines, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """aiohttp needs asyncio: drop the (trio, aiohttp) combinations; honour --transport=aiohttp."""
    only_aiohttp = config.getoption("--transport") == "aiohttp"
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
        engine = params.get("llm_transport")
        on_trio = engine == "aiohttp" and params.get("anyio_backend", "asyncio") != "asyncio"
        if on_trio or (only_aiohttp and engine == "httpx"):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(autouse=True)
def llm_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine connectors of this test use when they are not given one: ``httpx`` or ``aiohttp``."""
    engine = str(getattr(request, "param", "httpx"))
    monkeypatch.setenv(ENV_VAR, engine)
    if engine == "aiohttp":
        try:
            import respx
        except ImportError:  # pragma: no cover - respx is a dev dependency
            pass
        else:
            def refuse(*args: Any, **kwargs: Any) -> None:
                pytest.skip(_SKIP_RESPX)

            monkeypatch.setattr(respx.MockRouter, "start", refuse)
    return engine
