"""examples/sync_quickstart.py runs: as a subprocess, offline or against a local server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.openai_wire import OpenAIFake

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "sync_quickstart.py"
CLEARED = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "MISTRAL_API_KEY", "OLLAMA_HOST",
           "OPENAI_BASE_URL", "LLM_CONNECTORS_PROVIDERS", "LLM_CONNECTORS_EXAMPLE_OFFLINE")
OFFLINE_ANSWER = "Paris is the capital of France."


def run(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env={**clean, **env},
                          timeout=60, check=False)


def assert_full_tour(result: subprocess.CompletedProcess[str], answer: str) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # the chat, the stream, and the three threaded questions
    assert result.stdout.count(answer) == 5, result.stdout
    assert "openai: 5 requests, 0 errors" in result.stdout


def test_without_a_provider_it_runs_offline() -> None:
    result = run()
    assert_full_tour(result, OFFLINE_ANSWER)
    assert "local fake server" in result.stderr


def test_offline_flag_wins_over_a_configured_provider() -> None:
    result = run(LLM_CONNECTORS_EXAMPLE_OFFLINE="1", OPENAI_API_KEY="sk-unused", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert_full_tour(result, OFFLINE_ANSWER)


def test_against_a_configured_provider() -> None:
    answer = "Lyon is not the capital."
    with FakeServer(OpenAIFake(answer)) as server:
        result = run(OPENAI_API_KEY="sk-local", OPENAI_BASE_URL=server.url + "/v1")
        requests = len(server.requests)
    assert_full_tour(result, answer)
    assert "local fake server" not in result.stderr
    assert requests == 5


def test_a_provider_error_is_reported_without_a_traceback() -> None:
    def refuse(_: object) -> Reply:
        return Reply.json({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                     "param": None, "code": "invalid_api_key"}}, 401)

    with FakeServer(refuse) as server:
        result = run(OPENAI_API_KEY="sk-wrong", OPENAI_BASE_URL=server.url + "/v1")
    assert result.returncode == 1
    assert "openai failed: AuthenticationError" in result.stderr
    assert "Traceback" not in result.stderr and "sk-wrong" not in result.stderr


@pytest.mark.skipif(os.name == "nt", reason="needs POSIX signals")
def test_ctrl_c_ends_the_script_and_its_request() -> None:
    """A real SIGINT to the process while its request is in flight, as a terminal's Ctrl-C."""

    def stall(_: object) -> Reply:
        return Reply(200, {"content-type": "application/json"}, chunks=[30.0, b"{}"])

    clean = {k: v for k, v in os.environ.items() if k not in CLEARED}
    with FakeServer(stall) as server:
        env = {**clean, "OPENAI_API_KEY": "sk-local", "OPENAI_BASE_URL": server.url + "/v1"}
        # A shell's background job (nohup, `&`, some CI runners) starts with SIGINT ignored, and a
        # Python started that way keeps ignoring it; the child gets a terminal's default instead.
        proc = subprocess.Popen([sys.executable, str(SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 30
            while not server.requests and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.01)
            assert server.requests, "the script never sent its request"
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, stderr
        assert "interrupted" in stderr and "Traceback" not in stderr
        deadline = time.monotonic() + 10
        while server.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.open_connections == 0
