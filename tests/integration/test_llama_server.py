"""The OpenAI-compatible connector against a real peer: llama-cpp-python's own HTTP server.

``python -m llama_cpp.server`` (the ``server`` extra) serves the bundled SmolLM2 model on
127.0.0.1 with an API key; one server for the module, started and stopped by a fixture. This is
the path a user takes with ``lc.register_openai_compatible("llamacpp", base_url=...)``: real
SSE framing, real tool-call fragments, real error bodies, next to the fakes used elsewhere.
The tests skip, saying why, when the extra is absent, and fail instead under ``make test``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import llm_connectors as lc
from llm_connectors.local.default_model import default_model_path
from llm_connectors.local.runtime import MODEL_ENV

pytestmark = [pytest.mark.anyio, pytest.mark.local_model]

KEY = "sk-llama-test"
SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."}
CAPITAL = [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
STEADY: dict[str, Any] = {"temperature": 0, "seed": 7}
SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")


@dataclass
class LlamaServer:
    url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _model_file() -> Path:
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        if os.environ.get("LLM_CONNECTORS_REQUIRE_LOCAL"):
            pytest.fail(f"the server extra is not installed ({', '.join(missing)} missing), but "
                        "LLM_CONNECTORS_REQUIRE_LOCAL is set (`make test` installs it)")
        pytest.skip(f"the server extra is not installed ({', '.join(missing)} missing): "
                    "pip install 'llm-connectors-sdk[server]'")
    path = Path(os.environ[MODEL_ENV]) if os.environ.get(MODEL_ENV) else default_model_path()
    if path is None or not path.is_file():
        if os.environ.get("LLM_CONNECTORS_REQUIRE_LOCAL"):
            pytest.fail("no model file, but LLM_CONNECTORS_REQUIRE_LOCAL is set (`make test` fetches it)")
        pytest.skip(f"no model file: run `llm-connectors fetch-model` or set {MODEL_ENV}")
    return path


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    model = _model_file()
    folder = tmp_path_factory.mktemp("llama-server")
    port = _free_port()
    config = folder / "config.json"
    config.write_text(json.dumps({
        "host": "127.0.0.1", "port": port, "api_key": KEY,
        # One request at a time is the honest setting for a one-model CPU server; the default
        # (interrupt the running request when a new one arrives) would make tests race.
        "interrupt_requests": False,
        "models": [
            {"model": str(model), "model_alias": "smollm2", "n_ctx": 512, "verbose": False},
            {"model": str(model), "model_alias": "smollm2-embed", "embedding": True, "verbose": False},
        ]}))
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # imports and the first model load; usually 2-5 s
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {KEY}"}, timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield LlamaServer(url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture
def llamacpp(llama_server: LlamaServer) -> type[lc.BaseConnector]:
    """The one-call registration a user would write for this server."""
    return lc.register_openai_compatible("llamacpp-test", base_url=llama_server.url + "/v1",
                                         api_key_env="LLAMACPP_TEST_KEY", default_model="smollm2",
                                         default_embedding_model="smollm2-embed", replace=True)


def connect(cls: type[lc.BaseConnector], **kwargs: Any) -> lc.BaseConnector:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("retry", False)
    return cls(**kwargs)


async def test_chat_stream_and_models(llamacpp: type[lc.BaseConnector]) -> None:
    async with connect(llamacpp) as conn:
        resp = await conn.generate_chat(None, CAPITAL, max_tokens=24, **STEADY)
        streamed = await conn.generate_chat_stream(None, CAPITAL, max_tokens=24, **STEADY).collect()
        models = await conn.list_models()
        assert await conn.health_check()
    assert "Paris" in resp.content and resp.finish_reason == "stop"
    assert resp.usage.input_tokens and resp.usage.output_tokens
    assert streamed.content == resp.content and streamed.finish_reason == "stop"
    assert {m.id for m in models} == {"smollm2", "smollm2-embed"}


async def test_tool_calls_in_both_modes(llamacpp: type[lc.BaseConnector]) -> None:
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    choice = {"type": "function", "function": {"name": "get_weather"}}
    async with connect(llamacpp) as conn:
        resp = await conn.generate_chat(None, question, tools=WEATHER, tool_choice=choice, max_tokens=40, **STEADY)
        streamed = await conn.generate_chat_stream(None, question, tools=WEATHER, tool_choice=choice,
                                                   max_tokens=40, **STEADY).collect()
    for answer in (resp, streamed):  # the stream's arguments arrive in fragments, assembled here
        assert answer.finish_reason == "tool_calls"
        [call] = answer.tool_calls
        assert call.name == "get_weather" and isinstance(call.arguments.get("city"), str)


async def test_errors_from_the_real_server_are_typed(llamacpp: type[lc.BaseConnector]) -> None:
    async with connect(llamacpp, api_key="sk-wrong") as conn:
        with pytest.raises(lc.AuthenticationError):
            await conn.generate_chat(None, CAPITAL, max_tokens=4)
        assert not await conn.health_check()
    async with connect(llamacpp) as conn:
        with pytest.raises(lc.ContextWindowExceededError):  # n_ctx is 512 on this server
            await conn.generate_chat(None, "word " * 700, max_tokens=4)


async def test_per_token_embeddings_are_refused_clearly(llamacpp: type[lc.BaseConnector]) -> None:
    # llama-cpp-python's server returns one vector per *token* for a chat model (SmolLM2 declares
    # no pooling): not OpenAI's shape, so the dialect says so rather than passing it on as if it
    # were one vector per input. The in-process `local` connector averages them instead
    # (tests/integration/test_local.py).
    async with connect(llamacpp) as conn:
        with pytest.raises(lc.ProtocolError, match="one vector per token"):
            await conn.generate_embedding(None, ["the cat sat", "quarterly revenue grew"])


async def test_a_fallback_chain_with_the_real_server(llamacpp: type[lc.BaseConnector],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMACPP_TEST_KEY", KEY)
    lc.register_openai_compatible("dead-test", base_url="http://127.0.0.1:9/v1", replace=True)
    async with lc.get_connector(primary="dead-test:any", fallbacks=["llamacpp-test"], retry=False) as chain:
        resp = await chain.generate_chat(None, CAPITAL, max_tokens=24, **STEADY)
        stats = chain.stats()
    assert resp.provider == "llamacpp-test" and "Paris" in resp.content
    assert stats["dead-test"]["fallbacks"] == 1 and stats["llamacpp-test"]["successes"] == 1
