"""Fallback chains against real loopback servers: what moves on, what does not, streams, budgets."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

import llm_connectors as lc
from llm_connectors.http import pool as _pool
from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]
USER = [{"role": "user", "content": "Hi"}]
KIT = OpenAIWireKit()


class Member:
    """One chain member: a compatible provider id bound to its own fake server."""

    def __init__(self, provider: str, text: str) -> None:
        self.provider = provider
        self.fake = OpenAIFake(text)
        self.server = FakeServer(self.fake).start()
        lc.register_openai_compatible(provider, base_url=self.server.url + "/v1", default_model=f"{provider}-m",
                                      replace=True)

    @property
    def hits(self) -> int:
        return len(self.server.requests)


@pytest.fixture
def members() -> Iterator[list[Member]]:
    made = [Member("fb-a", "answer from a"), Member("fb-b", "answer from b"), Member("fb-c", "answer from c")]
    yield made
    for member in made:
        member.server.stop()


async def chain(*providers: str, **kwargs: object) -> lc.FallbackConnector:
    kwargs.setdefault("retry", False)  # these tests are about moving on, not retrying in place
    conn = await lc.get_connector(primary=providers[0], fallbacks=list(providers[1:]), **kwargs)
    assert isinstance(conn, lc.FallbackConnector)
    return conn


@pytest.mark.parametrize(("status", "message", "error"), [
    (500, "boom", lc.ProviderError),
    (503, "unavailable", lc.ProviderError),
    (529, "overloaded", lc.OverloadedError),
    (429, "slow down", lc.RateLimitError),
    (401, "bad key", lc.AuthenticationError),
    (403, "forbidden", lc.PermissionDeniedError),
    (404, "model not found", lc.NotFoundError),
    (400, "This model's maximum context length is 8192 tokens", lc.ContextWindowExceededError),
])
async def test_moves_on_for(members: list[Member], status: int, message: str, error: type[Exception]) -> None:
    a, b, _ = members
    a.fake.replies.append(KIT.error_reply(status, message))
    async with await chain("fb-a", "fb-b") as conn:
        resp = await conn.generate_chat(None, USER)
        stats = conn.stats()
    assert (resp.content, resp.provider) == ("answer from b", "fb-b")
    assert (a.hits, b.hits) == (1, 1)
    assert stats["fb-a"]["fallbacks"] == 1 and stats["fb-a"]["errors"] == {error.__name__: 1}
    assert stats["fb-b"]["successes"] == 1


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, {"error": {"message": "messages[0].content is invalid", "type": "invalid_request_error"}},
     lc.InvalidRequestError),
    (422, {"error": {"message": "extra fields"}}, lc.InvalidRequestError),
    (400, {"error": {"message": "flagged", "code": "content_policy_violation"}}, lc.ContentFilterError),
])
async def test_does_not_move_on_for_requests_that_fail_everywhere(members: list[Member], status: int,
                                                                  body: dict[str, object],
                                                                  error: type[Exception]) -> None:
    a, b, _ = members
    a.fake.replies.append(Reply.json(body, status))
    async with await chain("fb-a", "fb-b") as conn:
        with pytest.raises(error):
            await conn.generate_chat(None, USER)
    assert (a.hits, b.hits) == (1, 0)


async def test_all_failed_carries_every_cause(members: list[Member]) -> None:
    a, b, c = members
    a.fake.replies.append(KIT.error_reply(503, "a down"))
    b.fake.replies.append(KIT.error_reply(429, "b busy", headers={"retry-after": "4"}))
    c.fake.replies.append(KIT.error_reply(401, "c key"))
    async with await chain("fb-a", "fb-b", "fb-c") as conn:
        with pytest.raises(lc.AllProvidersFailedError) as info:
            await conn.generate_chat(None, USER)
    causes = info.value.errors
    assert [(type(e), e.provider) for e in causes] == [
        (lc.ProviderError, "fb-a"), (lc.RateLimitError, "fb-b"), (lc.AuthenticationError, "fb-c")]
    assert info.value.retry_after == 4.0
    assert "fb-a: ProviderError: a down" in str(info.value)


async def test_missing_capability_is_skipped_before_io(members: list[Member]) -> None:
    a = members[0]
    lc.register_openai_compatible("fb-a", base_url=a.server.url + "/v1", replace=True,
                                  capabilities=["chat", "streaming"])
    async with await chain("fb-a", "fb-b") as conn:
        emb = await conn.generate_embedding("fake-embed", ["x"])
    assert emb.provider == "fb-b" and a.hits == 0


async def test_invalid_for_every_member_raises_at_once(members: list[Member]) -> None:
    async with await chain("fb-a", "fb-b") as conn:
        with pytest.raises(lc.InvalidRequestError, match="between 0 and 2"):
            await conn.generate_chat(None, USER, temperature=5)
        with pytest.raises(lc.InvalidRequestError, match="Did you mean 'temperature'"):
            await conn.generate_chat(None, USER, temprature=1)
    assert sum(m.hits for m in members) == 0


async def test_invalid_for_one_member_only_skips_it(members: list[Member]) -> None:
    a = members[0]
    strict = lc.register_openai_compatible("fb-a", base_url=a.server.url + "/v1", replace=True)
    strict.definition = strict.definition.with_changes(parameters=tuple(
        p if p.name != "temperature" else lc.ParameterDefinition("temperature", "number", maximum=1.0, minimum=0.0)
        for p in strict.definition.parameters))
    async with await chain("fb-a", "fb-b") as conn:
        resp = await conn.generate_chat(None, USER, temperature=1.5)
    assert resp.provider == "fb-b" and a.hits == 0


async def test_provider_model_routing(members: list[Member]) -> None:
    a, b, _ = members
    async with await chain("fb-a", "fb-b") as conn:
        await conn.generate_chat("fb-b:special", USER)
        assert (a.hits, b.hits) == (0, 1) and b.server.requests[0].json()["model"] == "special"
        b.fake.replies.append(KIT.error_reply(503, "down"))
        with pytest.raises(lc.ProviderError):  # routed calls do not silently go elsewhere
            await conn.generate_chat("fb-b:special", USER)
        assert a.hits == 0
        await conn.generate_chat(None, USER)
        assert a.server.requests[-1].json()["model"] == "fb-a-m"  # each member's own default
        with pytest.raises(lc.InvalidRequestError, match="not in this chain"):
            await conn.generate_chat("openai:gpt-4.1", USER)


async def test_stream_falls_back_before_the_first_chunk(members: list[Member]) -> None:
    a, b, _ = members
    a.fake.replies.append(KIT.stream_error_reply([], kind="overloaded"))
    async with await chain("fb-a", "fb-b") as conn, conn.generate_chat_stream(None, USER) as stream:
        text = "".join([c.delta async for c in stream])
    assert text == "answer from b" and stream.provider == "fb-b"
    assert stream.response.provider == "fb-b" and (a.hits, b.hits) == (1, 1)


async def test_stream_never_falls_back_after_the_first_chunk(members: list[Member]) -> None:
    a, b, _ = members
    a.fake.replies.append(KIT.stream_error_reply(["partial ", "answer"], kind="overloaded"))
    delivered: list[str] = []
    async with await chain("fb-a", "fb-b") as conn:
        with pytest.raises(lc.StreamInterruptedError) as info:
            async for chunk in conn.generate_chat_stream(None, USER):
                delivered.append(chunk.delta)
    assert info.value.partial == "partial answer" == "".join(delivered)
    assert info.value.provider == "fb-a" and b.hits == 0  # nothing re-sent, nothing delivered twice


async def test_stream_all_fail_before_first_chunk(members: list[Member]) -> None:
    a, b, _ = members
    a.fake.replies.append(KIT.error_reply(500, "x"))
    b.fake.replies.append(KIT.stream_error_reply([], kind="api"))
    async with await chain("fb-a", "fb-b") as conn:
        with pytest.raises(lc.AllProvidersFailedError) as info:
            await conn.generate_chat_stream(None, USER).collect()
    assert [e.provider for e in info.value.errors] == ["fb-a", "fb-b"]


async def test_one_deadline_for_the_whole_chain(members: list[Member]) -> None:
    a, b, _ = members
    a.fake.replies.append(Reply.sse([10.0]))  # headers, then silence
    async with await chain("fb-a", "fb-b") as conn:
        started = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(lc.LLMConnectorError) as info:
            await conn.generate_chat_stream(None, USER, timeout=0.5).collect()
        elapsed = anyio.current_time() - started
    assert elapsed < 1.5
    assert isinstance(info.value, (lc.TimeoutError, lc.AllProvidersFailedError))
    assert b.hits == 0  # the budget was spent on fb-a; fb-b was not started past the deadline


async def test_chain_surface(members: list[Member]) -> None:
    async with await chain("fb-a", "fb-b") as conn:
        assert "embeddings" in conn.capabilities and conn.definition.id == "fallback"
        assert await conn.health_check()
        models = await conn.list_models()
        assert "fb-a:fake-model" in [m.id for m in models] and "fb-b:fake-model" in [m.id for m in models]
        assert repr(conn) == "<FallbackConnector fb-a -> fb-b>"
        assert set(conn.stats()) == {"fb-a", "fb-b"}
        assert conn.is_compatible_model("anything")


async def test_connections_are_shared_and_closed(members: list[Member]) -> None:
    a, _, _ = members
    before = _pool.open_clients()
    first = await lc.get_connector("fb-a")
    second = await lc.get_connector("fb-a")
    chained = await chain("fb-a", "fb-b")
    await first.generate_chat(None, USER)
    await second.generate_chat(None, USER)
    await chained.generate_chat(None, USER)
    assert _pool.open_clients() == before + 1  # one client for fb-a, shared three ways
    assert a.server.total_connections == 1
    for conn in (first, second, chained):
        await conn.aclose()
    assert _pool.open_clients() == before
