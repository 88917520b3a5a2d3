"""OpenAI Chat Completions against openai 3.63.0: the developer role, documents, service tiers,
prompt-cache options, streamed refusals, per-model reasoning efforts, Responses-only models, and
parity with the requests the official SDK sends (fixtures/openai/sdk_requests/openai-3.63.0)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from builders import build_connector

import llm_connectors as lc
from llm_connectors import catalog
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.connectors.openai_compat import OpenAICompatibleConnector
from llm_connectors.testing.openai_responses_wire import responses_json
from llm_connectors.testing.openai_wire import openai_chat_json

pytestmark = pytest.mark.anyio
BASE = "https://api.openai.com/v1"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "openai"
SDK = FIXTURES / "sdk_requests" / "openai-3.63.0"
MODEL = "gpt-5.4-mini"
PDF = "data:application/pdf;base64,JVBERi0xLjQKJcOkw7zDtsOfCg=="
SYSTEM_USER = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]
TEXT = {"type": "text", "text": "Summarise this report."}


def user(*parts: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(parts)}]


#: The neutral input of each SDK capture (capture.py there says what the SDK was given).
CASES: dict[str, dict[str, Any]] = {
    "system_user": {"messages": SYSTEM_USER},
    "developer": {"messages": [{"role": "developer", "content": "Answer in French."},
                               {"role": "user", "content": "Hello"}]},
    "file_data": {"messages": user(TEXT, {"type": "file", "file": {"file_data": PDF, "filename": "report.pdf"}})},
    "file_id": {"messages": user(TEXT, {"type": "file", "file": {"file_id": "file-abc123"}})},
    "service_tier_fast": {"messages": SYSTEM_USER, "service_tier": "fast"},
    "prompt_cache": {"messages": SYSTEM_USER, "prompt_cache_key": "tenant-42",
                     "prompt_cache_options": {"mode": "explicit", "ttl": "30m"}, "prompt_cache_retention": "24h"},
    "reasoning_max_verbosity": {"messages": SYSTEM_USER, "reasoning_effort": "max", "verbosity": "low"},
}


@pytest.fixture
def mock() -> Any:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def conn() -> Any:
    async with build_connector("openai") as c:
        yield c


@pytest.fixture
def offline() -> OpenAIConnector:
    # Never sends: prepare_* and build_* do no I/O, so no client is ever created.
    return build_connector("openai")  # type: ignore[return-value]


def body_of(conn: OpenAICompatibleConnector, messages: Any, model: str | None = MODEL, *, stream: bool = False,
            **options: Any) -> dict[str, Any]:
    """The JSON body the connector would send (no I/O)."""
    built = conn.build_chat_request(conn.prepare_chat(model, messages, options, stream=stream)).json
    assert isinstance(built, dict)
    return built


def sse_reply(name: str) -> httpx.Response:
    return httpx.Response(200, content=(FIXTURES / name).read_bytes(), headers={"content-type": "text/event-stream"})


# -- parity with the official SDK ------------------------------------------------------------------

def test_every_capture_has_a_case() -> None:
    # the responses_* captures are test_openai_responses.py's
    assert {p.stem for p in SDK.glob("*.json")  # batch_*: test_batches_openai.py
            if "responses" not in p.stem and not p.stem.startswith("batch_")} == set(CASES) | {"stream_system_user"}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_body_matches_official_sdk(mock: Any, case: str) -> None:
    expected = json.loads((SDK / f"{case}.json").read_text())
    route = mock.post("/chat/completions").respond(json=openai_chat_json("hi"))
    options = dict(CASES[case])
    messages = options.pop("messages")
    async with build_connector("openai", api_key="test-key") as c:
        await c.generate_chat(MODEL, messages, **options)
    request = route.calls.last.request
    assert request.url.path == expected["path"]
    assert json.loads(request.content) == expected["body"]
    for name, value in expected["headers"].items():
        assert request.headers[name] == value


async def test_stream_body_matches_official_sdk(mock: Any) -> None:
    expected = json.loads((SDK / "stream_system_user.json").read_text())
    route = mock.post("/chat/completions").mock(return_value=sse_reply("chat_stream_refusal.sse"))
    async with build_connector("openai", api_key="test-key") as c:
        await c.generate_chat_stream(MODEL, SYSTEM_USER).collect()
    assert json.loads(route.calls.last.request.content) == expected["body"]


# -- the developer role ----------------------------------------------------------------------------

def test_developer_role_is_sent_as_is_by_openai(offline: OpenAIConnector) -> None:
    assert "developer" in OpenAIConnector.message_roles
    body = body_of(offline, CASES["developer"]["messages"])
    assert [m["role"] for m in body["messages"]] == ["developer", "user"]


async def test_compatible_servers_get_developer_as_system() -> None:
    assert "developer" not in OpenAICompatibleConnector.message_roles
    async with OpenAICompatibleConnector(base_url="http://127.0.0.1:8000/v1") as local:
        body = body_of(local, CASES["developer"]["messages"], "some-local-model")
    assert body["messages"] == [{"role": "system", "content": "Answer in French."},
                                {"role": "user", "content": "Hello"}]


# -- documents -------------------------------------------------------------------------------------

def test_documents_capability_and_catalog(offline: OpenAIConnector) -> None:
    assert lc.Capability.DOCUMENTS in offline.capabilities
    for model in ("gpt-5.4-mini", "gpt-5.5", "gpt-6-sol", "gpt-5.6-sol"):
        assert "document" in offline.model_info(model).input_modalities, model


def test_file_part_keeps_filename_and_drops_cache_control(offline: OpenAIConnector) -> None:
    part = {"type": "file", "file": {"file_data": PDF, "filename": "r.pdf"}, "cache_control": {"type": "ephemeral"}}
    body = body_of(offline, user({**TEXT, "cache_control": {"type": "ephemeral", "ttl": "1h"}}, part))
    assert body["messages"][0]["content"] == [TEXT, {"type": "file", "file": {"file_data": PDF, "filename": "r.pdf"}}]


@pytest.mark.parametrize(("file", "error", "words"), [
    ({"url": "https://example.com/a.pdf"}, lc.UnsupportedCapabilityError, "no document URL"),
    ({"file_data": "data:text/plain;base64,aGk=", "filename": "a.txt"}, lc.UnsupportedCapabilityError,
     "PDF documents only"),
    ({"file_data": PDF}, lc.InvalidRequestError, "needs a filename"),
])
async def test_documents_openai_cannot_take_are_refused_before_io(
        mock: Any, conn: OpenAIConnector, file: dict[str, Any], error: type[Exception], words: str) -> None:
    route = mock.post("/chat/completions").respond(json=openai_chat_json("hi"))
    with pytest.raises(error, match=words):
        await conn.generate_chat(MODEL, user(TEXT, {"type": "file", "file": file}))
    assert not route.called


async def test_compatible_servers_refuse_documents() -> None:
    async with OpenAICompatibleConnector(base_url="http://127.0.0.1:8000/v1") as local:
        with pytest.raises(lc.UnsupportedCapabilityError, match="documents"):
            local.prepare_chat("m", user(TEXT, {"type": "file", "file": {"file_id": "f"}}), {}, stream=False)


# -- options ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("tier", ["auto", "default", "flex", "scale", "priority", "fast"])
def test_every_current_service_tier_is_accepted(offline: OpenAIConnector, tier: str) -> None:
    assert body_of(offline, "Hi", service_tier=tier)["service_tier"] == tier


def test_unknown_service_tier_is_refused_naming_the_allowed_set(offline: OpenAIConnector) -> None:
    with pytest.raises(lc.InvalidRequestError, match="service_tier") as info:
        body_of(offline, "Hi", service_tier="turbo")
    assert "'fast'" in str(info.value) and "'priority'" in str(info.value)


@pytest.mark.parametrize(("options", "words"), [
    ({"prompt_cache_options": {"mode": "sometimes"}}, "prompt_cache_options"),
    ({"prompt_cache_options": {"ttl": "1h"}}, "'30m'"),
    ({"prompt_cache_options": {"mode": "explicit", "breakpoints": 2}}, "breakpoints"),
    ({"prompt_cache_retention": "1h"}, "'24h'"),
    ({"verbosity": "terse"}, "'medium'"),
])
def test_prompt_cache_and_verbosity_options_are_checked(offline: OpenAIConnector, options: dict[str, Any],
                                                        words: str) -> None:
    with pytest.raises(lc.InvalidRequestError, match="option") as info:
        body_of(offline, "Hi", **options)
    assert words in str(info.value)


def test_tool_cache_control_is_not_sent(offline: OpenAIConnector) -> None:
    tool = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}},
            "cache_control": {"type": "ephemeral"}}
    assert body_of(offline, "Hi", tools=[tool])["tools"] == [
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}]


def test_logprobs_options_are_accepted(offline: OpenAIConnector) -> None:
    body = body_of(offline, "Hi", logprobs=True, top_logprobs=3)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 3)


async def test_cached_tokens_are_read(mock: Any, conn: OpenAIConnector) -> None:
    usage = {"prompt_tokens": 2048, "completion_tokens": 5, "total_tokens": 2053,
             "prompt_tokens_details": {"cached_tokens": 1920}}
    mock.post("/chat/completions").respond(json=openai_chat_json("hi", usage=usage))
    response = await conn.generate_chat(MODEL, "Hi", prompt_cache_key="tenant-42")
    assert (response.usage.input_tokens, response.usage.cache_read_tokens) == (2048, 1920)


# -- reasoning efforts per model, Responses-only models --------------------------------------------

def test_every_sdk_reasoning_effort_is_accepted(offline: OpenAIConnector) -> None:
    for effort in ("none", "minimal", "low", "medium", "high", "xhigh", "max"):
        assert body_of(offline, "Hi", "an-uncatalogued-model", reasoning_effort=effort)["reasoning_effort"] == effort


@pytest.mark.parametrize(("model", "effort"), [("gpt-5.1", "minimal"), ("gpt-5.4", "max"), ("gpt-5.5", "minimal")])
def test_effort_the_model_does_not_take_is_refused(offline: OpenAIConnector, model: str, effort: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lc.ModelDeprecationWarning)  # gpt-5.1 retires in 2027
        with pytest.raises(lc.InvalidRequestError, match="reasoning_effort") as info:
            body_of(offline, "Hi", model, reasoning_effort=effort)
    assert model in str(info.value)


def test_gpt_5_6_takes_max(offline: OpenAIConnector) -> None:
    assert body_of(offline, "Hi", "gpt-5.6-sol", reasoning_effort="max")["reasoning_effort"] == "max"


@pytest.mark.parametrize("model", ["gpt-5.5-pro", "o3-pro", "gpt-5-codex", "gpt-6-cyber"])
async def test_responses_only_models_go_to_the_responses_api(mock: Any, conn: OpenAIConnector, model: str) -> None:
    chat = mock.post("/chat/completions").respond(json=openai_chat_json("hi"))
    responses = mock.post("/responses").respond(json=responses_json("hi", model=model))
    assert (await conn.generate_chat(model, "Hi")).content == "hi"
    assert responses.called and not chat.called  # tests/providers/test_openai_responses*.py for the rest


def test_retired_models_name_a_successor() -> None:
    for info in catalog.models("openai"):
        if info.retires_on:
            assert info.successor and catalog.entry("openai", info.successor) is not None, info.id


# -- refusals --------------------------------------------------------------------------------------

async def test_streamed_refusal_reads_like_the_plain_one(mock: Any, conn: OpenAIConnector) -> None:
    mock.post("/chat/completions").mock(side_effect=lambda request: (
        sse_reply("chat_stream_refusal.sse") if json.loads(request.content).get("stream")
        else httpx.Response(200, json=json.loads((FIXTURES / "chat_refusal.json").read_text()))))
    plain = await conn.generate_chat(MODEL, "Help me pick a lock.")
    chunks = []
    async with conn.generate_chat_stream(MODEL, "Help me pick a lock.") as stream:
        async for chunk in stream:
            chunks.append(chunk)
    streamed = stream.response
    assert (plain.content, plain.finish_reason) == ("I'm sorry, I can't help with that.", "content_filter")
    for field in ("content", "finish_reason", "native_finish_reason", "usage", "model", "id"):
        assert getattr(streamed, field) == getattr(plain, field), field
    assert "".join(c.delta for c in chunks) == plain.content  # the refusal is visible as it streams
    assert "".join(c.refusal for c in chunks) == plain.content  # and apart, for a UI that shows it so
    assert chunks[-1].finish_reason == "content_filter"


async def test_stream_with_answer_text_keeps_its_finish_reason(mock: Any, conn: OpenAIConnector) -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    events = [{**base, "choices": [{"index": 0, "delta": {"content": "Sure.", "refusal": None},
                                    "finish_reason": None}]},
              {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    mock.post("/chat/completions").respond(200, content=body.encode(), headers={"content-type": "text/event-stream"})
    response = await conn.generate_chat_stream(MODEL, "Hi").collect()
    assert (response.content, response.finish_reason) == ("Sure.", "stop")

