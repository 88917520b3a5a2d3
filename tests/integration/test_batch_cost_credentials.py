"""Batching, usage and cost, and credentials beyond one static key."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors.testing import FakeServer, Reply, Request
from llm_connectors.testing.kit import ScriptedHandler
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit, openai_chat_json

pytestmark = pytest.mark.anyio
KIT = OpenAIWireKit()


class Echo(OpenAIFake):
    """Answers each chat with its own prompt, after a short pause; the prompt "fail" gets a 400."""

    def __call__(self, request: Request) -> Reply:
        prompt = request.json()["messages"][-1]["content"] if request.path.endswith("completions") else ""
        if prompt == "fail":
            return KIT.error_reply(400, "bad prompt")
        return Reply(200, {"content-type": "application/json"},
                     chunks=[0.05, KIT.chat_reply(f"echo {prompt}").body])


async def test_chat_batch_keeps_order_reports_progress_and_per_item_errors() -> None:
    fake = Echo()
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    with FakeServer(fake) as server:
        async with build_connector("openai", server.url) as conn:
            items: list[Any] = [f"q{i}" for i in range(12)]
            items[5] = "fail"
            items[7] = {"messages": [{"role": "user", "content": "q7"}], "model": "m", "temperature": 0.1}
            items[9] = {"model": "m"}  # no messages: a per-item error, not an exception
            results = await conn.generate_chat_batch(items, concurrency=3, on_progress=on_progress)
    assert [r.content if isinstance(r, lc.ChatResponse) else type(r).__name__ for r in results] == [
        "echo q0", "echo q1", "echo q2", "echo q3", "echo q4", "InvalidRequestError", "echo q6", "echo q7",
        "echo q8", "InvalidRequestError", "echo q10", "echo q11"]
    assert progress[-1] == (12, 12) and [d for d, _ in progress] == list(range(1, 13))
    assert [r.json().get("temperature") for r in server.requests].count(0.1) == 1
    with pytest.raises(lc.InvalidRequestError):
        async with build_connector("openai", server.url) as conn:
            await conn.generate_chat_batch(["x"], concurrency=0)


async def test_chat_batch_concurrency_is_bounded() -> None:
    with FakeServer(OpenAIFake()) as server:
        active = peak = 0

        async def before(ctx: lc.HookContext) -> None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await anyio.sleep(0.02)
            active -= 1

        async with build_connector("openai", server.url, hooks=lc.Hooks(before_request=before)) as conn:
            results = await conn.generate_chat_batch([f"q{i}" for i in range(20)], concurrency=4)
    assert len(results) == 20 and peak == 4


async def test_chain_batch() -> None:
    with FakeServer(OpenAIFake("from chain")) as server:
        lc.register_openai_compatible("batch-a", base_url=server.url + "/v1", default_model="m", replace=True)
        async with lc.get_connector(primary="batch-a", fallbacks=["batch-a"]) as conn:
            results = await conn.generate_chat_batch(["a", "b"])
    assert [r.content for r in results if isinstance(r, lc.ChatResponse)] == ["from chain"] * 2


# -- usage and cost -------------------------------------------------------------------------------

def test_estimate_cost_with_cached_tokens() -> None:
    usage = lc.Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=400_000)
    # gpt-5.4-mini: 600k plain input at 0.75, 400k cached at 0.075, 100k output at 4.50
    assert lc.estimate_cost("openai", "gpt-5.4-mini-2026-03-17", usage) == pytest.approx(0.45 + 0.03 + 0.45)
    claude = lc.Usage(input_tokens=300, output_tokens=100, cache_read_tokens=100, cache_write_tokens=100)
    expected = (100 * 3.0 + 100 * 0.30 + 100 * 3.75 + 100 * 15.0) / 1_000_000
    assert lc.estimate_cost("claude", "claude-sonnet-4-5", claude) == pytest.approx(expected)
    assert lc.estimate_cost("ollama", "llama3.2", claude) == 0.0
    assert lc.estimate_cost("openai", "unknown-model", usage) is None
    assert lc.estimate_cost("openai", "gpt-5.4", lc.Usage()) is None


@pytest.mark.parametrize("provider", ["claude", "openai", "mistral", "ollama"])
def test_every_default_model_has_a_price(provider: str) -> None:
    """A user who names no model still gets a cost estimate (a default model left without a price
    after a model change would silently report no cost)."""
    from llm_connectors.pricing import price_for
    from llm_connectors.registry import connector_class

    assert price_for(provider, connector_class(provider).definition.default_model) is not None


def test_each_claude_model_has_its_own_price() -> None:
    """Catalog entries are matched per model, so claude-opus-5-5 is not priced as claude-opus-5."""
    from llm_connectors.pricing import price_for

    assert price_for("claude", "claude-opus-5-5") == lc.Price(4.0, 20.0, 0.40, 5.0, 2.0, 10.0)
    assert price_for("claude", "claude-opus-5") == lc.Price(5.0, 25.0, 0.50, 6.25, 2.5, 12.5)
    assert price_for("claude", "claude-sonnet-5-5") == lc.Price(2.0, 10.0, 0.20, 2.50, 1.0, 5.0)


def test_prices_can_be_extended_and_overridden() -> None:
    lc.set_price("my-compat", "tiny-", input=1.0, output=2.0)
    assert lc.estimate_cost("my-compat", "tiny-7b", lc.Usage.of(1_000_000, 1_000_000)) == 3.0
    lc.set_price("my-compat", "tiny-", lc.Price(0.5, 0.5))
    assert lc.estimate_cost("my-compat", "tiny-7b", lc.Usage.of(1_000_000, 0)) == 0.5
    with pytest.raises(lc.ConfigurationError):
        lc.set_price("my-compat", "x", input=1.0)
    with pytest.raises(lc.ConfigurationError):
        lc.Price(-1, 0)


async def test_stats_accumulate_estimated_cost() -> None:
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 100_000, "total_tokens": 1_100_000}
    handler = ScriptedHandler(default=Reply.json(openai_chat_json("x", model="gpt-5.4-mini", usage=usage)))
    with FakeServer(handler) as server:
        async with build_connector("openai", server.url) as conn:
            for _ in range(2):
                await conn.generate_chat("gpt-5.4-mini", [{"role": "user", "content": "x"}])
            stats = conn.stats()["openai"]
    assert stats["estimated_cost_usd"] == pytest.approx(2 * (0.75 + 0.45))  # 1M in at 0.75, 100k out at 4.50


# -- credentials -----------------------------------------------------------------------------------

def auth_of(request: Request) -> str:
    return request.headers["authorization"]


async def test_key_list_rotates_and_sets_refused_keys_aside(caplog: pytest.LogCaptureFixture) -> None:
    handler = ScriptedHandler(default=KIT.chat_reply("ok"))
    with FakeServer(handler) as server:
        async with build_connector("openai", server.url, api_key=["sk-one-1111", "sk-two-2222", "sk-three-3333"],
                                      retry=lc.RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.001,
                                                           min_delay=0, budget=False)) as conn:
            for _ in range(3):
                await conn.generate_chat("m", [{"role": "user", "content": "x"}])
            assert [auth_of(r) for r in server.requests] == [
                "Bearer sk-one-1111", "Bearer sk-two-2222", "Bearer sk-three-3333"]
            handler.push(KIT.error_reply(401, "invalid key"))  # the next key in turn (one) is refused
            resp = await conn.generate_chat("m", [{"role": "user", "content": "x"}])
            assert resp.content == "ok"  # retried at once with another key
            refused, retried = (auth_of(r) for r in server.requests[3:5])
            for _ in range(4):
                await conn.generate_chat("m", [{"role": "user", "content": "x"}])
            later = {auth_of(r) for r in server.requests[5:]}
            keys = conn.stats()["openai"]["keys"]
    assert refused == "Bearer sk-one-1111" and retried != refused and refused not in later
    assert keys["keys"] == 3 and list(keys["set_aside"].values()) == ["AuthenticationError"]
    assert "sk-one-1111" not in caplog.text and "set aside" in caplog.text


async def test_all_keys_refused_is_a_clear_error() -> None:
    handler = ScriptedHandler(default=Reply.json({"error": {"message": "quota", "code": "insufficient_quota"}}, 429))
    with FakeServer(handler) as server:
        async with build_connector("openai", server.url, api_key=["sk-a-000001", "sk-b-000002"]) as conn:
            for _ in range(2):
                with pytest.raises(lc.QuotaExceededError):
                    await conn.generate_chat("m", [{"role": "user", "content": "x"}])
            with pytest.raises(lc.AuthenticationError, match="every one of the 2 API keys"):
                await conn.generate_chat("m", [{"role": "user", "content": "x"}])
    assert len(server.requests) == 2


async def test_key_callable_sync_and_async_called_per_request() -> None:
    issued = iter(["tok-1-aaaa", "tok-2-bbbb", "tok-3-cccc"])

    async def vault() -> str:
        await anyio.lowlevel.checkpoint()
        return next(issued)

    handler = ScriptedHandler(default=KIT.chat_reply("ok"))
    with FakeServer(handler) as server:
        async with build_connector("openai", server.url, api_key=vault) as conn:
            for _ in range(2):
                await conn.generate_chat("m", [{"role": "user", "content": "x"}])
            assert "tok" not in repr(conn)
        counter = iter(range(100))
        async with build_connector("openai", server.url, api_key=lambda: f"sync-{next(counter)}-key") as conn:
            await conn.generate_chat("m", [{"role": "user", "content": "x"}])
    assert [auth_of(r) for r in server.requests] == ["Bearer tok-1-aaaa", "Bearer tok-2-bbbb", "Bearer sync-0-key"]


async def test_key_callable_returning_a_bad_value_never_echoes_it() -> None:
    with FakeServer(ScriptedHandler(default=KIT.chat_reply("ok"))) as server:
        async with build_connector("openai", server.url, api_key=lambda: "sk-leaky\nInjected: 1") as conn:
            with pytest.raises(lc.ConfigurationError) as info:
                await conn.generate_chat("m", [{"role": "user", "content": "x"}])
    assert "sk-leaky" not in str(info.value) and "position" in str(info.value)
    assert not server.requests


def test_credential_input_validation() -> None:
    for bad in ([], ["sk-a", "sk-a"], [3], 42):
        with pytest.raises(lc.ConfigurationError):
            build_connector("openai", "http://127.0.0.1:1", api_key=bad)
