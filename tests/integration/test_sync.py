"""The sync API (``llm_connectors.sync``) against real loopback servers.

It wraps the async connectors, so these tests check what the wrapping must not change (the
same errors, resilience and stats as ``await``) and what only the wrapping can break: callers
inside a running event loop, many threads at once, abandoned streams and Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors import factory, sync
from llm_connectors.connectors.presets import PRESETS
from llm_connectors.resilience import reset_shared_state
from llm_connectors.testing import FakeServer, Reply, Request
from llm_connectors.testing.openai_wire import OpenAIFake, openai_sse_events

USER = [{"role": "user", "content": "Hi"}]
TEXT = "Hello from the fake provider."
FAST = lc.RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02, min_delay=0.0, budget=False)
PAUSE = 30.0  # a reply that stalls this long is only cut short by the client going away
TIME_LIMIT = 10.0  # generous: the machine may be busy compiling in the background
KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "MISTRAL_API_KEY", "OLLAMA_HOST",
            "OLLAMA_API_KEY", "LLM_CONNECTORS_PROVIDERS", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY",
            *(p.api_key_env for p in PRESETS.values() if p.api_key_env))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    factory.clear_probe_cache()
    yield
    factory.clear_probe_cache()


def settings(server: FakeServer, **extra: Any) -> dict[str, Any]:
    return {"api_key": "k", "base_url": server.url + "/v1", "retry": False, **extra}


@pytest.fixture
def conn(openai_server: FakeServer) -> Iterator[sync.SyncConnector]:
    with sync.get_connector("openai", **settings(openai_server)) as connector:
        yield connector


@pytest.fixture
def member_b(openai_server: FakeServer) -> str:
    """A second provider id (OpenAI-compatible) on the same server, for chains."""
    lc.register_openai_compatible("sync-b", base_url=openai_server.url + "/v1", default_model="b-model",
                                  api_key_env=None, replace=True)
    return "sync-b"


def wait_until(predicate: Callable[[], bool], timeout: float = TIME_LIMIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def stalled_json() -> Reply:
    """A 200 whose body never arrives in time: the request stays in flight."""
    return Reply(200, {"content-type": "application/json"}, chunks=[PAUSE, b"{}"])


def stalled_stream(first: str = "Hello") -> Reply:
    """One chunk of text, then a long stall (the response stays open)."""
    return Reply.sse([*openai_sse_events([first], done=False, include_usage=False)[:2], PAUSE])


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply.json({"error": {"message": message, "type": "server_error", "param": None, "code": None}},
                      status, headers)


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llm-connectors-sync"]


# -- getting a connector: every form of the async get_connector ------------------------------------

def test_provider_id_with_settings(conn: sync.SyncConnector, openai_server: FakeServer) -> None:
    resp = conn.generate_chat("fake-model", USER)
    assert resp.content == TEXT and resp.provider == "openai" and resp.model == "fake-model"
    assert isinstance(conn.async_connector, lc.BaseConnector)
    assert repr(conn).startswith("<SyncConnector <OpenAIConnector")
    assert "'k'" not in repr(conn)


def test_provider_model_spec_sets_the_default_model(openai_server: FakeServer) -> None:
    with sync.get_connector("openai:fake-default", **settings(openai_server)) as conn:
        conn.generate_chat(None, USER)
    assert openai_server.requests[-1].json()["model"] == "fake-default"


def test_dict_config_and_keyword_chain(openai_server: FakeServer, member_b: str) -> None:
    config = {"primary": "openai", "retry_policy": {"max_retries": 0},
              "providers": {"openai": {"api_key": "k", "base_url": openai_server.url + "/v1"}}}
    with sync.get_connector(config) as conn:
        assert conn.provider == "openai"
        assert conn.generate_chat("fake-model", USER).content == TEXT
    with sync.get_connector(primary="openai", fallbacks=[member_b], retry=False,
                            providers={"openai": {"api_key": "k", "base_url": openai_server.url + "/v1"}}) as chain:
        assert chain.provider == "fallback"
        assert isinstance(chain.async_connector, lc.FallbackConnector)
        assert chain.generate_chat(None, USER).provider == "openai"


def test_auto_from_the_environment(openai_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url + "/v1")
    monkeypatch.setenv("LLM_CONNECTORS_PROVIDERS", "openai")
    with sync.get_connector("auto") as conn:
        assert conn.provider == "fallback"
        assert conn.generate_chat("fake-model", USER).provider == "openai"


@pytest.mark.parametrize(("args", "kwargs"), [
    (("opnai",), {}),  # unknown provider, with a did-you-mean
    (("auto",), {}),  # nothing usable: NoProviderAvailableError
    ((42,), {}),
    (("openai",), {"primary": "claude"}),
    (("openai",), {}),  # no key
    (("openai",), {"api_key": "k", "temprature": 1}),
])
def test_bad_arguments_raise_what_the_async_api_raises(monkeypatch: pytest.MonkeyPatch, args: tuple[Any, ...],
                                                       kwargs: dict[str, Any]) -> None:
    monkeypatch.setenv("LLM_CONNECTORS_PROVIDERS", "openai")

    async def build() -> BaseException:
        try:
            await lc.get_connector(*args, **kwargs)
        except Exception as exc:
            return exc
        raise AssertionError(f"async get_connector{args} did not raise")

    expected = anyio.run(build)
    with pytest.raises(Exception) as caught:  # whatever the async API raised
        sync.get_connector(*args, **kwargs)
    assert type(caught.value) is type(expected)
    assert str(caught.value) == str(expected)


# -- the surface ---------------------------------------------------------------------------------

def test_surface_matches_the_async_connector(conn: sync.SyncConnector) -> None:
    inner = conn.async_connector
    assert conn.provider == inner.provider == "openai"
    assert conn.definition is inner.definition
    assert conn.capabilities == inner.capabilities and "streaming" in conn.capabilities
    assert conn.is_compatible_model("gpt-4o") == inner.is_compatible_model("gpt-4o")
    assert [m.id for m in conn.list_models()] == ["fake-model", "fake-embed"]
    assert conn.health_check() is True
    emb = conn.generate_embedding("fake-embed", ["one", "two"])
    assert len(emb.embeddings) == 2 and emb.provider == "openai"


def test_wrapping_a_connector_made_directly(openai_server: FakeServer) -> None:
    with sync.SyncConnector(build_connector("openai", openai_server.url)) as conn:
        assert conn.generate_chat("fake-model", USER).content == TEXT


def test_health_check_of_a_dead_server_is_false() -> None:
    with FakeServer(OpenAIFake()) as server:
        url = server.url
    with sync.get_connector("openai", api_key="k", base_url=url + "/v1") as conn:
        started = time.monotonic()
        assert conn.health_check(timeout=2) is False
        assert time.monotonic() - started < TIME_LIMIT


def test_stream_iterates_and_collects_like_the_chat(conn: sync.SyncConnector) -> None:
    whole = conn.generate_chat("fake-model", USER)
    with conn.generate_chat_stream("fake-model", USER) as stream:
        deltas = [chunk.delta for chunk in stream]
        assert stream.provider == "openai"
    assert "".join(deltas) == stream.text == whole.content
    assert stream.response.content == whole.content
    assert stream.response.usage.output_tokens is not None
    collected = conn.generate_chat_stream("fake-model", USER).collect()
    assert collected.content == whole.content and collected.finish_reason == whole.finish_reason
    assert list(stream) == []  # a drained stream stays drained


def test_stream_options_are_checked_before_anything_is_sent(conn: sync.SyncConnector,
                                                            openai_server: FakeServer) -> None:
    with pytest.raises(lc.InvalidRequestError, match="temperature"):
        conn.generate_chat_stream("fake-model", USER, temperature=9)
    unstarted = conn.generate_chat_stream("fake-model", USER)
    unstarted.close()  # never iterated: nothing to close, nothing sent
    assert openai_server.requests == []
    closed = conn.generate_chat_stream("fake-model", USER)
    next(closed)
    closed.close()
    with pytest.raises(RuntimeError, match="closed before it finished"):
        closed.collect()
    with pytest.raises(RuntimeError, match="has not finished"):
        closed.response  # noqa: B018


def test_a_closed_connector_raises_like_the_async_one(openai_server: FakeServer) -> None:
    conn = sync.get_connector("openai", **settings(openai_server))
    conn.generate_chat("fake-model", USER)
    conn.close()
    conn.close()  # twice is fine
    with pytest.raises(lc.ConfigurationError, match="closed"):
        conn.generate_chat("fake-model", USER)


# -- the same errors as async --------------------------------------------------------------------

def summary(exc: BaseException) -> dict[str, Any]:
    """Type, message and every attribute (nested errors summarised too)."""
    out: dict[str, Any] = {"type": type(exc), "str": str(exc)}
    for name, value in vars(exc).items():
        out[name] = [summary(e) for e in value] if name == "errors" else value
    return out


async def _async_call(connector: Any, kind: str) -> None:
    if kind == "chat":
        await connector.generate_chat(None, USER)
    elif kind == "bad-option":
        await connector.generate_chat(None, USER, temperature=7)
    elif kind == "stream":
        async with connector.generate_chat_stream(None, USER) as stream:
            async for _ in stream:
                pass
    elif kind == "embedding":
        await connector.generate_embedding("fake-embed", "x")


def _sync_call(connector: sync.SyncConnector, kind: str) -> None:
    if kind == "chat":
        connector.generate_chat(None, USER)
    elif kind == "bad-option":
        connector.generate_chat(None, USER, temperature=7)
    elif kind == "stream":
        with connector.generate_chat_stream(None, USER) as stream:
            for _ in stream:
                pass
    elif kind == "embedding":
        connector.generate_embedding("fake-embed", "x")


def _raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except lc.LLMConnectorError as exc:
        return exc
    raise AssertionError("no error was raised")


@pytest.mark.parametrize(("kind", "replies", "expected"), [
    ("chat", [error_reply(401, "Incorrect API key provided")], lc.AuthenticationError),
    ("chat", [error_reply(429, "slow down", {"retry-after": "7", "x-request-id": "req-1"})], lc.RateLimitError),
    ("chat", [error_reply(400, "This model's maximum context length is 8192 tokens")],
     lc.ContextWindowExceededError),
    ("chat", [error_reply(500, "boom")], lc.ProviderError),
    ("bad-option", [], lc.InvalidRequestError),
    ("stream", [error_reply(503, "unavailable")], lc.ProviderError),
    ("stream", [Reply.sse(openai_sse_events(["Hel", "lo"], done=False, include_usage=False)[:-1],
                          truncate=True)], lc.StreamInterruptedError),
    ("embedding", [error_reply(404, "no such model")], lc.NotFoundError),
    ("chain", [error_reply(500, "a is down"), error_reply(503, "b is down")], lc.AllProvidersFailedError),
])
def test_errors_are_the_async_errors(openai_fake: OpenAIFake, openai_server: FakeServer, member_b: str,
                                     kind: str, replies: list[Reply], expected: type[Exception]) -> None:
    if kind == "chain":
        config: dict[str, Any] = {"primary": "openai", "fallbacks": [member_b], "retry": False,
                                  "providers": {"openai": {"api_key": "k", "base_url": openai_server.url + "/v1",
                                                           "default_model": "fake-model"}}}
        kind = "chat"
    else:
        config = {"primary": "openai", **settings(openai_server, default_model="fake-model")}

    async def run_async() -> BaseException:
        async with lc.get_connector(**config) as connector:
            try:
                await _async_call(connector, kind)
            except lc.LLMConnectorError as exc:
                return exc
        raise AssertionError("the async call did not raise")

    reset_shared_state()
    openai_fake.replies.extend(replies)
    from_async = anyio.run(run_async)
    reset_shared_state()
    openai_fake.replies.extend(replies)
    with sync.get_connector(**config) as connector:
        from_sync = _raised(lambda: _sync_call(connector, kind))
    assert type(from_sync) is expected
    assert summary(from_sync) == summary(from_async)
    if expected is lc.StreamInterruptedError:
        assert getattr(from_sync, "partial", None) == "Hello"
    if expected is lc.RateLimitError:
        assert from_sync.retry_after == 7 and from_sync.request_id == "req-1"  # type: ignore[attr-defined]


# -- the same resilience and stats as async ------------------------------------------------------

def test_retries_happen_on_the_loop(openai_fake: OpenAIFake, openai_server: FakeServer) -> None:
    openai_fake.replies.extend([error_reply(503, "busy"), error_reply(503, "busy")])
    with sync.get_connector("openai", **settings(openai_server, retry=FAST)) as conn:
        assert conn.generate_chat("fake-model", USER).content == TEXT
        assert conn.stats()["openai"]["retries"] == 2
    assert len(openai_server.requests) == 3


def test_the_breaker_opens_and_fails_fast(openai_fake: OpenAIFake, openai_server: FakeServer) -> None:
    openai_fake.replies.extend([error_reply(500, "down"), error_reply(500, "down")])
    breaker = lc.CircuitBreakerConfig(failure_threshold=2, reset_timeout=60)
    with sync.get_connector("openai", **settings(openai_server, circuit_breaker=breaker)) as conn:
        for _ in range(2):
            with pytest.raises((lc.ProviderError, lc.CircuitOpenError)):
                conn.generate_chat("fake-model", USER)
        with pytest.raises(lc.CircuitOpenError):
            conn.generate_chat("fake-model", USER)
        assert conn.stats()["openai"]["breaker"]["state"] == "open"
    assert len(openai_server.requests) == 2  # the open circuit sent nothing


def test_a_chain_falls_back(openai_fake: OpenAIFake, openai_server: FakeServer, member_b: str) -> None:
    openai_fake.replies.append(error_reply(500, "primary down"))
    with sync.get_connector(primary="openai", fallbacks=[member_b], retry=False,
                            providers={"openai": {"api_key": "k", "base_url": openai_server.url + "/v1"}}) as chain:
        assert chain.generate_chat(None, USER).provider == member_b
        assert chain.stats()["openai"]["fallbacks"] == 1


class Scripted:
    """The fake OpenAI server, but replies come from a script first; None means the normal answer."""

    def __init__(self) -> None:
        self.fake = OpenAIFake(TEXT)
        self.script: deque[Reply | None] = deque()

    def __call__(self, request: Request) -> Reply:
        reply = self.script.popleft() if self.script else None
        return reply if reply is not None else self.fake(request)


def test_stats_are_the_async_stats() -> None:
    script = [error_reply(503, "busy"), None,  # a chat, retried once
              None,  # a stream
              Reply.sse(openai_sse_events(["a", "b"], done=False, include_usage=False)[:-1], truncate=True),
              error_reply(401, "bad key"),  # a chat
              None]  # an embedding
    scripted = Scripted()

    async def run_async(config: dict[str, Any]) -> dict[str, Any]:
        async with lc.get_connector(**config) as connector:
            await connector.generate_chat(None, USER)
            async with connector.generate_chat_stream(None, USER) as stream:
                await stream.collect()
            with contextlib.suppress(lc.StreamInterruptedError):
                async with connector.generate_chat_stream(None, USER) as stream:
                    await stream.collect()
            with contextlib.suppress(lc.AuthenticationError):
                await connector.generate_chat(None, USER)
            await connector.generate_embedding("fake-embed", ["x", "y"])
            return connector.stats()

    def run_sync(config: dict[str, Any]) -> dict[str, Any]:
        with sync.get_connector(**config) as connector:
            connector.generate_chat(None, USER)
            with connector.generate_chat_stream(None, USER) as stream:
                stream.collect()
            with contextlib.suppress(lc.StreamInterruptedError), connector.generate_chat_stream(None, USER) as stream:
                stream.collect()
            with contextlib.suppress(lc.AuthenticationError):
                connector.generate_chat(None, USER)
            connector.generate_embedding("fake-embed", ["x", "y"])
            return connector.stats()

    def timeless(stats: dict[str, Any]) -> dict[str, Any]:
        return {provider: {k: v for k, v in entry.items() if k not in ("latency_s", "ttft_s", "limiter_wait_s")}
                for provider, entry in stats.items()}

    with FakeServer(scripted) as server:
        config = {"primary": "openai", **settings(server, retry=FAST, default_model="fake-model")}
        results: list[dict[str, Any]] = []
        runs: list[Callable[[], dict[str, Any]]] = [lambda: anyio.run(run_async, config), lambda: run_sync(config)]
        for run in runs:
            reset_shared_state()
            scripted.script.extend(script)
            results.append(run())
            assert not scripted.script
    from_async, from_sync = results
    assert timeless(from_sync) == timeless(from_async)
    entry = from_sync["openai"]
    assert entry["retries"] == 1 and entry["errors"] == {"StreamInterruptedError": 1, "AuthenticationError": 1}


# -- threads and running event loops ------------------------------------------------------------

def test_eight_threads_at_once_share_one_loop(conn: sync.SyncConnector, openai_server: FakeServer) -> None:
    threads, calls = 8, 12
    results: list[str] = []
    failures: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(index: int) -> None:
        try:
            start.wait(TIME_LIMIT)
            for n in range(calls):
                if (index + n) % 2:
                    results.append(conn.generate_chat("fake-model", USER).content)
                else:
                    with conn.generate_chat_stream("fake-model", USER) as stream:
                        results.append("".join(chunk.delta for chunk in stream))
        except BaseException as exc:
            failures.append(exc)

    pool = [threading.Thread(target=worker, args=(i,), name=f"caller-{i}") for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
    assert not any(thread.is_alive() for thread in pool)
    assert failures == []
    assert results == [TEXT] * (threads * calls)
    assert len(openai_server.requests) == threads * calls
    assert len(loop_threads()) == 1  # every sync connector in the process uses one loop thread
    assert conn.stats()["openai"]["successes"] == threads * calls


def test_called_from_inside_a_running_asyncio_loop(openai_server: FakeServer) -> None:
    """What a Jupyter cell does: plain calls from a thread whose asyncio loop is running."""

    async def cell() -> tuple[str, str]:
        asyncio.get_running_loop()  # there is a running loop in this thread
        with sync.get_connector("openai", **settings(openai_server)) as conn:
            chat = conn.generate_chat("fake-model", USER).content
            with conn.generate_chat_stream("fake-model", USER) as stream:
                streamed = "".join(chunk.delta for chunk in stream)
        return chat, streamed

    assert asyncio.run(cell()) == (TEXT, TEXT)


def test_called_from_inside_trio(openai_server: FakeServer) -> None:
    import trio  # type: ignore[import-untyped,unused-ignore]

    async def main() -> str:
        with sync.get_connector("openai", **settings(openai_server)) as conn:
            return conn.generate_chat("fake-model", USER).content

    assert trio.run(main) == TEXT


def test_calling_from_the_loop_thread_raises_instead_of_deadlocking(conn: sync.SyncConnector) -> None:
    async def on_the_loop() -> str:
        return conn.generate_chat("fake-model", USER).content

    with pytest.raises(RuntimeError, match="own event loop thread"):
        sync._runner.run(on_the_loop)


def test_a_connector_of_a_stopped_loop_says_so(openai_server: FakeServer) -> None:
    old = sync.get_connector("openai", **settings(openai_server))
    old.generate_chat("fake-model", USER)
    sync._runner.shutdown()
    assert wait_until(lambda: not loop_threads())
    with pytest.raises(lc.ConfigurationError, match="event loop that has stopped"):
        old.generate_chat("fake-model", USER)
    old.close()  # its loop and its connections are gone: nothing to do, no error
    with sync.get_connector("openai", **settings(openai_server)) as new:  # a fresh loop starts
        assert new.generate_chat("fake-model", USER).content == TEXT
    assert len(loop_threads()) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_loop(openai_server: FakeServer) -> None:
    code = f"""
