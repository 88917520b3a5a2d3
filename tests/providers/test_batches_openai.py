"""Provider batch jobs on OpenAI's Batch API: file upload, create, wait, output and error files.

Against :class:`OpenAIBatchFake` on a loopback FakeServer (shapes of openai 3.63.0's
``types/batch.py`` and ``file_object.py``); polling waits are tiny and bounded by counts.
"""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors import errors
from llm_connectors.batches import BatchCounts
from llm_connectors.connectors import openai_batches
from llm_connectors.testing import FakeServer
from llm_connectors.testing.openai_batch_wire import OpenAIBatchFake

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]

ITEMS: list[dict[str, Any]] = [
    {"custom_id": "request-1", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 64},
    {"custom_id": "request 2 (any text)", "model": "gpt-5.4", "messages": "Bonjour", "temperature": 0.2},
    {"custom_id": "r3", "messages": "Hi", "stop": ["END"], "seed": 7},
]
FAST = {"poll_interval": 0.001, "timeout": 30.0}


def _uploaded(server: FakeServer) -> list[dict[str, Any]]:
    upload = next(r for r in server.requests if r.path == "/v1/files")
    message = BytesParser(policy=HTTP).parsebytes(
        b"content-type: " + upload.headers["content-type"].encode() + b"\r\n\r\n" + upload.body)
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert parts["file"].get_filename() == "batch.jsonl"
    assert parts["purpose"].get_payload(decode=True) == b"batch"
    return [json.loads(line) for line in parts["file"].get_payload(decode=True).splitlines()]


async def test_upload_create_wait_results_round_trip_at_batch_prices() -> None:
    seen: list[str] = []
    with FakeServer(OpenAIBatchFake(polls=1)) as server:
        async with build_connector("openai", server.url) as conn:
            job = await conn.submit_batch(ITEMS)
            assert (job.provider, job.status) == ("openai", "validating")
            await job.wait(**FAST, on_progress=lambda j: seen.append(j.status))
            results = {cid: r async for cid, r in job.results()}
            for item in ITEMS:  # the same calls live, to compare bodies
                options = {k: v for k, v in item.items() if k not in ("custom_id", "model", "messages")}
                await conn.generate_chat(item.get("model"), item["messages"], **options)
    assert seen == ["in_progress", "in_progress", "completed"]
    assert job.counts == BatchCounts(3, succeeded=3)
    lines = _uploaded(server)
    live = [r.json() for r in server.requests if r.path == "/v1/chat/completions"]
    assert [line["body"] for line in lines] == live
    assert {(line["method"], line["url"]) for line in lines} == {("POST", "/v1/chat/completions")}
    create = next(r for r in server.requests if r.path == "/v1/batches" and r.method == "POST").json()
    assert create == {"input_file_id": "file-0001", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    assert set(results) == {i["custom_id"] for i in ITEMS}
    assert all(isinstance(r, lc.ChatResponse) for r in results.values())
    expected = sum(lc.estimate_cost("openai", r.model, r.usage, batch=True) or 0 for r in results.values())
    assert job.estimated_cost == pytest.approx(expected) and expected > 0


async def test_partly_failed_job_reads_the_error_file_too() -> None:
    fake = OpenAIBatchFake(polls=0, outcomes={"r3": "failed", "request-1": "expired"})
    with FakeServer(fake) as server:
        async with build_connector("openai", server.url) as conn:
            job = await (await conn.submit_batch(ITEMS)).wait(**FAST)
            results = {cid: r async for cid, r in job.results()}
    assert job.counts == BatchCounts(3, succeeded=1, errored=2)
    assert isinstance(results["request 2 (any text)"], lc.ChatResponse)
    assert isinstance(results["r3"], errors.InvalidRequestError) and results["r3"].status_code == 400
    assert isinstance(results["request-1"], errors.TimeoutError) and results["request-1"].code == "expired"
    assert [r.path for r in server.requests if r.path.endswith("/content")] == [
        f"/v1/files/file-{job.id}-output/content", f"/v1/files/file-{job.id}-error/content"]


async def test_expired_cancelled_and_failed_jobs() -> None:
    fake = OpenAIBatchFake(polls=3)
    with FakeServer(fake) as server:
        async with build_connector("openai", server.url) as conn:
            cancelled = await (await conn.submit_batch(ITEMS[:2])).cancel()
            assert cancelled.status == "cancelling"
            await cancelled.wait(**FAST)
            gone = [r async for _, r in cancelled.results()]
            fake.expire, fake.polls = True, 0
            expired = await (await conn.submit_batch(ITEMS[:1])).wait(**FAST)
            lost = [r async for _, r in expired.results()]
            fake.expire = False
            bad = await conn.submit_batch(ITEMS[:1])
            fake.files[bad.state.raw["input_file_id"]][0]["url"] = "/v1/embeddings"  # fails validation
            await bad.wait(**FAST)
            with pytest.raises(errors.InvalidRequestError, match="no results"):
                async for _ in bad.results():
                    pass
    assert cancelled.status == "cancelled" and all(r.code == "canceled" for r in gone) and len(gone) == 2
    assert expired.status == "expired" and isinstance(lost[0], errors.TimeoutError)
    assert bad.status == "failed"


async def test_validation_before_upload_and_one_endpoint_per_job() -> None:
    with FakeServer(OpenAIBatchFake()) as server:
        async with build_connector("openai", server.url) as conn:
            with pytest.raises(errors.InvalidRequestError, match=r"batch item 'r3'.*stop"):
                await conn.submit_batch([ITEMS[0], {**ITEMS[2], "stop": ["a", "b", "c", "d", "e"]}])
            mixed = [ITEMS[0], {**ITEMS[0], "custom_id": "r9", "provider_options": {"openai": {"api": "responses"}}}]
            with pytest.raises(errors.InvalidRequestError, match="one API"):
                await conn.submit_batch(mixed)
            with pytest.raises(errors.InvalidRequestError, match="used twice"):
                await conn.submit_batch([ITEMS[0], ITEMS[0]])
    assert server.requests == []


async def test_responses_items_go_to_the_responses_endpoint() -> None:
    with FakeServer(OpenAIBatchFake(polls=0)) as server:
        async with build_connector("openai", server.url) as conn:
            item = {**ITEMS[0], "provider_options": {"openai": {"api": "responses"}}}
            job = await (await conn.submit_batch([item])).wait(**FAST)
            results = [r async for _, r in job.results()]
    assert _uploaded(server)[0]["url"] == "/v1/responses"
    assert isinstance(results[0], lc.ChatResponse) and results[0].content


async def test_resume_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_batches, "PAGE_SIZE", 1)
    with FakeServer(OpenAIBatchFake(polls=0)) as server:
        async with build_connector("openai", server.url) as conn:
            first = await conn.submit_batch(ITEMS[:1])
            second = await conn.submit_batch(ITEMS[1:2])
        async with build_connector("openai", server.url) as other:
            again = await (await other.get_batch(first.id)).wait(**FAST)
            assert [cid async for cid, _ in again.results()] == ["request-1"]
            assert [j.id async for j in other.list_batches()] == [second.id, first.id]
    pages = [r.query for r in server.requests if r.path == "/v1/batches" and r.method == "GET"]
    assert pages[1] == {"limit": "1", "after": second.id}


