"""The ``local`` connector: a real GGUF model (SmolLM2-135M) run in process by llama.cpp.

Tests marked ``local_model`` generate for real (about 0.2-1 s each); they skip, saying why, when
the ``local`` extra is absent, and fail instead under ``make test`` (LLM_CONNECTORS_REQUIRE_LOCAL),
which installs it. The rest check catalog, translation and worker mechanics without a model.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import llm_connectors as lc
from llm_connectors.local import runtime as rt
from llm_connectors.local.default_model import default_model_path
from llm_connectors.local.jobs import _STREAM_BUFFER, Failure
from llm_connectors.local.models import _stop_all_at_exit, model_id
from llm_connectors.local.transport import _chat_arguments, _describe

pytestmark = pytest.mark.anyio

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."}
CAPITAL = [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]
LONG = [{"role": "user", "content": "Count from 1 to 500, separated by commas."}]
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
STEADY: dict[str, Any] = {"temperature": 0, "seed": 7}


def require_runtime() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        if os.environ.get("LLM_CONNECTORS_REQUIRE_LOCAL"):
            pytest.fail("llama-cpp-python is not installed, but LLM_CONNECTORS_REQUIRE_LOCAL is set "
                        "(`make test` installs the local extra)")
        pytest.skip("the local extra is not installed: pip install 'llm-connectors-sdk[local]'")
    if default_model_path() is None and not os.environ.get(rt.MODEL_ENV):
        if os.environ.get("LLM_CONNECTORS_REQUIRE_LOCAL"):
            pytest.fail("no local model, but LLM_CONNECTORS_REQUIRE_LOCAL is set (`make test` fetches it)")
        pytest.skip(f"no local model: run `llm-connectors fetch-model` or set {rt.MODEL_ENV}")


@pytest.fixture
def runtime_present() -> None:
    require_runtime()


@pytest.fixture
def no_provider_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "MISTRAL_API_KEY", "OPENAI_BASE_URL",
                 "LLM_CONNECTORS_PROVIDERS", rt.MODEL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing listens on the discard port
    from llm_connectors.factory import clear_probe_cache

    clear_probe_cache()
    yield
    clear_probe_cache()


model = pytest.mark.usefixtures("runtime_present")


def local(**kwargs: Any) -> lc.BaseConnector:
    from llm_connectors.connectors.local import LocalConnector

    kwargs.setdefault("retry", False)
    return LocalConnector.from_env(**kwargs)


def new_jobs(before: set[rt.Job]) -> list[rt.Job]:
    return [job for job in rt.active_jobs() if job not in before]


async def wait_stopped(job: rt.Job, seconds: float = 5.0) -> None:
    with anyio.fail_after(seconds):  # generous: stopping takes one token, a few milliseconds
        while not job.done.is_set():
            await anyio.sleep(0.01)


# -- without a model ------------------------------------------------------------------------------

def test_describe_needs_no_runtime() -> None:
    data = lc.describe("local")
    assert data["base_url"] == rt.IN_PROCESS_URL and data["auth"]["required"] is False
    assert {"chat", "streaming", "tools", "embeddings", "list_models"} <= set(data["capabilities"])
    assert "vision" not in data["capabilities"]


def test_a_folder_of_models_is_listed_and_resolved(tmp_path: Path) -> None:
    for name in ("b-model.gguf", "a-model.Q4.gguf", "notes.txt"):
        (tmp_path / name).write_bytes(b"GGUF")
    runtime = rt.LocalRuntime(tmp_path)
    assert runtime.default_model == "a-model.Q4"
    models = runtime.models()
    assert list(models)[:2] == ["a-model.Q4", "b-model"] and "notes" not in models
    assert runtime.resolve("b-model") == (tmp_path / "b-model.gguf").resolve()
    assert runtime.resolve(str(tmp_path / "b-model.gguf")) == (tmp_path / "b-model.gguf").resolve()
    assert runtime.resolve("c-model") is None


def test_a_missing_model_says_which_variable_to_set(tmp_path: Path) -> None:
    with pytest.raises(lc.ConfigurationError, match=rt.MODEL_ENV):
        rt.LocalRuntime(tmp_path / "missing.gguf")
    with pytest.raises(lc.ConfigurationError, match=r"no \.gguf"):
        rt.LocalRuntime(tmp_path)


def test_chat_bodies_become_llama_cpp_arguments() -> None:
    args = _chat_arguments({
        "model": "m", "stream": True, "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                               {"type": "text", "text": "b"}]}],
        "tools": WEATHER, "tool_choice": "required",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}})
    assert args["messages"] == [{"role": "user", "content": "ab"}]
    assert args["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert args["response_format"] == {"type": "json_object", "schema": {"type": "object"}}
    assert "model" not in args and "stream" not in args
    with pytest.raises(ValueError, match="exactly one tool"):
        _chat_arguments({"messages": [{"role": "user", "content": "x"}], "tools": WEATHER * 2,
                         "tool_choice": "required"})
    with pytest.raises(ValueError, match="'frobnicate'"):
        _chat_arguments({"messages": [{"role": "user", "content": "x"}], "frobnicate": 1})


async def test_a_worker_runs_ahead_of_its_reader_by_the_buffer_only() -> None:
    produced = []

    def work(job: rt.Job) -> None:
        for i in range(10_000):
            if not job.put(i):
                return
            produced.append(i)

    job = rt.Job(buffer=8)
    job.start(work, "test-worker")
    assert [await job.get() for _ in range(3)] == [0, 1, 2]
    with anyio.fail_after(5):
        while len(produced) < 11:  # 3 read + 8 credits
            await anyio.sleep(0.01)
    await anyio.sleep(0.1)
    assert len(produced) == 11  # and no further: it waits for the reader
    job.cancel()
    await wait_stopped(job)
    assert await job.get() == 3  # what was already handed over stays readable


async def test_a_worker_error_reaches_the_reader() -> None:
    def work(job: rt.Job) -> None:
        raise RuntimeError("boom")

    job = rt.Job()
    job.start(work, "test-worker")
    item = await job.get()
    assert isinstance(item, Failure) and str(item.error) == "boom"
    assert _describe(item.error)[0] == 500
    assert _describe(ValueError("Requested tokens (90) exceed context window of 64"))[2] == \
        "context_length_exceeded"


# -- the connector, no generation -----------------------------------------------------------------

@model
async def test_connector_settings_and_refusals(tmp_path: Path) -> None:
    conn = local()
    assert conn.provider == "local" and conn.base_url == rt.IN_PROCESS_URL
    assert conn.default_model == model_id(default_model_path() or Path(os.environ[rt.MODEL_ENV]))
    with pytest.raises(lc.InvalidRequestError, match="dimensions"):
        await conn.generate_embedding(None, "x", dimensions=8)
    with pytest.raises(lc.NotFoundError, match="not a local model file") as info:
        await conn.generate_chat("no-such-model", "hi")
    assert conn.default_model in info.value.message  # lists what is available
    assert next(m.id for m in await conn.list_models()) == conn.default_model
    assert await conn.health_check()
    await conn.aclose()
    with pytest.raises(lc.ConfigurationError, match="http_client"):
        local(http_client=httpx.AsyncClient())
    assert local(transport="httpx").provider == "local"  # an engine name from a chain's shared settings
    with pytest.raises(lc.ConfigurationError, match=rt.MODEL_ENV):
        local(environ={rt.MODEL_ENV: str(tmp_path / "missing.gguf")})


# -- real generation ------------------------------------------------------------------------------

@pytest.mark.local_model
@model
async def test_chat_and_stream_agree() -> None:
    async with local() as conn:
        resp = await conn.generate_chat(None, CAPITAL, max_tokens=24, **STEADY)
        async with conn.generate_chat_stream(None, CAPITAL, max_tokens=24, **STEADY) as stream:
            deltas = [chunk.delta async for chunk in stream]
        streamed = stream.response
        stats = conn.stats()["local"]
    assert "Paris" in resp.content
    assert "".join(deltas) == streamed.content == resp.content
    assert streamed.usage == resp.usage and resp.usage.input_tokens and resp.usage.output_tokens
    assert streamed.finish_reason == resp.finish_reason == "stop"
    assert resp.provider == "local" and resp.model == conn.default_model
    assert stats["successes"] == 2 and stats["output_tokens"] == 2 * resp.usage.output_tokens


@pytest.mark.local_model
@model
async def test_a_named_tool_is_called_in_both_modes() -> None:
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    async with local() as conn:
        resp = await conn.generate_chat(None, question, tools=WEATHER, tool_choice="required", max_tokens=40,
                                        **STEADY)
        streamed = await conn.generate_chat_stream(None, question, tools=WEATHER, max_tokens=40, **STEADY,
                                                   tool_choice={"type": "function",
                                                                "function": {"name": "get_weather"}}).collect()
    for answer in (resp, streamed):
        assert answer.finish_reason == "tool_calls"
        [call] = answer.tool_calls
        assert call.name == "get_weather" and isinstance(call.arguments.get("city"), str)
    assert resp.tool_calls[0].arguments == streamed.tool_calls[0].arguments


@pytest.mark.local_model
@model
async def test_embeddings_keep_order_and_repeat() -> None:
    async with local() as conn:
        emb = await conn.generate_embedding(None, ["the cat sat", "quarterly revenue grew", "the cat sat"])
    first, second, third = emb.embeddings
    assert len(first) == len(second) > 100 and emb.provider == "local"
    assert first == third and first != second
    assert emb.usage.input_tokens


@pytest.mark.local_model
@model
async def test_closing_a_stream_stops_generation() -> None:
    before = set(rt.active_jobs())
    async with local() as conn, conn.generate_chat_stream(None, LONG, max_tokens=400, **STEADY) as stream:
        received = 0
        async for chunk in stream:
            received += bool(chunk.delta)
            if received == 3:
                break
        [job] = new_jobs(before)
    await wait_stopped(job)
    assert job.tokens_after_stop <= 1  # the token being computed when the flag was set, at most
    assert job.completion_tokens < 3 + _STREAM_BUFFER + 2  # nowhere near the 400 asked for


@pytest.mark.local_model
@model
async def test_cancelling_the_reader_stops_generation() -> None:
    before = set(rt.active_jobs())
    first = anyio.Event()
    async with local() as conn:
        async def read() -> None:
            async with conn.generate_chat_stream(None, LONG, max_tokens=400, **STEADY) as stream:
                async for chunk in stream:
                    if chunk.delta:
                        first.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await first.wait()
            [job] = new_jobs(before)
            tg.cancel_scope.cancel()  # the reader is cancelled wherever it is, typically awaiting a chunk
    await wait_stopped(job)
    assert job.stopped and job.tokens_after_stop <= 1 and job.completion_tokens < 100


@pytest.mark.local_model
@model
async def test_an_abandoned_stream_stops_generation() -> None:
    from llm_connectors.connectors.local import LocalConnector

    conn = local()
    assert isinstance(conn, LocalConnector)
    transport = rt.LocalTransport(conn.runtime)
    before = set(rt.active_jobs())
    request = httpx.Request("POST", rt.IN_PROCESS_URL + "/chat/completions",
                            json={"model": conn.default_model, "messages": LONG, "max_tokens": 400, "stream": True})
    response = await transport.handle_async_request(request)
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    events = stream.__aiter__()
    assert (await events.__anext__()).startswith(b"data: {")
    [job] = new_jobs(before)
    del response, stream, events  # dropped without aclose(): nobody will ever read the rest
    gc.collect()
    await wait_stopped(job)
    assert job.stopped and job.completion_tokens < 100
    await conn.aclose()


@pytest.mark.local_model
@model
async def test_a_deadline_stops_the_model() -> None:
    before = set(rt.active_jobs())
    async with local() as conn:
        with pytest.raises(lc.TimeoutError):
            await conn.generate_chat(None, LONG, max_tokens=2000, timeout=0.3, **STEADY)
        jobs = new_jobs(before)
        for job in jobs:
            await wait_stopped(job)
        assert conn.stats()["local"]["errors"] == {"TimeoutError": 1}


@pytest.mark.local_model
@model
async def test_concurrent_calls_take_turns_on_one_model() -> None:
    answers: list[str] = []
    async with local() as conn:
        async def ask() -> None:
            answers.append((await conn.generate_chat(None, CAPITAL, max_tokens=12, **STEADY)).content)

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(ask)
    assert len(answers) == 3 and len(set(answers)) == 1  # same seed, same answer: no crosstalk


@pytest.mark.local_model
@model
async def test_a_prompt_over_the_context_window_is_typed_and_not_retried() -> None:
    async with local(context_length=200, retry=lc.RetryPolicy(max_retries=2)) as conn:  # 256, as llama.cpp pads
        with pytest.raises(lc.ContextWindowExceededError, match="256"):
            await conn.generate_chat(None, "word " * 400, max_tokens=8)
        assert conn.stats()["local"]["retries"] == 0


@pytest.mark.local_model
@model
async def test_auto_puts_local_last_and_falls_back_to_it(no_provider_env: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # refuses connections
    async with lc.get_connector("auto", retry=False) as chain:
        assert isinstance(chain, lc.FallbackConnector)
        assert [m.provider for m in chain.members] == ["openai", "local"]  # ollama did not answer
        resp = await chain.generate_chat(None, CAPITAL, max_tokens=24, **STEADY)
        stats = chain.stats()
    assert resp.provider == "local" and "Paris" in resp.content
    assert stats["openai"]["fallbacks"] == 1 and stats["local"]["successes"] == 1


async def test_auto_without_anything_names_the_local_extra(no_provider_env: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llm_connectors.factory._local_available", lambda: False)
    with pytest.raises(lc.NoProviderAvailableError,
                       match=r"llm-connectors-sdk\[local\]'?, then llm-connectors fetch-model"):
        await lc.get_connector("auto")


async def test_a_missing_model_says_how_to_fetch_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llm_connectors.local.models.default_model_path", lambda: None)
    with pytest.raises(lc.ConfigurationError, match=r"run `llm-connectors fetch-model`") as caught:
        rt.LocalRuntime()
    assert rt.MODEL_ENV in caught.value.message


def test_workers_are_daemons_stopped_at_exit() -> None:
    stopped = threading.Event()

    def work(job: rt.Job) -> None:
        for _ in range(1000):  # 10 s at most
            if job.stopped:
                stopped.set()
                return
            time.sleep(0.01)

    async def start() -> rt.Job:
        job = rt.Job()
        job.start(work, "test-exit")
        return job

    job = anyio.run(start)
    assert job._thread is not None and job._thread.daemon
    _stop_all_at_exit()  # what interpreter exit runs
    assert stopped.is_set() and job.done.wait(2)