import os, sys
from llm_connectors import sync, errors
conn = sync.get_connector("openai", api_key="k", base_url="{openai_server.url}/v1", retry=False)
assert conn.generate_chat("fake-model", "hi").content
pid = os.fork()
if pid == 0:
    try:
        conn.generate_chat("fake-model", "hi")
        os._exit(3)
    except errors.ConfigurationError:
        pass
    with sync.get_connector("openai", api_key="k", base_url="{openai_server.url}/v1") as fresh:
        os._exit(0 if fresh.generate_chat("fake-model", "hi").content else 4)
_, status = os.waitpid(pid, 0)
conn.close()
sys.exit(os.waitstatus_to_exitcode(status))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert len(openai_server.requests) == 2


# -- abandoned streams release their connection ---------------------------------------------------

def _break_out_of_with(conn: sync.SyncConnector) -> None:
    with conn.generate_chat_stream("fake-model", USER) as stream:
        for chunk in stream:
            assert chunk.delta == "Hello"
            break


def _drop_the_iterator(conn: sync.SyncConnector) -> None:
    stream = conn.generate_chat_stream("fake-model", USER)
    assert next(stream).delta == "Hello"
    del stream
    gc.collect()


def _break_out_of_for(conn: sync.SyncConnector) -> None:
    for chunk in conn.generate_chat_stream("fake-model", USER):
        assert chunk.delta == "Hello"
        break


