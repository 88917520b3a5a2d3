"""The public surface: sorted __all__, lazy imports, no provider or optional module loaded eagerly."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import llm_connectors as lc


def test_all_is_sorted_and_resolvable() -> None:
    assert lc.__all__ == sorted(lc.__all__)
    for name in lc.__all__:
        assert getattr(lc, name) is not None, name
    assert set(dir(lc)) == set(lc.__all__)


def test_type_checkers_see_exactly_the_lazy_names() -> None:
    # __all__ is built from _LAZY; the TYPE_CHECKING block must re-export the same names from the
    # same modules, or a type checker and the running program would disagree.
    tree = ast.parse(Path(lc.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {alias.name: "." * node.level + (node.module or alias.name)
            for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert seen.pop("errors") == ".errors" and "errors" not in lc._LAZY
    assert seen == lc._LAZY


def test_contract_names_exported() -> None:
    for name in ["Message", "ChatResponse", "ChatChunk", "ChatStream", "Usage", "ToolCall", "EmbeddingResponse",
                 "ModelInfo", "BaseConnector", "get_connector", "register_connector", "register_openai_compatible",
                 "describe", "errors", "ServiceDefinition"]:
        assert name in lc.__all__, name


def test_import_is_lazy() -> None:
    code = (
        "import sys, llm_connectors as lc\n"
        "mods = [m for m in sys.modules if m.startswith(('llm_connectors.', 'httpx', 'anyio', 'pybreaker',"
        " 'tenacity', 'cachetools', 'redis', 'opentelemetry', 'llama_cpp', 'aiohttp'))]\n"
        "print(','.join(sorted(mods)))\n"
        "lc.Message; lc.errors\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('llm_connectors.connectors'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    eager, after = out.splitlines()
    assert eager == "llm_connectors._version"
    assert after == ""  # types and errors load no provider module


def test_a_connector_loads_no_optional_or_resilience_library_until_used() -> None:
    """Importing a provider and building a connector imports neither the optional integrations
    (redis, OpenTelemetry, aiohttp, a local runtime) nor the resilience libraries, which load
    with the first breaker, retry or cache (pybreaker alone drags in redis when it is installed)."""
    code = (
        "import sys\n"
        "from llm_connectors.connectors.openai import OpenAIConnector\n"
        "conn = OpenAIConnector(api_key='sk-test', transport='httpx')\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'opentelemetry', 'aiohttp',"
        " 'llama_cpp', 'pybreaker', 'tenacity', 'cachetools', 'asyncio', 'trio', 'difflib'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_a_breaker_does_not_load_the_redis_client() -> None:
    """pybreaker would import redis (and OpenTelemetry's SDK through it) when installed: ~100 ms and
    12 MiB. The first breaker hides it while pybreaker loads; shared state can still import it."""
    code = (
        "import sys\n"
        "from llm_connectors.connectors.openai import OpenAIConnector\n"
        "conn = OpenAIConnector(api_key='sk-test', transport='httpx')\n"
        "assert conn._pipeline.policies.breaker is not None and 'pybreaker' in sys.modules\n"
        "print('redis' in sys.modules, 'opentelemetry' in sys.modules)\n"
        "import redis\n"
        "print(redis.Redis is not None)\n"
    )
    pytest.importorskip("redis")  # without it there is nothing to hide
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True"]


def test_unknown_attribute() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        lc.Nope  # noqa: B018