async def test_garbage_answers_are_protocol_errors() -> None:
    translator = build_connector("openai").batch_translator()
    record = OpenAIBatchFake().record(OpenAIBatchFake().add_job([]))
    assert translator.parse_state(record).status == "validating"
    for broken in ({**record, "status": "done"}, {**record, "object": "file"},
                   {**record, "request_counts": {"total": -1, "completed": 0, "failed": 0}}):
        with pytest.raises(errors.ProtocolError):
            translator.parse_state(broken)
    state = translator.parse_state(record)
    with pytest.raises(errors.ProtocolError):
        translator.parse_result({"custom_id": "a", "response": None, "error": None}, state)
    cid, outcome = translator.parse_result(
        {"custom_id": "a", "response": {"status_code": 200, "body": {"nonsense": 1}}, "error": None}, state)
    assert cid == "a" and isinstance(outcome, errors.ProtocolError)  # that item's error, not the file's


SDK = Path(__file__).parents[1] / "fixtures" / "openai" / "sdk_requests" / "openai-3.63.0"


def _sdk(case: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SDK / f"{case}.json").read_text(encoding="utf-8"))
    return data


async def test_requests_match_the_sdk_captures() -> None:
    """upload, create, retrieve, cancel, list and the output file as openai 3.63.0 sends them (capture.py)."""
    fake = OpenAIBatchFake(polls=0)
    with FakeServer(fake) as server:
        async with build_connector("openai", server.url, api_key="test-key") as conn:
            job = await conn.submit_batch([{"custom_id": "q1", "messages": "Hello"}])
            moved = fake.jobs.pop(job.id)
            moved.id = "batch_01"  # the ids of the captures
            fake.jobs[moved.id] = moved
            await (await conn.get_batch("batch_01")).cancel()
            translator = conn.batch_translator()
    upload, create, retrieve, cancel = server.requests
    sdk = _sdk("batch_file_upload")
    assert (upload.method, upload.path) == (sdk["method"], sdk["path"])
    assert upload.headers["content-type"].partition(";")[0] == sdk["headers"]["content-type"]
    assert _uploaded(server) == sdk["body"]["file"]["lines"]
    sdk = _sdk("batch_create")
    assert create.json() == {**sdk["body"], "input_file_id": "file-0001"}
    for request, case in ((retrieve, "batch_retrieve"), (cancel, "batch_cancel")):
        sdk = _sdk(case)
        assert (request.method, request.path, request.body) == (sdk["method"], sdk["path"], b"")
        assert request.headers["authorization"] == sdk["headers"]["authorization"]
    listing, sdk = translator.build_list("batch_00"), _sdk("batch_list")
    assert (listing.method, "/v1" + listing.path, listing.params) == (sdk["method"], sdk["path"], sdk["query"])
    state = translator.parse_state({**fake.record(moved), "status": "completed", "output_file_id": "file-out"})
    (output,), sdk = translator.build_results(state), _sdk("batch_output")
    assert (output.method, "/v1" + output.path) == (sdk["method"], sdk["path"])
