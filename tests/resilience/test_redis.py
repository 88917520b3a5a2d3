"""Shared state against a real redis-server, in one process (issue #6).

Two "processes" are simulated in one by giving each its own :class:`SharedState` (they differ
only in ``timeout``): each then has its own link, process id, local logs and cached status,
and they meet only in Redis. Real separate processes are in test_redis_multiprocess.py.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors.resilience import CircuitBreakerConfig, RateLimit, shared
from llm_connectors.resilience.breaker import Breaker
from llm_connectors.resilience.ratelimit import Cooldown
from llm_connectors.resilience.shared import SharedState, coerce_shared_state, link_for, mask_url, scope_for
from llm_connectors.resilience.shared_breaker import SharedBreaker
from llm_connectors.resilience.shared_limiter import SharedPermit, SharedRateLimiter
from llm_connectors.testing import FakeServer
from llm_connectors.testing.kit import TEST_KEY
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit

if TYPE_CHECKING:
    from redis_server import RedisServer

pytest_plugins = ["redis_server"]
pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.usefixtures("redis_client_installed")]
USER = [{"role": "user", "content": "Hi"}]
BASE = "http://provider.test/v1"


def process(url: str, n: int, timeout: float | None = None, **options: Any) -> SharedState:
    """The setting a simulated process ``n`` uses: its own link, the same keys. The short default
    timeout makes the outage tests quick; tests of many concurrent calls pass a longer one, so a
    loaded machine does not read as an outage. (``n / 1000`` keeps each process's settings, and so its
    link, its own.)"""
    state = SharedState.from_url(url)
    return SharedState(state.url, key_prefix=state.key_prefix, timeout=(timeout or 0.25) + n / 1000, **options)


def limiter(state: SharedState, config: RateLimit | None, period: float = 60.0) -> SharedRateLimiter:
    return SharedRateLimiter("p", config, Cooldown(), scope_for(state, "p", BASE), period=period)


def outstanding(client: Any, key: str, ms_per_unit: float) -> float:
    """Units a Redis bucket is in debt by, now on the server's clock (0: full)."""
    seconds, micros = client.time()
    tat = float(client.get(key) or 0)
    return max(0.0, tat - (seconds * 1000 + micros / 1000)) / ms_per_unit


def flush(*states: SharedState) -> None:
    for state in states:
        link_for(state).flush()


@pytest.fixture
def fake() -> Iterator[tuple[OpenAIFake, FakeServer]]:
    handler = OpenAIFake()
    with FakeServer(handler) as server:
        yield handler, server


def chat_posts(server: FakeServer) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/chat/completions"))


# -- configuration ----------------------------------------------------------------------------------

def test_url_options_and_forms() -> None:
    state = coerce_shared_state("redis://:pw@cache.internal:6380/2?expected_processes=8&key_prefix=billing"
                                "&timeout=0.1&refresh_interval=0&window_margin=0.5&socket_keepalive=true")
    assert state is not None
    assert (state.expected_processes, state.key_prefix, state.timeout, state.refresh_interval,
            state.window_margin) == (8, "billing", 0.1, 0.0, 0.5)
    assert "expected_processes" not in state.redis_url and "socket_keepalive=true" in state.redis_url
    same = coerce_shared_state({"url": "redis://:pw@cache.internal:6380/2", "expected_processes": 8,
                                "key_prefix": "billing", "timeout": 0.1, "refresh_interval": 0, "window_margin": 0.5})
    assert same is not None and same.expected_processes == 8 and same.key_prefix == "billing"
    assert coerce_shared_state(None) is None and coerce_shared_state(False) is None
    assert coerce_shared_state(state) is state
    assert coerce_shared_state("unix:///run/redis.sock?db=1") is not None


@pytest.mark.parametrize(("value", "message"), [
    ("http://host:6379", "must start with redis://"),
    ("redis://", "has no host"),
    ("redis://h:6379/0?expected_processes=many", "is not a number"),
    ("redis://h:6379/0?expected_processes=0", "expected_processes must be"),
    ("redis://h:6379/0?key_prefix=a%20b", "key_prefix must be"),
    ("redis://h:6379/0?timeout=0", "timeout must be"),
    ("redis://h:6379/0?window_margin=-1", "window_margin must be"),
    ("redis://h:notaport/0", "not a valid redis URL"),
    (True, "must be a redis URL"),
    (6379, "must be a redis URL"),
    ({"host": "h"}, "unknown shared_state setting"),
    ({"expected_processes": 2}, "needs 'url'"),
])
def test_bad_settings_fail_at_construction(value: Any, message: str) -> None:
    with pytest.raises(lc.ConfigurationError, match=message):
        coerce_shared_state(value)
    with pytest.raises(lc.ConfigurationError, match=message):
        build_connector("openai", "http://127.0.0.1:1", shared_state=value)


