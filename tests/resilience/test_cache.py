"""Response cache (RELIABILITY.md §8 C1-C4): keys, single-flight, what is never cached, TTL."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from builders import build_connector
from hypothesis import given, settings, strategies as st

import llm_connectors as lc
from llm_connectors.resilience.cache import CacheConfig, ResponseCache, cache_key
from llm_connectors.testing import FakeServer, Reply, Request
from llm_connectors.testing.kit import ScriptedHandler
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "Hi"}]
KIT = OpenAIWireKit()


class SlowFake(OpenAIFake):
    """Answers after a pause, so concurrent identical calls overlap."""

    def __call__(self, request: Request) -> Reply:
        reply = super().__call__(request)
        if reply.chunks is None:
            return Reply(reply.status, reply.headers, chunks=[0.2, reply.body])
        return reply


CACHE = CacheConfig(maxsize=64, ttl=60)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["provider", "base_url", "credential", "path", "body"]), st.text(min_size=1, max_size=8))
def test_c1_key_covers_every_field_and_holds_no_secret(field: str, change: str) -> None:
    base: dict[str, Any] = {"provider": "openai", "base_url": "https://api.openai.com/v1",
                            "credential": lc.Secret("sk-secret-key-123").fingerprint(), "path": "/chat/completions",
                            "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}
    changed = dict(base)
    changed[field] = base[field] + change if field != "body" else {**base["body"], "extra": change}
    assert cache_key(**base) != cache_key(**changed)
    assert "sk-secret-key-123" not in cache_key(**base) and len(cache_key(**base)) == 64


async def test_c2_single_flight() -> None:
    with FakeServer(SlowFake("cached answer")) as server:
        async with build_connector("openai", server.url, cache=CACHE) as conn:
            results: list[str] = []

            async def ask() -> None:
                results.append((await conn.generate_chat("m", USER)).content)

            async with anyio.create_task_group() as tg:
                for _ in range(100):
                    tg.start_soon(ask)
            again = await conn.generate_chat("m", USER)
            stats = conn.stats()["openai"]["cache"]
    assert results == ["cached answer"] * 100 and again.content == "cached answer"
    assert len(server.requests) == 1
    assert stats["misses"] == 1 and stats["shared"] + stats["hits"] == 100


async def test_single_flight_shares_an_error_but_does_not_cache_it() -> None:
    fake = SlowFake()
    fake.replies.append(Reply(500, {"content-type": "application/json"},
                              chunks=[0.2, b'{"error": {"message": "boom"}}']))
    with FakeServer(fake) as server:
        async with build_connector("openai", server.url, cache=CACHE) as conn:
            outcomes: list[str] = []

            async def ask() -> None:
                try:
                    await conn.generate_chat("m", USER)
                    outcomes.append("ok")
                except lc.ProviderError:
                    outcomes.append("error")

            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(ask)
            assert outcomes == ["error"] * 5 and len(server.requests) == 1
            assert (await conn.generate_chat("m", USER)).content == fake.text  # not cached: asked again
    assert len(server.requests) == 2


async def test_c3_never_cached() -> None:
    handler = ScriptedHandler()
    with FakeServer(handler) as server:
        async with build_connector("openai", server.url, cache=CACHE) as conn:
            handler.push(KIT.chat_reply("cut short", finish="length"), KIT.chat_reply("full"))
            assert (await conn.generate_chat("m", USER)).finish_reason == "length"
            assert (await conn.generate_chat("m", USER)).content == "full"  # length was not cached
            assert (await conn.generate_chat("m", USER)).content == "full"  # this one was
            handler.push(KIT.stream_error_reply(["a"]), KIT.stream_reply(["b"]))
            with pytest.raises(lc.StreamInterruptedError):
                await conn.generate_chat_stream("m", USER).collect()
            assert (await conn.generate_chat_stream("m", USER).collect()).content == "b"  # streams never cached
    assert len(server.requests) == 4  # length, full (then served from the cache), two streams


async def test_c4_ttl_expires_exactly() -> None:
    now = [1000.0]
    cache = ResponseCache(CacheConfig(ttl=10), timer=lambda: now[0])
    calls = 0

    async def compute() -> lc.EmbeddingResponse:
        nonlocal calls
        calls += 1
        return lc.EmbeddingResponse([[1.0]], "m", "p")

    await cache.get_or_call("k", compute)
    now[0] += 9.999
    await cache.get_or_call("k", compute)
    assert calls == 1
    now[0] += 0.001
    await cache.get_or_call("k", compute)
    assert calls == 2


async def test_keys_differ_by_options_credentials_and_provider() -> None:
    with FakeServer(OpenAIFake()) as server:
        async with build_connector("openai", server.url, cache=CACHE) as a, \
                build_connector("openai", server.url, cache=CACHE, api_key="other-tenant") as b:
            await a.generate_chat("m", USER)
            await a.generate_chat("m", USER, temperature=0.5)
            await b.generate_chat("m", USER)  # another key: never served from a's answers
            await a.generate_chat("m", USER)
    assert len(server.requests) == 3


async def test_embeddings_and_model_lists_are_cached() -> None:
    with FakeServer(OpenAIFake()) as server:
        async with build_connector("openai", server.url, cache=CACHE) as conn:
            first = await conn.generate_embedding("e", ["a", "b"])
            second = await conn.generate_embedding("e", ["a", "b"])
            assert first.embeddings == second.embeddings and first is not second
            assert [m.id for m in await conn.list_models()] == [m.id for m in await conn.list_models()]
    assert [r.path for r in server.requests] == ["/v1/embeddings", "/v1/models"]


def test_cache_config_validation() -> None:
    for bad in ({"maxsize": 0}, {"ttl": 0}, {"models_ttl": -1}):
        with pytest.raises(lc.ConfigurationError):
            CacheConfig(**bad)
    with pytest.raises(lc.ConfigurationError, match="unknown cache setting"):
        build_connector("openai", "http://127.0.0.1:1", cache={"size": 3})
