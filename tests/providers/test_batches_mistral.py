"""Provider batch jobs on Mistral (``/v1/batch/jobs``): inline requests or an uploaded file, results files.

Against :class:`MistralBatchFake` on a loopback FakeServer (shapes of mistralai 3.7.0's
``models/batchjob.py`` and the OpenAPI spec); polling waits are tiny and bounded by counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import build_connector
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import llm_connectors as lc
from llm_connectors import errors
from llm_connectors.batches import BatchCounts, PreparedItem
from llm_connectors.connectors import mistral_batches
from llm_connectors.testing import FakeServer
from llm_connectors.testing.mistral_batch_wire import MistralBatchFake

pytestmark = [pytest.mark.anyio, pytest.mark.both_engines]

ITEMS: list[dict[str, Any]] = [
    {"custom_id": "0", "messages": [{"role": "user", "content": "What is the best French cheese?"}],
     "max_tokens": 100},
    {"custom_id": "1", "model": "mistral-large-latest", "messages": "What is the best French wine?"},
]
FAST = {"poll_interval": 0.001, "timeout": 30.0}


async def test_inline_round_trip_at_batch_prices() -> None:
    with FakeServer(MistralBatchFake(polls=1)) as server:
        async with build_connector("mistral", server.url) as conn:
            job = await conn.submit_batch(ITEMS)
            assert job.status == "validating"
            await job.wait(**FAST)
            results = {cid: r async for cid, r in job.results()}
            live = [await conn.generate_chat(i.get("model"), i["messages"],
                                             **({"max_tokens": i["max_tokens"]} if "max_tokens" in i else {}))
                    for i in ITEMS]
    assert job.status == "completed" and job.counts == BatchCounts(2, succeeded=2)
    create = next(r for r in server.requests if r.path == "/v1/batch/jobs" and r.method == "POST").json()
    assert create["endpoint"] == "/v1/chat/completions" and "input_files" not in create
    bodies = [r.json() for r in server.requests if r.path == "/v1/chat/completions"]
    assert [r["body"] for r in create["requests"]] == bodies and len(live) == 2
    assert [r["custom_id"] for r in create["requests"]] == ["0", "1"]
    assert all(isinstance(r, lc.ChatResponse) for r in results.values())
    expected = sum(lc.estimate_cost("mistral", r.model, r.usage, batch=True) or 0 for r in results.values())
    assert job.estimated_cost == pytest.approx(expected)


async def test_large_jobs_go_up_as_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mistral_batches, "INLINE_MAX", 1)
    fake = MistralBatchFake(polls=0, outcomes={"1": "failed"})
    with FakeServer(fake) as server:
        async with build_connector("mistral", server.url) as conn:
            job = await (await conn.submit_batch(ITEMS)).wait(**FAST)
            results = {cid: r async for cid, r in job.results()}
    create = next(r for r in server.requests if r.path == "/v1/batch/jobs" and r.method == "POST").json()
    assert create == {"endpoint": "/v1/chat/completions", "input_files": ["file-0001"]}
    upload = next(r for r in server.requests if r.path == "/v1/files")
    assert b'{"custom_id":"0","body":{' in upload.body
    assert isinstance(results["0"], lc.ChatResponse)
    assert isinstance(results["1"], errors.InvalidRequestError)
    assert job.counts == BatchCounts(2, succeeded=1, errored=1)


async def test_expired_and_cancelled_jobs_and_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mistral_batches, "PAGE_SIZE", 1)
    fake = MistralBatchFake(polls=2)
    with FakeServer(fake) as server:
        async with build_connector("mistral", server.url) as conn:
            cancelled = await (await conn.submit_batch(ITEMS)).cancel()
            assert cancelled.status == "cancelling"
            await cancelled.wait(**FAST)
            fake.expire = True
            expired = await (await conn.submit_batch(ITEMS[:1])).wait(**FAST)
            lost = [r async for _, r in expired.results()]
            listed = [j.id async for j in conn.list_batches()]
    assert cancelled.status == "cancelled" and expired.status == "expired"
    assert isinstance(lost[0], errors.TimeoutError)
    assert listed == [expired.id, cancelled.id]
    pages = [r.query["page"] for r in server.requests if r.path == "/v1/batch/jobs" and r.method == "GET"]
    assert pages == ["0", "1"]


async def test_validation_before_io_and_garbage_answers() -> None:
    with FakeServer(MistralBatchFake()) as server:
        async with build_connector("mistral", server.url) as conn:
            with pytest.raises(errors.InvalidRequestError, match="batch item '1'"):
                await conn.submit_batch([ITEMS[0], {**ITEMS[1], "temperature": 9}])
            translator = conn.batch_translator()
    assert server.requests == []
    record = MistralBatchFake().record(MistralBatchFake().add_job([]))
    assert translator.parse_state(record).status == "validating"
    for broken in ({**record, "status": "queued"}, {**record, "total_requests": "3"}, json.loads("[]")):
        with pytest.raises(errors.ProtocolError):
            translator.parse_state(broken)


SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "mistral-openapi.yaml"


def test_bodies_and_fake_answers_follow_the_openapi_spec() -> None:
    """The create body we send (inline, and from a file) and the fake's job and list against the spec."""
    if not SPEC.is_file():
        pytest.skip(f"Mistral OpenAPI spec not found at {SPEC}")
    spec = yaml.load(SPEC.read_bytes(), Loader=yaml.CSafeLoader)
    registry: Registry[Any] = Registry().with_resource(
        "urn:mistral", Resource.from_contents(spec, default_specification=DRAFT202012))

    def problems(schema: str, instance: Any) -> list[str]:
        validator = OAS31Validator({"$ref": f"urn:mistral#/components/schemas/{schema}"}, registry=registry,
                                   format_checker=oas31_format_checker)
        return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(instance)]

    conn = build_connector("mistral")
    translator = conn.batch_translator()
    items = [PreparedItem(i["custom_id"], request := conn.prepare_chat(i.get("model"), i["messages"], {}, stream=False),
                          conn._chat_wire(request)) for i in ITEMS]
    inline = translator.build_create(items, ("/v1/chat/completions", None)).json
    from_file = translator.build_create(items, ("/v1/chat/completions", "6f1c5f4e-2b8a-4b4e-9c39-3f0c9a1d2e7f")).json
    assert problems("CreateBatchJobRequest", inline) == []
    assert problems("CreateBatchJobRequest", from_file) == []
    fake = MistralBatchFake()
    job = fake.add_job([{"custom_id": "0", "body": {}}], input_file_id="6f1c5f4e-2b8a-4b4e-9c39-3f0c9a1d2e7f")
    assert problems("BatchJob", fake.record(job)) == []
    assert problems("ListBatchJobsResponse", json.loads(fake.listing({}).body)) == []