def _drop_it_in_another_thread(conn: sync.SyncConnector) -> None:
    box = [conn.generate_chat_stream("fake-model", USER)]
    assert next(box[0]).delta == "Hello"
    dropper = threading.Thread(target=box.clear)
    dropper.start()
    dropper.join(TIME_LIMIT)


@pytest.mark.parametrize("abandon", [_break_out_of_with, _drop_the_iterator, _break_out_of_for,
                                     _drop_it_in_another_thread])
def test_an_abandoned_stream_releases_its_connection(openai_fake: OpenAIFake, openai_server: FakeServer,
                                                     abandon: Callable[[sync.SyncConnector], None]) -> None:
    openai_fake.replies.append(stalled_stream())
    with sync.get_connector("openai", **settings(openai_server)) as conn:
        started = time.monotonic()
        abandon(conn)
        # The connector is still open: only closing the half-read response frees the connection.
        assert wait_until(lambda: openai_server.open_connections == 0), openai_server.open_connections
        assert time.monotonic() - started < TIME_LIMIT
        assert wait_until(lambda: sync._runner.in_flight == 0)
        assert conn.generate_chat("fake-model", USER).content == TEXT  # and it still works
    assert openai_server.total_connections == 2


# -- Ctrl-C ----------------------------------------------------------------------------------------