def test_missing_redis_client_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.connection", None)
    with pytest.raises(lc.ConfigurationError, match=r"pip install 'llm-connectors-sdk\[redis\]'"):
        coerce_shared_state("redis://h:6379/0")


def test_passwords_never_shown(canary_key: str) -> None:
    url = f"redis://app:{canary_key}@h:6379/0?password={canary_key}"
    state = coerce_shared_state(url)
    assert state is not None
    for text in (repr(state), str(state), state.masked_url, mask_url(url), mask_url(f"redis://{canary_key}@h")):
        assert canary_key not in text and "***" in text
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"
    with pytest.raises(lc.ConfigurationError) as info:
        coerce_shared_state(f"http://:{canary_key}@h")
    assert canary_key not in str(info.value)


async def test_dict_config_gives_every_chain_member_the_shared_state(shared_url: str) -> None:
    members = [{"provider": p, "api_key": TEST_KEY, "base_url": "http://127.0.0.1:9/v1"} for p in ("openai", "mistral")]
    async with lc.get_connector({"primary": members[0], "fallbacks": [members[1]], "shared_state": shared_url}) as conn:
        assert isinstance(conn, lc.FallbackConnector)
        expected = coerce_shared_state(shared_url)
        assert [m._pipeline.policies.shared_state for m in conn.members] == [expected, expected]


# -- rate limits ------------------------------------------------------------------------------------

async def test_two_processes_pace_as_one(shared_url: str) -> None:
    """20 callers in two processes at 5 per (shortened) 0.5 s period with a burst of 2, counted on
    Redis's own clock: in every window w at most 10*w + 2, and the rate is used."""
    a, b = (limiter(process(shared_url, n, window_margin=0.0), RateLimit(requests_per_minute=5, burst=2), period=0.5)
            for n in (1, 2))
    admitted: list[float] = []

    async def call(lim: SharedRateLimiter) -> None:
        permit = await lim.acquire(0, None)
        assert isinstance(permit, SharedPermit) and permit.admitted_at is not None
        admitted.append(permit.admitted_at / 1000)
        permit.release()

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(call, a if i % 2 else b)
    admitted.sort()
    excess = max(j - i + 1 - 10 * (admitted[j] - admitted[i]) for i in range(20) for j in range(i, 20))
    assert excess <= 2 + 1e-6
    assert admitted[-1] - admitted[0] == pytest.approx(1.8, abs=0.15)  # 2 at once, then one per 0.1 s
    assert {lim.shared for lim in (a, b)} == {True}


async def test_tokens_are_reserved_reconciled_and_refunded_across_processes(shared_url: str) -> None:
    pa, pb = process(shared_url, 1), process(shared_url, 2)
    config = RateLimit(tokens_per_minute=1000, token_burst=1000)
    a, b = limiter(pa, config), limiter(pb, config)
    scope = a.scope
    client = link_for(pa).client
    ms = a.fleet_period * 1000 / 1000  # per token, with the default 1 s margin
    first = await a.acquire(600, None)
    with pytest.raises(lc.RateLimitError, match="would pass the call's deadline") as info:
        await b.acquire(600, anyio.current_time() + 0.2)
    assert info.value.retry_after is not None and 11 < info.value.retry_after <= 12.3  # 200 tokens at 1000/61 s
    first.reconcile(100)  # the provider reported 100 tokens: 500 come back to the fleet
    flush(pa)
    assert outstanding(client, scope.tokens, ms) == pytest.approx(100, abs=5)
    second = await b.acquire(600, anyio.current_time() + 0.2)
    assert outstanding(client, scope.tokens, ms) == pytest.approx(700, abs=5)
    second.refund()  # failed or cancelled: nothing used
    flush(pb)
    assert outstanding(client, scope.tokens, ms) == pytest.approx(100, abs=5)
    with pytest.raises(lc.RateLimitError, match="can never fit") as never:
        await a.acquire(1001, None)
    assert never.value.retryable is False
    first.release()
    second.release()


