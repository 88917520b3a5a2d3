"""Every example runs: as a subprocess, offline, against local fakes or the local model.

Examples that need no key use ``get_connector("auto")``; here no provider variable is set and
Ollama is pointed at a closed port, so "auto" is the offline model of the ``local`` extra (those
tests skip without it, and fail instead under ``make test``, which installs it).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_connectors.testing import FakeServer
from llm_connectors.testing.openai_wire import OpenAIFake

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROVIDER_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "MISTRAL_API_KEY", "OLLAMA_HOST",
                 "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "MISTRAL_BASE_URL", "LLM_CONNECTORS_PROVIDERS",
                 "LLM_CONNECTORS_LOCAL_MODEL", "LLAMA_SERVER_URL", "LLM_CONNECTORS_EXAMPLE_OFFLINE")
OFFLINE = {"OLLAMA_HOST": "http://127.0.0.1:9"}  # nothing listens there: "auto" finds no Ollama


def run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    result = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True,
                            env={**clean, **OFFLINE, **env}, timeout=180, check=False, stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def local_model() -> None:
    from llm_connectors.local.default_model import default_model_path

    missing = [name for name in ("llama_cpp",) if importlib.util.find_spec(name) is None]
    missing += [] if default_model_path() else ["the default model (llm-connectors fetch-model)"]
    if missing:
        if os.environ.get("LLM_CONNECTORS_REQUIRE_LOCAL"):
            pytest.fail(f"{', '.join(missing)} not installed, but LLM_CONNECTORS_REQUIRE_LOCAL is set")
        pytest.skip(f"the local extra is not installed ({', '.join(missing)}): pip install 'llm-connectors-sdk[local]'")



def test_every_example_has_a_test() -> None:
    tested = {"quickstart.py", "demo.py", "streaming.py", "tools.py", "embeddings.py", "fallback.py",
              "openai_compatible.py", "stats.py", "custom_provider.py", "sync_quickstart.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} <= tested


def test_quickstart_without_provider_explains_what_to_set() -> None:
    result = run("quickstart.py", LLM_CONNECTORS_PROVIDERS="openai,mistral")  # leaves the local model out
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr


def test_quickstart_against_a_local_openai_server() -> None:
    with FakeServer(OpenAIFake("Paris is the capital of France.")) as server:
        result = run("quickstart.py", OPENAI_API_KEY="sk-local", OPENAI_BASE_URL=server.url + "/v1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Paris is the capital of France.") == 2
    assert "[openai/" in result.stdout


@pytest.mark.parametrize(("script", "expected"), [
    ("quickstart.py", ["[local/", "streamed by local"]),
    ("streaming.py", ["[finish: ", "stopped early after: ", "collected: "]),
    ("tools.py", ["tool call: get_weather(", "streamed tool calls: [('get_weather'", "answer: "]),
    ("embeddings.py", ["3 vectors of", "closest to 'Where is the Eiffel Tower?':\n  0."]),
    ("fallback.py", ["served by local", "from the cache: True", "from a dict config, served by local",
                     "all failed: [('flaky', 'NetworkError'), ('flaky2', 'NetworkError')]"]),
    ("stats.py", ["hook: chat by local", "hook: stream by local", "refused before sending", "breaker: closed"]),
    ("openai_compatible.py", ["started llama_cpp.server", "[llamacpp/smollm2]"]),
])
@pytest.mark.local_model
@pytest.mark.usefixtures("local_model")
def test_example_runs_offline_on_the_local_model(script: str, expected: list[str]) -> None:
    result = run(script)
    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout, (text, result.stdout)


@pytest.mark.local_model
@pytest.mark.usefixtures("local_model")
def test_demo_streams_a_real_answer_then_falls_back_and_shows_stats() -> None:
    result = run("demo.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    positions = [out.find(f"== {n}.") for n in (1, 2, 3, 4)]
    assert -1 not in positions and positions == sorted(positions)
    answer = out.split("== 2.")[1].split("== 3.")[0]
    assert "[local / " in answer and len(answer.split()) > 15  # real generated text, not a canned line
    assert "call 1: served by local" in out and "call 2: served by local" in out
    stats = out.split("== 4.")[1]
    down = next(line for line in stats.splitlines() if line.startswith("down"))
    assert "NetworkError" in down and "CircuitOpenError" in down and down.rstrip().endswith("open")


@pytest.mark.local_model
@pytest.mark.usefixtures("local_model")
def test_demo_uses_a_configured_key_first() -> None:
    with FakeServer(OpenAIFake("Because of Rayleigh scattering.")) as server:
        result = run("demo.py", OPENAI_API_KEY="sk-local", OPENAI_BASE_URL=server.url + "/v1")
    assert result.returncode == 0, result.stderr
    assert "openai -> local" in result.stdout
    assert "Because of Rayleigh scattering." in result.stdout and "call 1: served by openai" in result.stdout


def test_custom_provider_runs_offline() -> None:
    result = run("custom_provider.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_sync_quickstart_runs_offline() -> None:
    result = run("sync_quickstart.py", LLM_CONNECTORS_EXAMPLE_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


CURRENT = {"LLM_CONNECTORS_PROVIDERS": "claude,openai", "ANTHROPIC_API_KEY": "sk-ant-local",
           "OPENAI_API_KEY": "sk-local"}


def test_fallback_example_on_the_default_models_moves_past_a_model_that_refuses_temperature() -> None:
    """Claude's default model refuses temperature under API version 2026-10-21 (the fake answers such a
    request with the API's 400): the chain skips Claude before I/O and OpenAI answers."""
    from llm_connectors.testing.claude_wire import ClaudeFake

    with FakeServer(ClaudeFake("Red.")) as claude, FakeServer(OpenAIFake("Blue.")) as openai:
        result = run("fallback.py", **CURRENT, ANTHROPIC_BASE_URL=claude.url, OPENAI_BASE_URL=openai.url + "/v1")
        sent_to_claude = [r.json() for r in claude.requests if r.method == "POST"]
    assert result.returncode == 0, result.stderr
    assert "served by openai: Blue." in result.stdout and "from a dict config, served by claude" in result.stdout
    assert sent_to_claude and all("temperature" not in body for body in sent_to_claude)


def test_tools_example_on_the_default_models_with_drop_params() -> None:
    """Claude Sonnet 5.5 refuses a forced tool choice; with drop_params it gets the call without it."""
    from llm_connectors.testing.claude_wire import ClaudeFake
    from llm_connectors.types import ToolCall

    fake = ClaudeFake("It is sunny.", tool_calls=[ToolCall("toolu_1", "get_weather", {"city": "Paris"})])
    with FakeServer(fake) as claude, FakeServer(OpenAIFake()) as openai:
        result = run("tools.py", **CURRENT, ANTHROPIC_BASE_URL=claude.url, OPENAI_BASE_URL=openai.url + "/v1")
        bodies = [r.json() for r in claude.requests if r.method == "POST"]
    assert result.returncode == 0, result.stderr
    assert "[claude] finish_reason=tool_calls" in result.stdout
    assert "tool call: get_weather(" in result.stdout and "streamed tool calls: [('get_weather'" in result.stdout
    assert bodies and all("tool_choice" not in body for body in bodies)
    assert all(body["model"] == "claude-sonnet-5-5" for body in bodies)