needs_signals = pytest.mark.skipif(not hasattr(signal, "pthread_kill") or os.name == "nt",
                                   reason="needs POSIX signals")


@contextlib.contextmanager
def ctrl_c_when(condition: Callable[[], bool]) -> Iterator[None]:
    """Send SIGINT to the main thread, as a terminal's Ctrl-C does, once ``condition()`` holds.

    A real signal, not ``_thread.interrupt_main()``: only a signal interrupts the main thread's
    blocking wait, and that wait is what has to give way. The condition is checked from a helper
    thread while the main thread is blocked in the call, so the signal lands inside it.
    """
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("KeyboardInterrupt is delivered to the main thread only")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default KeyboardInterrupt handler here")
    main = threading.main_thread().ident
    assert main is not None
    done = threading.Event()

    def fire() -> None:
        deadline = time.monotonic() + TIME_LIMIT
        while not done.is_set() and time.monotonic() < deadline:
            if condition():
                signal.pthread_kill(main, signal.SIGINT)
                return
            time.sleep(0.005)

    helper = threading.Thread(target=fire, name="ctrl-c")
    helper.start()
    try:
        yield
    finally:
        done.set()
        helper.join(TIME_LIMIT)


@needs_signals
def test_ctrl_c_cancels_the_request_in_flight(openai_fake: OpenAIFake, openai_server: FakeServer) -> None:
    openai_fake.replies.append(stalled_json())
    with sync.get_connector("openai", **settings(openai_server)) as conn:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt), ctrl_c_when(lambda: len(openai_server.requests) == 1):
            conn.generate_chat("fake-model", USER)
        assert time.monotonic() - started < TIME_LIMIT
        # Re-raised only once the task on the loop has finished: nothing is left in flight ...
        assert sync._runner.in_flight == 0
        # ... and its connection is closed (the server sees the client go, mid-reply).
        assert wait_until(lambda: openai_server.open_connections == 0)
        assert conn.generate_chat("fake-model", USER).content == TEXT
        stats = conn.stats()["openai"]
    assert stats["successes"] == 1 and stats["requests"] == 2
    assert len(openai_server.requests) == 2


