"""Retries and circuit breakers against real loopback servers (RELIABILITY.md §8 R1, R4, R7, R8, B1-B8)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from builders import build_connector, wire_kit

import llm_connectors as lc
from llm_connectors.requests import ChatRequest
from llm_connectors.resilience import CircuitBreakerConfig, RetryPolicy
from llm_connectors.resilience.policies import Resilience
from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.faults import Fault, FaultProxy
from llm_connectors.testing.kit import ScriptedHandler, WireKit
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]
USER = [{"role": "user", "content": "Hi"}]
FAST = RetryPolicy(max_retries=1, initial_delay=0.001, max_delay=0.001, min_delay=0.0, budget=False)
PROVIDERS = ["openai", "claude", "mistral", "ollama"]


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedHandler, FakeServer]]:
    handler = ScriptedHandler()
    with FakeServer(handler) as server:
        yield handler, server


# -- R1: the classification matrix, per provider ------------------------------------------------

RETRIED = {408, 409, 429, 500, 502, 503, 504, 529}
COUNTED = {408, 500, 502, 503, 504, 529}  # provider-health failures (409 is a lock conflict)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529])
@pytest.mark.parametrize("should_retry", [None, "true", "false"])
async def test_r1_classification_matrix(provider: str, status: int, should_retry: str | None,
                                        scripted: tuple[ScriptedHandler, FakeServer]) -> None:
    handler, server = scripted
    kit = wire_kit(provider)
    headers = {"x-should-retry": should_retry} if should_retry else {}
    handler.push(kit.error_reply(status, "scripted failure", headers=headers), kit.chat_reply("recovered"))
    expect_retry = should_retry == "true" or (status in RETRIED and should_retry != "false")
    async with build_connector(kit, server.url, retry=FAST, circuit_breaker=CircuitBreakerConfig()) as conn:
        if expect_retry:
            resp = await conn.generate_chat(kit.model, USER)
            assert resp.content == "recovered"
        else:
            with pytest.raises(lc.LLMConnectorError) as info:
                await conn.generate_chat(kit.model, USER)
            assert info.value.status_code == status
        breaker = conn.stats()[conn.provider]["breaker"]
    assert len(server.requests) == (2 if expect_retry else 1)
    # A retried success resets the count; a single counted failure stays on the books.
    assert breaker["failures"] == (1 if status in COUNTED and not expect_retry else 0)


@pytest.mark.parametrize("fault", ["refused", "reset", "read_timeout"])
async def test_r1_transport_failures_are_retried(fault: str, openai_fake: OpenAIFake) -> None:
    with FakeServer(openai_fake) as upstream:
        plan = {"refused": lambda i: Fault(), "reset": lambda i: Fault("reset", 5) if i == 0 else Fault(),
                "read_timeout": lambda i: Fault("stall", 5, 2.0) if i == 0 else Fault()}[fault]
        with FaultProxy(upstream.port, plan) as proxy:
            url = proxy.url
            if fault == "refused":
                proxy.stop()  # nothing listens any more: connection refused
            async with build_connector("openai", url, retry=FAST, timeout=lc.Timeouts(read=0.3)) as conn:
                if fault == "refused":
                    with pytest.raises(lc.NetworkError):
                        await conn.generate_chat("m", USER)
                    assert conn.stats()["openai"]["retries"] == 1
                else:
                    resp = await conn.generate_chat("m", USER)
                    assert resp.content == openai_fake.text and len(proxy.faults) == 2


# -- R4, R7, R8 -----------------------------------------------------------------------------------

async def test_r4_long_retry_after_goes_to_the_fallback_at_once() -> None:
    slow, fast = OpenAIFake("slow"), OpenAIFake("fast")
    slow.replies.append(OpenAIWireKit().error_reply(429, "wait 2 minutes", headers={"retry-after": "120"}))
    with FakeServer(slow) as a, FakeServer(fast) as b:
        lc.register_openai_compatible("r4-a", base_url=a.url + "/v1", default_model="m", replace=True)
        lc.register_openai_compatible("r4-b", base_url=b.url + "/v1", default_model="m", replace=True)
        async with lc.get_connector(primary="r4-a", fallbacks=["r4-b"]) as conn:
            resp = await conn.generate_chat(None, USER)
            retries = conn.stats()["r4-a"]["retries"]
    # No retry, so no 120 s sleep: one request to a, then b (the timing: test_resilience_virtual.py).
    assert resp.content == "fast" and retries == 0 and (len(a.requests), len(b.requests)) == (1, 1)


async def test_r7_no_connection_leaks_under_random_faults(openai_fake: OpenAIFake) -> None:
    rng = random.Random(7)
    kinds = ["none", "reset", "truncate", "stall", "slice"]

    def plan(index: int) -> Fault:
        kind = rng.choice(kinds)
        return Fault(kind, rng.randint(0, 400), 0.5 if kind == "stall" else 0.0)  # type: ignore[arg-type]

    for _ in range(40):
        openai_fake.replies.append(OpenAIWireKit().error_reply(rng.choice([500, 503, 529]), "x"))
    with FakeServer(openai_fake) as upstream, FaultProxy(upstream.port, plan, seed=7) as proxy:
        async with build_connector("openai", proxy.url, retry=FAST, timeout=lc.Timeouts(read=0.2, total=2)) as conn:
            async def one(i: int) -> None:
                try:
                    if i % 2:
                        await conn.generate_chat("m", USER)
                    else:
                        async with conn.generate_chat_stream("m", USER) as stream:
                            async for _ in stream:
                                if rng.random() < 0.2:
                                    break
                except lc.LLMConnectorError:
                    pass

            async with anyio.create_task_group() as tg:
                for i in range(200):
                    tg.start_soon(one, i)
        with anyio.fail_after(3):
            while proxy.open_connections or upstream.open_connections:
                await anyio.sleep(0.01)
    assert len(proxy.faults) > 10


async def test_r8_cancel_during_backoff(scripted: tuple[ScriptedHandler, FakeServer]) -> None:
    handler, server = scripted
    kit = OpenAIWireKit()
    handler.push(kit.error_reply(503, "down"))
    policy = RetryPolicy(max_retries=3, initial_delay=5, min_delay=5, max_delay=5, budget=False)
    async with build_connector(kit, server.url, retry=policy) as conn:
        with anyio.move_on_after(0.2) as scope:
            await conn.generate_chat("m", USER)
        assert scope.cancelled_caught  # (that it returns at the cancel, exactly: test_resilience_virtual.py)
        await anyio.sleep(0.5)
    assert len(server.requests) == 1  # nothing was sent after the cancel


# -- circuit breaker --------------------------------------------------------------------------------

def breaker_conn(kit: WireKit, server: FakeServer, **config: Any) -> lc.BaseConnector:
    return build_connector(kit, server.url, circuit_breaker=CircuitBreakerConfig(**config))


async def test_b1_opens_on_exactly_the_kth_failure(scripted: tuple[ScriptedHandler, FakeServer]) -> None:
    handler, server = scripted
    kit = OpenAIWireKit()
    handler.default = kit.error_reply(503, "down")
    async with breaker_conn(kit, server, failure_threshold=5) as conn:
        for _ in range(5):  # the 5th, tripping call still gets the provider's own error
            with pytest.raises(lc.ProviderError):
                await conn.generate_chat("m", USER)
        assert conn.stats()["openai"]["breaker"]["state"] == "open"
        with pytest.raises(lc.CircuitOpenError) as info:
            await conn.generate_chat("m", USER)
        assert 0 < (info.value.retry_after or 0) <= 30 and info.value.fallback
    assert len(server.requests) == 5  # the refusal sent nothing (and took no time: test_resilience_virtual.py)


async def test_b3_b4_half_open_admits_exactly_one_probe(scripted: tuple[ScriptedHandler, FakeServer]) -> None:
    handler, server = scripted
    kit = OpenAIWireKit()
    for _ in range(2):
        handler.push(kit.error_reply(500, "down"))
    handler.default = Reply(200, {"content-type": "application/json"}, chunks=[
        0.2, kit.chat_reply("probe ok").body])  # a slow probe, so the others arrive while it is in flight
    async with breaker_conn(kit, server, failure_threshold=2, reset_timeout=0.3) as conn:
        for _ in range(2):
            with pytest.raises(lc.ProviderError):
                await conn.generate_chat("m", USER)
        await anyio.sleep(0.35)
        outcomes: list[str] = []

        async def call() -> None:
            try:
                await conn.generate_chat("m", USER)
                outcomes.append("served")
            except lc.CircuitOpenError:
                outcomes.append("refused")

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(call)
        assert outcomes.count("served") == 1 and outcomes.count("refused") == 99
        assert conn.stats()["openai"]["breaker"]["state"] == "closed"
        transitions = conn.stats()["openai"]["breaker"]["transitions"]
    assert len(server.requests) == 3
    assert transitions == {"closed->open": 1, "open->half-open": 1, "half-open->closed": 1}  # B8


def resilience(**breaker: Any) -> Resilience:
    return Resilience("p", "http://p", retry=False, circuit_breaker=CircuitBreakerConfig(**breaker))


def request() -> ChatRequest:
    return ChatRequest("m", (lc.Message("user", "x"),), {}, deadline=None)


async def test_b5_only_health_failures_count() -> None:
    res = resilience(failure_threshold=5)
    for status, cls in [(400, lc.InvalidRequestError), (401, lc.AuthenticationError),
                        (403, lc.PermissionDeniedError), (404, lc.NotFoundError), (413, lc.InvalidRequestError),
                        (422, lc.InvalidRequestError), (429, lc.RateLimitError)]:
        async def client_error(req: ChatRequest, cls: type[lc.LLMConnectorError] = cls, status: int = status) -> None:
            raise cls("x", status_code=status)

        for _ in range(1000):
            with pytest.raises(cls):
                await res.call(client_error, request())
    assert res.breaker is not None and (res.breaker.state, res.breaker.failures) == ("closed", 0)
    health = [lc.ProviderError("x", status_code=500), lc.ProviderError("x", status_code=502),
              lc.ProviderError("x", status_code=503), lc.TimeoutError("x", status_code=504),
              lc.OverloadedError("x", status_code=529), lc.NetworkError("refused"), lc.TimeoutError("read"),
              lc.OverloadedError("in-stream overloaded_error")]
    for error in health:
        res_h = resilience(failure_threshold=5)

        async def fail(req: ChatRequest, error: lc.LLMConnectorError = error) -> None:
            raise error

        for _ in range(5):
            with pytest.raises(type(error)):
                await res_h.call(fail, request())
        assert res_h.breaker is not None and res_h.breaker.state == "open", error
        from llm_connectors.resilience.policies import reset_shared_state

        reset_shared_state()


async def test_b6_cancellation_is_neutral_and_propagates_unchanged() -> None:
    res = resilience(failure_threshold=3)

    async def slow(req: ChatRequest) -> None:
        await anyio.sleep(10)

    for _ in range(1000):
        with anyio.move_on_after(0) as scope:
            await res.call(slow, request())
        assert scope.cancelled_caught  # the cancel came out as a cancel, not CircuitBreakerError
    assert res.breaker is not None and res.breaker.state == "closed"

    async def fail(req: ChatRequest) -> None:
        raise lc.ProviderError("x", status_code=500)

    for _ in range(3):
        with pytest.raises(lc.ProviderError):
            await res.call(fail, request())
    assert res.breaker.state == "open"
    res.breaker._breaker.half_open()
    with anyio.move_on_after(0.01):  # a cancelled probe proves nothing: the circuit stays not-closed
        await res.call(slow, request())
    assert res.breaker.state == "half-open" and not res.breaker._probe_in_flight
    with pytest.raises(lc.ProviderError):  # ... and the next caller is the new probe
        await res.call(fail, request())
    assert res.breaker.state == "open"


async def test_b7_tripping_call_fails_over_fast(scripted: tuple[ScriptedHandler, FakeServer]) -> None:
    handler, server = scripted
    kit = OpenAIWireKit()
    handler.default = kit.error_reply(503, "down")
    with FakeServer(OpenAIFake("healthy")) as healthy:
        lc.register_openai_compatible("b7-sick", base_url=server.url + "/v1", default_model="m", replace=True)
        lc.register_openai_compatible("b7-ok", base_url=healthy.url + "/v1", default_model="m", replace=True)
        async with lc.get_connector(primary="b7-sick", fallbacks=["b7-ok"], retry=False,
                                    circuit_breaker={"failure_threshold": 2}) as conn:
            for _ in range(5):
                resp = await conn.generate_chat(None, USER)
                assert resp.provider == "b7-ok"
            stats = conn.stats()["b7-sick"]
    # The open circuit refused 3 calls without a request (moving on takes no time: test_resilience_virtual.py).
    assert len(server.requests) == 2 and stats["errors"]["CircuitOpenError"] == 3


async def test_mid_stream_failure_counts_toward_the_breaker(scripted: tuple[ScriptedHandler, FakeServer]) -> None:
    handler, server = scripted
    kit = OpenAIWireKit()
    handler.default = kit.stream_error_reply(["a", "b"], kind="overloaded")
    async with breaker_conn(kit, server, failure_threshold=2) as conn:
        for _ in range(2):
            with pytest.raises(lc.StreamInterruptedError):
                await conn.generate_chat_stream("m", USER).collect()
        assert conn.stats()["openai"]["breaker"]["state"] == "open"
