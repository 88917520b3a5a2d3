"""Every example runs: as a subprocess, against local fakes, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from llm_connectors.testing import FakeServer
from llm_connectors.testing.openai_wire import OpenAIFake

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROVIDER_VARS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "MISTRAL_API_KEY", "OLLAMA_HOST", "OPENAI_BASE_URL")


def run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    return subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True,
                          env={**clean, **env}, timeout=60, check=False)


def test_quickstart_without_provider_explains_what_to_set() -> None:
    result = run("quickstart.py")
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr and "Traceback" not in result.stderr


def test_quickstart_against_a_local_openai_server() -> None:
    with FakeServer(OpenAIFake("Paris is the capital of France.")) as server:
        result = run("quickstart.py", OPENAI_API_KEY="sk-local", OPENAI_BASE_URL=server.url + "/v1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Paris is the capital of France.") == 2