@needs_signals
def test_ctrl_c_in_the_middle_of_a_stream(openai_fake: OpenAIFake, openai_server: FakeServer) -> None:
    openai_fake.replies.append(stalled_stream())
    with sync.get_connector("openai", **settings(openai_server)) as conn:
        stream = conn.generate_chat_stream("fake-model", USER)
        assert next(stream).delta == "Hello"
        started = time.monotonic()
        # Fired once the next step's task runs on the loop, i.e. while this thread waits for it.
        with pytest.raises(KeyboardInterrupt), ctrl_c_when(lambda: sync._runner.in_flight == 1):
            next(stream)
        assert time.monotonic() - started < TIME_LIMIT
        assert sync._runner.in_flight == 0
        assert wait_until(lambda: openai_server.open_connections == 0)
        assert list(stream) == []  # an interrupted stream is over
        stream.close()
        with conn.generate_chat_stream("fake-model", USER) as again:
            assert "".join(chunk.delta for chunk in again) == TEXT


@needs_signals
def test_ctrl_c_while_a_stream_opens(openai_fake: OpenAIFake, openai_server: FakeServer) -> None:
    openai_fake.replies.append(Reply(200, {"content-type": "text/event-stream"}, chunks=[PAUSE]))
    with sync.get_connector("openai", **settings(openai_server)) as conn:
        with pytest.raises(KeyboardInterrupt), ctrl_c_when(lambda: len(openai_server.requests) == 1), \
                conn.generate_chat_stream("fake-model", USER) as stream:
            next(stream)
        assert sync._runner.in_flight == 0
        assert wait_until(lambda: openai_server.open_connections == 0)
