"""The OpenAI connector against a real HTTP server on 127.0.0.1 speaking OpenAI's wire format."""

from __future__ import annotations

import anyio
import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.kit import TEST_KEY
from llm_connectors.testing.openai_wire import OpenAIFake, openai_sse_events

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]
USER = [{"role": "user", "content": "Hi"}]


async def wait_closed(server: FakeServer) -> None:
    with anyio.fail_after(2):
        while server.open_connections:
            await anyio.sleep(0.01)


async def test_chat_stream_embeddings_models(openai_server: FakeServer, openai_fake: OpenAIFake) -> None:
    async with build_connector("openai", openai_server.url) as conn:
        resp = await conn.generate_chat("fake-model", USER)
        assert resp.content == openai_fake.text and resp.provider == "openai"
        chunks = [c async for c in conn.generate_chat_stream("fake-model", USER)]
        assert "".join(c.delta for c in chunks) == openai_fake.text
        assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None
        emb = await conn.generate_embedding("fake-embed", ["a", "b"])
        assert len(emb.embeddings) == 2 and len(emb.embeddings[0]) == openai_fake.dimensions
        assert [m.id for m in await conn.list_models()] == openai_fake.models
        assert await conn.health_check()
    request = openai_server.requests[0]
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.json()["messages"] == USER
    await wait_closed(openai_server)


async def test_keep_alive_reuses_one_connection(openai_server: FakeServer) -> None:
    async with build_connector("openai", openai_server.url) as conn:
        for _ in range(5):
            await conn.generate_chat("fake-model", USER)
            await conn.generate_chat_stream("fake-model", USER).collect()
    assert openai_server.total_connections == 1


async def test_http_errors_from_a_real_server(openai_server: FakeServer, openai_fake: OpenAIFake) -> None:
    openai_fake.replies.append(Reply.json(
        {"error": {"message": "Rate limit reached", "type": "requests", "param": None,
                   "code": "rate_limit_exceeded"}}, 429, {"retry-after": "7", "x-request-id": "req_42"}))
    async with build_connector("openai", openai_server.url) as conn:
        with pytest.raises(lc.RateLimitError) as info:
            await conn.generate_chat("fake-model", USER)
    assert (info.value.retry_after, info.value.request_id) == (7.0, "req_42")


async def test_slow_stream_in_small_pieces(openai_server: FakeServer, openai_fake: OpenAIFake) -> None:
    raw = b"".join(openai_sse_events(["α", "β", "γ"]))
    pieces: list[bytes | float] = []
    for i in range(0, len(raw), 5):  # 5-byte writes, split inside multi-byte characters
        pieces += [raw[i:i + 5], 0.001]
    openai_fake.replies.append(Reply.sse(pieces))
    async with build_connector("openai", openai_server.url) as conn:
        resp = await conn.generate_chat_stream("fake-model", USER).collect()
    assert resp.content == "αβγ"


async def test_connection_dropped_mid_stream(openai_server: FakeServer, openai_fake: OpenAIFake) -> None:
    events = openai_sse_events(["one", " two", " three"])
    openai_fake.replies.append(Reply.sse(events[:3], truncate=True))
    async with build_connector("openai", openai_server.url) as conn:
        delivered = []
        with pytest.raises(lc.StreamInterruptedError) as info:
            async with conn.generate_chat_stream("fake-model", USER) as stream:
                async for chunk in stream:
                    delivered.append(chunk.delta)
    assert info.value.partial == "one two" == "".join(delivered)
    assert isinstance(info.value.__cause__, lc.NetworkError)


async def test_dropped_before_first_delta_is_a_plain_error(openai_server: FakeServer,
                                                          openai_fake: OpenAIFake) -> None:
    openai_fake.replies.append(Reply.sse(openai_sse_events(["x"])[:1], truncate=True))
    async with build_connector("openai", openai_server.url) as conn:
        with pytest.raises(lc.NetworkError):
            await conn.generate_chat_stream("fake-model", USER).collect()


async def test_early_close_releases_the_connection(openai_server: FakeServer, openai_fake: OpenAIFake) -> None:
    events: list[bytes | float] = [*openai_sse_events(["first"])[:2], 30.0]  # then a long stall
    openai_fake.replies.append(Reply.sse(events))
    async with build_connector("openai", openai_server.url) as conn:
        with anyio.fail_after(5):
            async with conn.generate_chat_stream("fake-model", USER) as stream:
                async for chunk in stream:
                    assert chunk.delta == "first"
                    break
        await wait_closed(openai_server)  # the stalled response was closed, not left in the pool


async def test_first_token_and_overall_timeouts(openai_server: FakeServer, openai_fake: OpenAIFake) -> None:
    openai_fake.replies.append(Reply.sse([b": ping\n\n", 5.0]))  # keep-alives but no content
    async with build_connector("openai", openai_server.url, timeout=lc.Timeouts(first_token=0.3)) as conn:
        with anyio.fail_after(4), pytest.raises(lc.TimeoutError):
            await conn.generate_chat_stream("fake-model", USER).collect()
    openai_fake.replies.append(Reply.sse([*openai_sse_events(["a"])[:2], 5.0]))
    async with build_connector("openai", openai_server.url) as conn:
        with anyio.fail_after(4), pytest.raises(lc.StreamInterruptedError) as info:
            await conn.generate_chat_stream("fake-model", USER, timeout=0.5).collect()
    assert info.value.partial == "a" and isinstance(info.value.__cause__, lc.TimeoutError)


async def test_connection_refused_is_a_network_error() -> None:
    with FakeServer(OpenAIFake()) as server:
        url = server.url
    async with build_connector("openai", url, timeout=3) as conn:
        with pytest.raises(lc.NetworkError):
            await conn.generate_chat("fake-model", USER)


async def test_register_openai_compatible_against_the_server(openai_server: FakeServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALLM_KEY", "sk-compat")
    cls = lc.register_openai_compatible("localllm-test", base_url=openai_server.url + "/v1",
                                        api_key_env="LOCALLM_KEY", default_model="fake-model", replace=True)
    async with lc.get_connector("localllm-test") as conn:
        assert isinstance(conn, cls)
        resp = await conn.generate_chat(None, USER, max_tokens=5)
        assert resp.provider == "localllm-test"
    body = openai_server.requests[0].json()
    assert body["max_tokens"] == 5 and "max_completion_tokens" not in body
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-compat"
    assert lc.describe("localllm-test")["base_url"] == openai_server.url + "/v1"
