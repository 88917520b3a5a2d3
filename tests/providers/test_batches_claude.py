"""Provider batch jobs on Anthropic Message Batches: submit, wait, results, cancel, resume, list.

Against :class:`ClaudeBatchFake` on a loopback FakeServer (shapes of anthropic 2.17.0's
``types/messages/message_batch*.py``); polling waits are tiny and bounded by counts, never by time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors import errors
from llm_connectors.batches import BatchCounts
from llm_connectors.connectors import claude_batches
from llm_connectors.fallback import FallbackConnector
from llm_connectors.sync import SyncConnector
from llm_connectors.testing import FakeServer
from llm_connectors.testing.claude_batch_wire import ClaudeBatchFake
from llm_connectors.testing.claude_wire import ClaudeFake

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]

ITEMS: list[dict[str, Any]] = [
    {"custom_id": "q1", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 64},
    {"custom_id": "q2", "model": "claude-haiku-4-5", "messages": "Bonjour"},
    {"custom_id": "q3", "messages": "Hi", "stop": ["END"], "metadata": {"user_id": "u1"}},
]
FAST = {"poll_interval": 0.001, "timeout": 30.0}


def _posts(server: FakeServer) -> list[Any]:
    return [r for r in server.requests if r.method == "POST"]


async def test_submit_wait_results_round_trip_at_batch_prices() -> None:
    fake = ClaudeBatchFake(polls=2)
    seen: list[str] = []
    with FakeServer(fake) as server:
        async with build_connector("claude", server.url) as conn:
            job = await conn.submit_batch(ITEMS)
            assert (job.provider, job.status, job.counts) == ("claude", "in_progress", BatchCounts(3, processing=3))
            await job.wait(**FAST, on_progress=lambda j: seen.append(j.status))
            assert seen == ["in_progress", "in_progress", "completed"]
            assert job.counts == BatchCounts(3, succeeded=3)
            results = {cid: r async for cid, r in job.results()}
            # Each item's params are the body generate_chat sends for the same arguments.
            live = [(await conn.generate_chat(item.get("model"), item["messages"], **_options(item)))
                    for item in ITEMS]
    assert set(results) == {"q1", "q2", "q3"}
    assert all(isinstance(r, lc.ChatResponse) and r.content == "Hello from the fake Claude." for r in results.values())
    assert results["q2"].model == "claude-haiku-4-5"
    created = _posts(server)[0]
    assert created.path == "/v1/messages/batches"
    sent = created.json()["requests"]
    assert [r["custom_id"] for r in sent] == ["q1", "q2", "q3"]
    live_bodies = [r.json() for r in _posts(server)[1:]]
    assert [r["params"] for r in sent] == live_bodies
    results_get = [r for r in server.requests if r.path.endswith("/results")]
    assert results_get[0].headers["accept"] == "application/binary"
    assert results_get[0].headers["authorization"].startswith("Bearer ")
    expected = sum(lc.estimate_cost("claude", r.model, r.usage, batch=True) or 0 for r in results.values())
    full = sum(lc.estimate_cost("claude", r.model, r.usage) or 0 for r in results.values())
    assert job.estimated_cost == pytest.approx(expected)
    assert expected == pytest.approx(full / 2)  # the catalog's batch prices: half
    assert len(live) == 3


def _options(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("custom_id", "model", "messages")}


async def test_partly_errored_job_gives_typed_errors_per_item() -> None:
    fake = ClaudeBatchFake(polls=0, outcomes={"q1": "errored"})
    with FakeServer(fake) as server:
        async with build_connector("claude", server.url) as conn:
            job = await conn.submit_batch(ITEMS)
            # a body the API refuses inside the job comes back errored too
            fake.jobs[job.id].requests = [*fake.jobs[job.id].requests[:2], ("q3", {"model": "x"})]
            await job.wait(**FAST)
            results = {cid: r async for cid, r in job.results()}
    assert job.status == "completed"
    assert isinstance(results["q1"], errors.ProviderError) and "scripted failure" in str(results["q1"])
    assert isinstance(results["q2"], lc.ChatResponse)
    assert isinstance(results["q3"], errors.InvalidRequestError) and results["q3"].status_code is None


async def test_expired_job() -> None:
    fake = ClaudeBatchFake(polls=0)
    fake.expire = True
    with FakeServer(fake) as server:
        async with build_connector("claude", server.url) as conn:
            job = await (await conn.submit_batch(ITEMS)).wait(**FAST)
            results = [r async for _, r in job.results()]
    assert job.status == "expired" and job.counts == BatchCounts(3, expired=3)
    assert all(isinstance(r, errors.TimeoutError) and r.code == "expired" for r in results)


async def test_cancelled_job() -> None:
    fake = ClaudeBatchFake(polls=5)
    with FakeServer(fake) as server:
        async with build_connector("claude", server.url) as conn:
            job = await conn.submit_batch(ITEMS)
            await job.cancel()
            assert job.status == "cancelling"
            await job.wait(**FAST)
            results = [r async for _, r in job.results()]
    assert [r.path for r in _posts(server)][-1].endswith("/cancel")
    assert job.status == "cancelled" and job.counts.cancelled == 3
    assert all(isinstance(r, errors.LLMConnectorError) and r.code == "canceled" for r in results)


async def test_results_before_the_end_and_wait_timeout_are_refused() -> None:
    fake = ClaudeBatchFake(polls=1000)
    progress: list[int] = []
    with FakeServer(fake) as server:
        async with build_connector("claude", server.url) as conn:
            job = await conn.submit_batch(ITEMS[:1])
            with pytest.raises(errors.InvalidRequestError, match="no results yet"):
                async for _ in job.results():
                    pass
            with pytest.raises(errors.TimeoutError, match="had not ended"):
                await job.wait(poll_interval=0.01, timeout=0.025, on_progress=lambda j: progress.append(1))
            with pytest.raises(errors.InvalidRequestError, match="poll_interval"):
                await job.wait(poll_interval=0)
    assert len(progress) <= 2  # at most timeout / poll_interval refreshes
    assert len([r for r in server.requests if r.method == "GET"]) == len(progress)


async def test_every_item_is_validated_before_anything_is_uploaded() -> None:
    with FakeServer(ClaudeBatchFake()) as server:
        async with build_connector("claude", server.url) as conn:
            bad = [*ITEMS, {"custom_id": "q4", "messages": "x", "temperature": 0.5}]
            with pytest.raises(errors.InvalidRequestError, match=r"batch item 'q4'.*temperature"):
                await conn.submit_batch(bad)
            with pytest.raises(errors.InvalidRequestError, match="'q1' is used twice"):
                await conn.submit_batch([ITEMS[0], ITEMS[0]])
            with pytest.raises(errors.InvalidRequestError, match="must match"):
                await conn.submit_batch([{**ITEMS[0], "custom_id": "not valid!"}])
            with pytest.raises(errors.InvalidRequestError, match="needs a custom_id"):
                await conn.submit_batch([{"messages": "x"}])
            with pytest.raises(errors.InvalidRequestError, match="no items"):
                await conn.submit_batch([])
            with pytest.raises(errors.InvalidRequestError, match="cannot stream"):
                await conn.submit_batch([{**ITEMS[0], "stream": True}])
            with pytest.raises(errors.InvalidRequestError, match="routed to provider 'openai'"):
                await conn.submit_batch([{**ITEMS[0], "model": "openai:gpt-5"}])
    assert server.requests == []


async def test_resume_by_id_and_list_across_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claude_batches, "PAGE_SIZE", 2)
    fake = ClaudeBatchFake(polls=0)
    with FakeServer(fake) as server:
        async with build_connector("claude", server.url) as conn:
            ids = [(await conn.submit_batch(ITEMS[:1])).id for _ in range(3)]
        async with build_connector("claude", server.url) as other:  # as another process would
            job = await other.get_batch(ids[0])
            assert job.id == ids[0] and job.status == "completed"
            assert [cid async for cid, _ in job.results()] == ["q1"]
            listed = [j.id async for j in other.list_batches()]
            with pytest.raises(errors.NotFoundError):
                await other.get_batch("msgbatch_missing")
            with pytest.raises(errors.InvalidRequestError, match="batch id"):
                await other.get_batch("")
    assert listed == sorted(ids, reverse=True)
    pages = [r.query for r in server.requests if r.method == "GET" and r.path == "/v1/messages/batches"]
    assert pages == [{"limit": "2"}, {"limit": "2", "after_id": listed[1]}]


async def test_garbage_job_objects_are_protocol_errors() -> None:
    conn = build_connector("claude")
    translator = conn.batch_translator()
    record = ClaudeBatchFake(origin="https://elsewhere.example").record(ClaudeBatchFake().add_job([("a", {})]))
    assert translator.parse_state(record).status == "in_progress"
    for broken in ({**record, "request_counts": {"processing": -1}}, {**record, "type": "message"},
                   {**record, "processing_status": "done"}, []):
        with pytest.raises(errors.ProtocolError):
            translator.parse_state(broken)
    with pytest.raises(errors.ProtocolError):
        translator.parse_result({"custom_id": "a", "result": {"type": "succeeded"}}, None)
    with pytest.raises(errors.ProtocolError):
        translator.parse_result({"custom_id": "a", "result": {"type": "succeeded", "message": {"type": "x"}}}, None)
    ended = {**record, "processing_status": "ended", "results_url": "https://elsewhere.example/v1/x/results"}
    # only the path of results_url is used: credentials never go to another host
    assert translator.parse_state(ended).results == "/v1/x/results"


async def test_providers_without_batches_refuse_before_io() -> None:
    with FakeServer(ClaudeBatchFake()) as server:
        conn = build_connector("ollama", server.url)
        with pytest.raises(errors.UnsupportedCapabilityError, match="batch"):
            await conn.submit_batch(ITEMS)
        with pytest.raises(errors.UnsupportedCapabilityError):
            await conn.get_batch("b")
        with pytest.raises(errors.UnsupportedCapabilityError):
            conn.list_batches()
        await conn.aclose()
    assert server.requests == []


async def test_a_fallback_chain_submits_to_its_first_member_with_batches() -> None:
    with FakeServer(ClaudeBatchFake(polls=0)) as server:
        chain = FallbackConnector([build_connector("ollama", server.url), build_connector("claude", server.url)])
        async with chain:
            job = await chain.submit_batch(ITEMS[:1])
            assert job.provider == "claude"
            assert (await chain.get_batch(job.id)).status == "completed"
            assert [j.id async for j in chain.list_batches()] == [job.id]
        lonely = FallbackConnector([build_connector("ollama", server.url)])
        with pytest.raises(errors.UnsupportedCapabilityError, match="no member"):
            await lonely.submit_batch(ITEMS)
        await lonely.aclose()


def test_the_sync_facade_has_the_same_methods() -> None:
    fake = ClaudeBatchFake(ClaudeFake("Sync hello."), polls=1, outcomes={"q2": "errored"})
    with FakeServer(fake) as server, SyncConnector(build_connector("claude", server.url)) as conn:
        job = conn.submit_batch(ITEMS)
        assert job.status == "in_progress" and not job.done
        job.wait(poll_interval=0.001)
        results = dict(job.results())
        assert conn.get_batch(job.id).refresh().status == "completed"
        assert [j.id for j in conn.list_batches()] == [job.id]
        first = next(iter(conn.get_batch(job.id).results()))  # stopping early closes the file
        assert first[0] == "q1"
    assert results["q1"].content == "Sync hello."
    assert isinstance(results["q2"], errors.ProviderError)
    assert job.estimated_cost is not None and job.estimated_cost > 0
    assert json.loads(server.requests[0].body)["requests"][0]["custom_id"] == "q1"



SDK = Path(__file__).parents[1] / "fixtures" / "claude" / "sdk_requests" / "anthropic-2.17.0"


def _sdk(case: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SDK / f"{case}.json").read_text(encoding="utf-8"))
    return data


async def test_requests_match_the_sdk_captures() -> None:
    """create, retrieve, cancel, list and results as anthropic 2.17.0 sends them (capture_sdk_requests.py)."""
    fake = ClaudeBatchFake(polls=0)
    user = [{"role": "user", "content": "Hello"}]
    with FakeServer(fake) as server:
        async with build_connector("claude", server.url, api_key="test-key") as conn:
            job = await conn.submit_batch([
                {"custom_id": "q1", "model": "claude-sonnet-5-5", "max_tokens": 64, "messages": user},
                {"custom_id": "q2", "model": "claude-sonnet-5-5", "messages": user, "stop": ["END"]}])
            moved = fake.jobs.pop(job.id)
            moved.id = "msgbatch_01"  # the id of the captures
            fake.jobs[moved.id] = moved
            job = await conn.get_batch("msgbatch_01")
            [r async for r in job.results()]
            await job.cancel()
            listing = conn.batch_translator().build_list("msgbatch_00")
    cases = ["batch_create", "batch_retrieve", "batch_results", "batch_cancel"]
    assert len(server.requests) == len(cases)
    for request, case in zip(server.requests, cases, strict=True):
        sdk = _sdk(case)
        assert (request.method, request.path, request.query) == (sdk["method"], sdk["path"], sdk["query"]), case
        assert (request.json() if request.body else None) == sdk["body"], case
        for name in ("anthropic-version", "authorization", "accept"):
            if name != "accept" or case == "batch_results":  # JSON calls: ours sends no accept; both fine
                assert request.headers[name] == sdk["headers"][name], (case, name)
    sdk = _sdk("batch_list")
    assert (listing.method, "/v1/messages/batches", listing.params) == (sdk["method"], sdk["path"], sdk["query"])