@pytest.mark.parametrize("config", [RateLimit(requests_per_minute=1000), None], ids=["limited", "cooldown-only"])
async def test_retry_after_in_one_process_pauses_another(shared_url: str, config: RateLimit | None) -> None:
    pa, pb = process(shared_url, 1), process(shared_url, 2, refresh_interval=0.0)
    a, b = limiter(pa, config), limiter(pb, config)
    (await b.acquire(1, None)).release()  # B has read the (empty) status already
    a.note_retry_after(1.0)
    flush(pa)
    started = anyio.current_time()
    with pytest.raises(lc.RateLimitError) as info:
        await b.acquire(1, started + 0.3)
    assert info.value.retry_after is not None and 0.7 < info.value.retry_after <= 1.0
    (await b.acquire(1, None)).release()
    assert 0.7 < anyio.current_time() - started < 1.5


async def test_limiter_without_redis_keeps_to_its_share_and_never_fails_a_call(
        caplog: pytest.LogCaptureFixture) -> None:
    state = SharedState(f"redis://127.0.0.1:{_closed_port()}/0", expected_processes=4, timeout=0.2)
    requests = limiter(state, RateLimit(requests_per_minute=40, burst=40))
    tokens = limiter(state, RateLimit(tokens_per_minute=400))
    with caplog.at_level(logging.DEBUG, logger="llm_connectors.shared"):
        for _ in range(10):  # 40 / 4 processes = 10 a minute here, and a burst of 10
            (await requests.acquire(0, anyio.current_time() + 1)).release()
        with pytest.raises(lc.RateLimitError, match="would pass the call's deadline"):
            await requests.acquire(0, anyio.current_time() + 0.5)
        (await tokens.acquire(150, anyio.current_time() + 1)).release()  # over 400 / 4, but fits alone
        with pytest.raises(lc.RateLimitError, match="would pass the call's deadline"):
            await tokens.acquire(1, anyio.current_time() + 0.5)
    warnings = [r for r in caplog.records if r.name == "llm_connectors.shared" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
    assert not requests.shared
    assert requests.local_limits() == RateLimit(requests_per_minute=10, burst=10)
    assert tokens.local_limits() == RateLimit(tokens_per_minute=100, token_burst=1)


# -- circuit breakers -------------------------------------------------------------------------------

def breaker_pair(url: str, timeout: float | None = None, **config: Any) -> tuple[SharedBreaker, SharedBreaker]:
    settings = CircuitBreakerConfig(**config)
    return tuple(SharedBreaker(Breaker(f"p@{BASE}", settings),  # type: ignore[return-value]
                               scope_for(process(url, n, timeout), "p", BASE))
                 for n in (1, 2))


def fail(breaker: SharedBreaker, times: int) -> None:
    for _ in range(times):
        breaker.local.end(False, lc.ProviderError("down", status_code=503))


async def test_a_circuit_opened_in_one_process_refuses_in_the_other_within_a_second(shared_url: str) -> None:
    a, b = breaker_pair(shared_url, failure_threshold=3, reset_timeout=30)
    assert await b.admit(None) is None  # B has a fresh "closed" status cached
    fail(a, 3)
    opened = time.monotonic()
    assert a.local.state == "open"
    refused: lc.CircuitOpenError | None = None
    for _ in range(200):  # 10 ms apart: bounded at 2 s
        try:
            await b.admit(None)
        except lc.CircuitOpenError as exc:
            refused = exc
            break
        await anyio.sleep(0.01)
    refused_after = time.monotonic() - opened
    assert refused is not None and refused_after <= 1.0
    assert refused.retry_after is not None and 28 < refused.retry_after <= 30
    assert b.local.state == "closed" and b.local.transitions == {}  # B's own breaker saw nothing
    assert b.snapshot() == {"fleet_state": "open"}


async def test_half_open_admits_one_probe_across_processes(shared_url: str, redis_server: RedisServer) -> None:
    a, b = breaker_pair(shared_url, timeout=5.0, failure_threshold=2, reset_timeout=0.3)
    both = (process(shared_url, 1, 5.0), process(shared_url, 2, 5.0))
    fail(a, 2)
    flush(*both)
    await anyio.sleep(0.35)
    leases: list[str] = []
    refused = 0

    async def admit(breaker: SharedBreaker) -> None:
        nonlocal refused
        try:
            lease = await breaker.admit(None)
        except lc.CircuitOpenError:
            refused += 1
            return
        assert lease is not None
        leases.append(lease)

    async with anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(admit, a if i % 2 else b)
    assert len(leases) == 1 and refused == 99
    winner = a if leases[0].startswith(link_for(both[0]).process_id + "-") else b
    other = b if winner is a else a
    # The probe is cancelled: it proves nothing, and another may go.
    winner.finish(leases[0], BaseException("cancelled"), finished=False)
    flush(*both)
    other.scope.forget()  # (it cached "a probe is in flight" for up to refresh_interval)
    second = await other.admit(None)
    assert second is not None
    # That one fails: open again, for everyone.
    other.finish(second, lc.ProviderError("still down", status_code=503))
    flush(*both)
    winner.scope.forget()
    with pytest.raises(lc.CircuitOpenError):
        await winner.admit(None)
    # After the next reset a probe succeeds: closed, for everyone.
    await anyio.sleep(0.35)
    third = await winner.admit(None)
    assert third is not None
    winner.finish(third, None)
    flush(*both)
    client = redis_server.client()
    assert client.exists(a.scope.circuit, a.scope.probe) == 0
    client.close()
    other.scope.forget()
    assert await other.admit(None) is None


async def test_client_errors_end_a_probe_as_a_success(shared_url: str) -> None:
    a, b = breaker_pair(shared_url, failure_threshold=1, reset_timeout=0.2)
    fail(a, 1)
    flush(process(shared_url, 1))
    await anyio.sleep(0.25)
    lease = await b.admit(None)
    assert lease is not None
    b.finish(lease, lc.InvalidRequestError("bad request", status_code=400))  # the provider answered: it is up
    flush(process(shared_url, 2))
    a.scope.forget()
    assert await a.admit(None) is None  # closed in Redis; A's own breaker still sends its own probe


# -- through connectors -----------------------------------------------------------------------------

async def test_connector_limits_are_shared_with_another_process(fake: tuple[OpenAIFake, FakeServer],
                                                                shared_url: str) -> None:
    _, server = fake
    kit = OpenAIWireKit()
    limit = {"requests_per_minute": 3, "burst": 3}
    one = build_connector(kit, server.url, rate_limit=limit, shared_state=process(shared_url, 1))
    two = build_connector(kit, server.url, rate_limit=limit, shared_state=process(shared_url, 2))
    async with one, two:
        for conn in (one, two, one):
            await conn.generate_chat("m", USER)
        with pytest.raises(lc.RateLimitError, match="would pass the call's deadline"):
            await two.generate_chat("m", USER, timeout=0.5)
        stats = two.stats()["openai"]
    assert chat_posts(server) == 3
    assert stats["shared_state"]["mode"] == "shared" and "***" not in stats["shared_state"]["url"]


async def test_cache_lives_in_redis_as_json(fake: tuple[OpenAIFake, FakeServer], shared_url: str,
                                            redis_server: RedisServer) -> None:
    _, server = fake
    kit = OpenAIWireKit()
    options = {"cache": lc.CacheConfig(ttl=30), "shared_state": shared_url}
    async with build_connector(kit, server.url, **options) as conn:
        first = await conn.generate_chat("m", USER)
        vectors = await conn.generate_embedding("fake-embed", ["a", "b"])
        models = await conn.list_models()
    flush(coerce_shared_state(shared_url))  # type: ignore[arg-type]
    from llm_connectors.resilience import reset_shared_state

    reset_shared_state()  # nothing of it is left in this process: the next answers come from Redis
    async with build_connector(kit, server.url, **options) as conn:
        again = await conn.generate_chat("m", USER)
        vectors_again = await conn.generate_embedding("fake-embed", ["a", "b"])
        models_again = await conn.list_models()
        assert conn.stats()["openai"]["cache"]["hits"] == 3
    assert (again.content, again.usage, again.model) == (first.content, first.usage, first.model)
    assert vectors_again.embeddings == vectors.embeddings
    assert [m.id for m in models_again] == [m.id for m in models]
    assert chat_posts(server) == 1
    client = redis_server.client()
    prefix = coerce_shared_state(shared_url).key_prefix  # type: ignore[union-attr]
    keys = sorted(k.decode() for k in client.keys(f"{prefix}:cache:*"))
    assert len(keys) == 2
    entries = [json.loads(client.get(k)) for k in keys]
    assert sorted(e["kind"] for e in entries) == ["chat", "embedding"] and all(e["v"] == 1 for e in entries)
    assert 0 < client.pttl(keys[0]) <= 30_000
    assert len(client.keys(f"{prefix}:models:*")) == 1
    client.close()


async def test_streams_reconcile_tokens_in_redis_when_they_end(fake: tuple[OpenAIFake, FakeServer],
                                                               shared_url: str) -> None:
    _, server = fake
    state = coerce_shared_state(shared_url)
    assert state is not None
    async with build_connector("openai", server.url, shared_state=state, circuit_breaker=True,
                                              rate_limit={"tokens_per_minute": 600}) as conn:
        async with conn.generate_chat_stream("m", USER, max_tokens=500) as stream:
            text = "".join([chunk.delta async for chunk in stream])
        usage = stream.response.usage if stream.response is not None else None
    flush(state)
    assert text == "Hello from the fake provider." and usage is not None and usage.total_tokens
    client = link_for(state).client
    key = scope_for(state, "openai", server.url + "/v1").tokens
    ms = 61_000 / 600  # per token: 600 a minute with the default 1 s margin
    # The 500-odd tokens reserved became the usage reported (less what has flowed back since).
    assert usage.total_tokens - 10 <= outstanding(client, key, ms) <= usage.total_tokens


def test_the_sync_api_shares_state_too(fake: tuple[OpenAIFake, FakeServer], shared_url: str) -> None:
    from llm_connectors import sync

    _, server = fake
    member = {"provider": "openai", "api_key": TEST_KEY, "base_url": server.url + "/v1"}
    with sync.get_connector({"primary": member, "shared_state": shared_url,
                             "rate_limit": {"requests_per_minute": 2, "burst": 2}}) as conn:
        conn.generate_chat("m", USER)
        conn.generate_chat("m", USER)
        with pytest.raises(lc.RateLimitError):
            conn.generate_chat("m", USER, timeout=0.5)
        assert conn.stats()["openai"]["shared_state"]["mode"] == "shared"


@pytest.mark.parametrize("tampered", [
    b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94.",  # a pickle
    b"{not json", b'{"v": 1, "kind": "chat", "data": {"content": 5}}', b'{"v": 99}', b"[]",
    b'{"v": 1, "kind": "embedding", "data": {"embeddings": [["x"]], "model": "m", "provider": "p"}}',
])
async def test_tampered_cache_entries_read_as_misses(fake: tuple[OpenAIFake, FakeServer], shared_url: str,
                                                     redis_server: RedisServer, tampered: bytes) -> None:
    _, server = fake
    kit = OpenAIWireKit()
    async with build_connector(kit, server.url, cache=True, shared_state=shared_url) as conn:
        await conn.generate_chat("m", USER)
        flush(coerce_shared_state(shared_url))  # type: ignore[arg-type]
        client = redis_server.client()
        prefix = coerce_shared_state(shared_url).key_prefix  # type: ignore[union-attr]
        (key,) = client.keys(f"{prefix}:cache:*")
        client.set(key, tampered)
        client.close()
        answer = await conn.generate_chat("m", USER)
    assert answer.content == "Hello from the fake provider."
    assert chat_posts(server) == 2


# -- Redis unavailable, dying, hanging ----------------------------------------------------------------

def _closed_port() -> int:
    from redis_server import free_port

    return free_port()


async def test_unreachable_at_start_degrades_and_logs_once(fake: tuple[OpenAIFake, FakeServer],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    _, server = fake
    url = f"redis://127.0.0.1:{_closed_port()}/0?expected_processes=2"
    with caplog.at_level(logging.DEBUG, logger="llm_connectors.shared"):
        async with build_connector("openai", server.url, shared_state=url, cache=True, circuit_breaker=True,
                                                  rate_limit={"requests_per_minute": 1000}) as conn:
            for _ in range(20):
                await conn.generate_chat("m", USER)
            stats = conn.stats()["openai"]
    assert chat_posts(server) == 1  # the local cache served the rest
    assert stats["shared_state"]["mode"] == "degraded" and stats["cache"]["hits"] == 19
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "is unavailable" in warnings[0] and "calls go on" in warnings[0]


async def test_redis_dies_mid_run_and_comes_back(fake: tuple[OpenAIFake, FakeServer], own_redis: RedisServer,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    _, server = fake
    url = f"{own_redis.url}?key_prefix=mid"
    state = coerce_shared_state(url)
    assert state is not None
    with caplog.at_level(logging.DEBUG, logger="llm_connectors.shared"):
        async with build_connector("openai", server.url, shared_state=url, circuit_breaker=True,
                                                  rate_limit={"requests_per_minute": 10_000}) as conn:
            for _ in range(5):
                await conn.generate_chat("m", USER)
            own_redis.kill()
            for _ in range(5):  # no call fails because of Redis
                await conn.generate_chat("m", USER)
            assert conn.stats()["openai"]["shared_state"]["mode"] == "degraded"
            own_redis.start()
            back = anyio.current_time()
            for _ in range(300):  # bounded: 300 x 10 ms
                await conn.generate_chat("m", USER)
                if conn.stats()["openai"]["shared_state"]["mode"] == "shared":
                    break
                await anyio.sleep(0.01)
            resumed = anyio.current_time() - back
    assert resumed <= 2.0
    client = own_redis.client()
    # The call that found Redis back was admitted by the restarted (empty) Redis: its bucket is there.
    assert client.exists(scope_for(state, "openai", server.url + "/v1").requests) == 1
    client.close()
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "llm_connectors.shared"]
    assert sum(1 for level, _ in messages if level == logging.WARNING) == 1
    assert any("reachable again" in m for level, m in messages if level == logging.INFO)


async def test_a_hung_redis_costs_a_call_at_most_one_timeout(fake: tuple[OpenAIFake, FakeServer],
                                                             own_redis: RedisServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not timed: how many Redis calls each chat waited for while Redis hung.

    Every such wait ends at the 0.2 s timeout (the test could not finish otherwise: Redis stays
    paused until the end); the first reconnect try is put off past the test, so a wait after the
    first would be a call that did not fall back to local state.
    """
    _, server = fake
    url = f"{own_redis.url}?key_prefix=hung&timeout=0.2"
    monkeypatch.setattr(shared, "BACKOFF_FIRST", 600.0)
    waits: list[int] = []
    admit = shared.RedisLink._admit

    def counting_admit(link: shared.RedisLink) -> bool:
        probe = admit(link)  # raises SharedUnavailable (nothing waited) while degraded
        waits[-1] += 1
        return probe

    async with build_connector("openai", server.url, shared_state=url, circuit_breaker=True,
                               rate_limit={"requests_per_minute": 10_000}) as conn:
        await conn.generate_chat("m", USER)
        own_redis.pause()
        monkeypatch.setattr(shared.RedisLink, "_admit", counting_admit)
        try:
            for _ in range(10):
                waits.append(0)
                await conn.generate_chat("m", USER)
        finally:
            own_redis.resume()
        mode = conn.stats()["openai"]["shared_state"]["mode"]
    # Breaker status and limiter: one timeout each at worst; then local, with no wait at all.
    assert mode == "degraded" and 1 <= sum(waits) <= 2, waits


async def test_a_password_in_the_url_is_used_and_never_logged(
        fake: tuple[OpenAIFake, FakeServer], redis_server: RedisServer, key_prefix: str, canary_key: str,
        caplog: pytest.LogCaptureFixture) -> None:
    _, server = fake
    client = redis_server.client()
    user = f"u{key_prefix}"
    client.execute_command("ACL", "SETUSER", user, "on", f">{canary_key}", "~*", "&*", "+@all")
    client.close()
    good = f"redis://{user}:{canary_key}@127.0.0.1:{redis_server.port}/0?key_prefix={key_prefix}"
    bad = f"redis://{user}:{canary_key}x@127.0.0.1:{redis_server.port}/0?key_prefix={key_prefix}b"
    with caplog.at_level(logging.DEBUG):
        async with build_connector("openai", server.url, shared_state=good,
                                                  rate_limit={"requests_per_minute": 100}) as conn:
            await conn.generate_chat("m", USER)
            assert conn.stats()["openai"]["shared_state"]["mode"] == "shared"
            assert canary_key not in repr(conn.stats())
        async with build_connector("openai", server.url, shared_state=bad,
                                                  rate_limit={"requests_per_minute": 100}) as conn:
            await conn.generate_chat("m", USER)
            assert conn.stats()["openai"]["shared_state"]["mode"] == "degraded"
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert f"{user}:***@127.0.0.1" in warning and canary_key not in warning
    # (the suite-wide canary scan also checks every log record of this test)


# -- overhead --------------------------------------------------------------------------------------

async def test_acquire_overhead_on_loopback(shared_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The overhead is one Redis round trip per admission, counted as the link makes them.

    (RELIABILITY L7 targets p99 < 2 ms on loopback; that figure is printed, not asserted: it
    measures the machine as much as the code.)
    """
    lim = limiter(process(shared_url, 1), RateLimit(requests_per_minute=100_000, tokens_per_minute=10_000_000,
                                                   burst=1000, token_burst=100_000))  # never waits
    sent: list[str] = []
    script = shared.RedisLink.script

    def counted(link: shared.RedisLink, name: str, keys: list[str], args: list[Any]) -> Any:
        sent.append(name)
        return script(link, name, keys, args)

    monkeypatch.setattr(shared.RedisLink, "script", counted)
    took = []
    for _ in range(300):
        started = time.perf_counter()
        (await lim.acquire(10, None)).release()
        took.append(time.perf_counter() - started)
    took.sort()
    p50, p99 = took[len(took) // 2], took[int(len(took) * 0.99)]
    print(f"\nshared acquire on loopback: p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, "
          f"{len(sent) / 300:.2f} round trips each")
    # One script per admission; the endpoint's status is read once per refresh_interval at most.
    assert sent.count("ACQUIRE") == 300 and set(sent) <= {"ACQUIRE", "STATUS"} and math.isfinite(p99)


def test_cache_codec_round_trips_every_field() -> None:
    from llm_connectors.resilience import cache_codec

    response = lc.ChatResponse(content="hi", finish_reason="tool_calls", usage=lc.Usage.of(3, 4),
                               tool_calls=[lc.ToolCall("c1", "f", {"x": [1, {"y": None}]}, '{"x":[1,{"y":null}]}')],
                               provider="p", model="m", raw={"id": "r"}, id="r", reasoning="think",
                               reasoning_blocks=[lc.ReasoningBlock("think", "sig")], native_finish_reason="tool_use")
    blob = cache_codec.encode(response)
    assert blob is not None and cache_codec.decode(blob) == response
    assert cache_codec.encode(object()) is None
    assert cache_codec.encode(lc.ChatResponse("x" * (9 << 20), "stop", lc.Usage(), [], "p", "m")) is None


@pytest.mark.nightly
async def test_b10_event_loop_lag_with_shared_state(fake: tuple[OpenAIFake, FakeServer], shared_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis calls never run on the event loop's thread, under 500 calls a second (RELIABILITY B10).

    B10's figure, a 1 ms sleeper's p99 lag under 5 ms, is printed; what it is there to catch, a
    blocking Redis call on the loop, is asserted directly: no Redis command runs on the loop's thread.
    """
    import redis

    _, server = fake
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    execute = redis.Redis.execute_command

    def recorded(client: redis.Redis, *args: Any, **options: Any) -> Any:
        threads.add(threading.get_ident())
        return execute(client, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", recorded)
    lags: list[float] = []
    async with build_connector("openai", server.url, shared_state=shared_url, circuit_breaker=True,
                               rate_limit={"requests_per_minute": 10**6, "tokens_per_minute": 10**9},
                               cache=True) as conn:
        end = anyio.current_time() + 20.0

        async def probe() -> None:
            while anyio.current_time() < end:
                started = time.perf_counter()
                await anyio.sleep(0.001)
                lags.append(time.perf_counter() - started - 0.001)

        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            for i in range(10**6):  # bounded; the end time stops it
                if anyio.current_time() >= end:
                    break
                tg.start_soon(conn.generate_chat, "m", f"hi {i}")
                await anyio.sleep(1 / 500)
        mode = conn.stats()["openai"]["shared_state"]["mode"]
    lags.sort()
    print(f"\nloop lag with shared state: p50 {lags[len(lags) // 2] * 1e3:.2f} ms, "
          f"p99 {lags[int(len(lags) * 0.99)] * 1e3:.2f} ms")
    assert mode == "shared" and threads and loop_thread not in threads
