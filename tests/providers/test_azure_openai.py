"""Azure OpenAI (connectors/azure_openai.py): both URL styles against the official SDK's requests
(fixtures/azure_openai/sdk_requests/openai-3.63.0), api-key and Entra ID auth, the SDK's environment
variables, content-filter errors and finishes, and loopback round trips on both URL styles."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

import llm_connectors as lc
from llm_connectors import factory
from llm_connectors.connectors.azure_openai import AzureContentFilterError, AzureOpenAIConnector
from llm_connectors.errors import ConfigurationError, UnsupportedCapabilityError
from llm_connectors.testing import FakeServer
from llm_connectors.testing.azure_openai_wire import AzureOpenAIWireKit
from llm_connectors.testing.conformance import ConnectorConformance
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit, openai_chat_json
from llm_connectors.testing.server import Reply, Request

pytestmark = pytest.mark.anyio
SDK = Path(__file__).parent.parent / "fixtures" / "azure_openai" / "sdk_requests" / "openai-3.63.0"
ENDPOINT = "https://example-resource.openai.azure.com"
VERSION = "2024-10-21"
DEPLOYMENT = "my-gpt-deployment"
SYSTEM_USER = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]
ENV = ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION",
       "LLM_CONNECTORS_PROVIDERS")
EMBEDDING = {"object": "list", "model": DEPLOYMENT, "data": [{"object": "embedding", "index": 0,
                                                              "embedding": "AACAPw=="}],
             "usage": {"prompt_tokens": 1, "total_tokens": 1}}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def azure(**settings: Any) -> AzureOpenAIConnector:
    settings.setdefault("endpoint", ENDPOINT)
    if not any(k in settings for k in ("azure_ad_token", "azure_ad_token_provider")):
        settings.setdefault("api_key", "test-key")
    return AzureOpenAIConnector(retry=False, circuit_breaker=False, **settings)


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=EMBEDDING if request.url.path.endswith("/embeddings") else openai_chat_json("hi"))


# -- parity with the official SDK (AzureOpenAI for the dated API, OpenAI(base_url=.../openai/v1/) for v1) --

@pytest.mark.parametrize("case", ["dated_chat", "v1_chat", "dated_entra_chat", "v1_entra_chat"])
async def test_chat_request_matches_official_sdk(mock: respx.MockRouter, case: str) -> None:
    expected = json.loads((SDK / f"{case}.json").read_text())
    route = mock.route(host="example-resource.openai.azure.com").mock(side_effect=answer)
    dated = {"api_version": VERSION} if case.startswith("dated") else {}
    auth = {"azure_ad_token_provider": lambda: "entra-token"} if "entra" in case else {}
    async with azure(**dated, **auth) as conn:
        await conn.generate_chat(DEPLOYMENT, SYSTEM_USER, max_tokens=64)
    request = route.calls.last.request
    assert (request.method, request.url.path, dict(request.url.params)) == (
        expected["method"], expected["path"], expected["query"])
    assert json.loads(request.content) == expected["body"]
    if "entra" in case or case.startswith("dated"):
        for name, value in expected["headers"].items():
            assert request.headers[name] == value
    else:  # the v1 guide's plain OpenAI client sends the key as a bearer token; Azure takes both headers
        assert request.headers["api-key"] == "test-key" and "authorization" not in request.headers


@pytest.mark.parametrize("case", ["dated_embeddings", "v1_embeddings"])
async def test_embedding_request_matches_official_sdk(mock: respx.MockRouter, case: str) -> None:
    expected = json.loads((SDK / f"{case}.json").read_text())
    route = mock.route(host="example-resource.openai.azure.com").mock(side_effect=answer)
    async with azure(**({"api_version": VERSION} if case.startswith("dated") else {})) as conn:
        result = await conn.generate_embedding(DEPLOYMENT, ["Hello"])
    request = route.calls.last.request
    assert (request.url.path, dict(request.url.params)) == (expected["path"], expected["query"])
    assert json.loads(request.content) == expected["body"]
    assert result.embeddings == [[1.0]]


def test_every_capture_is_checked() -> None:
    assert {p.stem for p in SDK.glob("*.json")} == {"dated_chat", "v1_chat", "dated_entra_chat", "v1_entra_chat",
                                                     "dated_embeddings", "v1_embeddings"}


# -- URLs beyond chat and embeddings ----------------------------------------------------------------------

async def test_dated_api_routes_responses_and_models_without_deployment(mock: respx.MockRouter) -> None:
    models = mock.get(f"{ENDPOINT}/openai/models", params={"api-version": VERSION}).respond(
        json={"object": "list", "data": [{"id": "gpt-5.4-mini", "object": "model", "created": 1, "owned_by": "x"}]})
    async with azure(api_version=VERSION) as conn:
        assert [m.id for m in await conn.list_models()] == ["gpt-5.4-mini"]
        wire = conn.build_chat_request(conn.prepare_chat(DEPLOYMENT, "hi", {"provider_options": {
            "azure_openai": {"api": "responses"}}}, stream=False))
    assert models.called
    # openai 3.63.0 lib/azure.py: only the deployment endpoints go under /deployments/{model}
    assert (wire.path, wire.params) == ("/responses", {"api-version": VERSION})
    assert conn.base_url == f"{ENDPOINT}/openai"


async def test_deployment_names_are_escaped_in_the_dated_path(mock: respx.MockRouter) -> None:
    route = mock.route(host="example-resource.openai.azure.com").mock(side_effect=answer)
    async with azure(api_version=VERSION) as conn:
        await conn.generate_chat("team/dep 1", "hi")
    assert route.calls.last.request.url.raw_path.startswith(b"/openai/deployments/team%2Fdep%201/chat/completions?")


def test_v1_is_the_default_and_api_version_v1_selects_it() -> None:
    for conn in (azure(), azure(api_version="v1"), azure(endpoint=ENDPOINT + "/")):
        assert conn.base_url == f"{ENDPOINT}/openai/v1" and conn.api_version is None
        wire = conn.build_chat_request(conn.prepare_chat(DEPLOYMENT, "hi", {}, stream=False))
        assert (wire.path, wire.params) == ("/chat/completions", None)


async def test_batches_are_refused_on_the_dated_api() -> None:
    with pytest.raises(UnsupportedCapabilityError, match="api_version"):
        await azure(api_version=VERSION).submit_batch([{"custom_id": "a", "messages": "hi"}])


# -- auth ---------------------------------------------------------------------------------------------------

async def test_entra_token_provider_is_called_per_request_sync_or_async(mock: respx.MockRouter) -> None:
    route = mock.route(host="example-resource.openai.azure.com").mock(side_effect=answer)
    tokens = iter(["tok-1", "tok-2"])

    async def async_provider() -> str:
        return "tok-async"

    async with azure(azure_ad_token_provider=lambda: next(tokens)) as conn:
        await conn.generate_chat(DEPLOYMENT, "hi")
        await conn.generate_chat(DEPLOYMENT, "hi")
    async with azure(azure_ad_token_provider=async_provider) as conn:
        await conn.generate_chat(DEPLOYMENT, "hi")
    sent = [c.request.headers for c in route.calls]
    assert [h["authorization"] for h in sent] == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-async"]
    assert all("api-key" not in h for h in sent)
    assert "tok-" not in repr(conn)


def test_a_static_entra_token_and_a_key_use_their_headers() -> None:
    assert azure(azure_ad_token="ad-token").auth_headers() == {"authorization": "Bearer ad-token"}
    assert azure().auth_headers() == {"api-key": "test-key"}


@pytest.mark.parametrize(("settings", "message"), [
    ({"endpoint": None}, "AZURE_OPENAI_ENDPOINT"),
    ({"base_url": ENDPOINT + "/openai/v1"}, "endpoint or base_url"),
    ({"azure_ad_token": "t"}, "api_key and azure_ad_token"),
    ({"azure_ad_token_provider": "not callable", "api_key": None}, "callable"),
    ({"api_version": "2024 10 21"}, "api_version"),
    ({"api_key": None}, "AZURE_OPENAI_API_KEY"),
])
def test_configuration_errors_name_the_fix(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        AzureOpenAIConnector(**{"endpoint": ENDPOINT, "api_key": "test-key", **settings})


# -- the environment (the SDK's variables and precedence) -------------------------------------------------

def test_environment_variables_as_the_sdk_reads_them() -> None:
    env = {"AZURE_OPENAI_API_KEY": "env-key", "AZURE_OPENAI_ENDPOINT": ENDPOINT}
    v1 = AzureOpenAIConnector.from_env(env)
    assert (v1.base_url, v1.api_version, v1.auth_headers()) == (f"{ENDPOINT}/openai/v1", None, {"api-key": "env-key"})
    dated = AzureOpenAIConnector.from_env({**env, "OPENAI_API_VERSION": VERSION})
    assert (dated.base_url, dated.api_version) == (f"{ENDPOINT}/openai", VERSION)
    # an AD token in the environment wins over the key (the SDK's order), an explicit credential over both
    token = AzureOpenAIConnector.from_env({**env, "AZURE_OPENAI_AD_TOKEN": "env-token"})
    assert token.auth_headers() == {"authorization": "Bearer env-token"}
    explicit = AzureOpenAIConnector.from_env({**env, "AZURE_OPENAI_AD_TOKEN": "env-token"}, api_key="mine",
                                             api_version="v1")
    assert (explicit.auth_headers(), explicit.api_version) == ({"api-key": "mine"}, None)


async def test_get_connector_takes_the_deployment_as_model_and_auto_needs_key_and_endpoint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "env-key")
    assert "azure_openai" not in factory.auto_order()  # no endpoint: not a candidate
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", ENDPOINT)
    conn = await lc.get_connector(f"azure_openai:{DEPLOYMENT}")
    assert isinstance(conn, AzureOpenAIConnector) and conn.default_model == DEPLOYMENT
    assert "azure_openai" in factory.auto_order()
    assert "azure_openai" in lc.provider_ids()


# -- content filtering --------------------------------------------------------------------------------------

FILTERED_400 = {"error": {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
    "type": None, "param": "prompt", "code": "content_filter", "status": 400,
    "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
        "hate": {"filtered": False, "severity": "safe"}, "jailbreak": {"filtered": True, "detected": True},
        "self_harm": {"filtered": False, "severity": "safe"}, "sexual": {"filtered": False, "severity": "safe"},
        "violence": {"filtered": True, "severity": "medium"}}}}}


async def test_a_filtered_prompt_is_a_content_filter_error_with_categories(mock: respx.MockRouter) -> None:
    mock.route(host="example-resource.openai.azure.com").respond(400, json=FILTERED_400,
                                                                 headers={"apim-request-id": "req-1"})
    async with azure() as conn:
        with pytest.raises(AzureContentFilterError) as caught:
            await conn.generate_chat(DEPLOYMENT, "hi")
    err = caught.value
    assert isinstance(err, lc.ContentFilterError)
    assert (err.categories, err.status_code, err.code, err.request_id, err.retryable) == (
        ["jailbreak", "violence"], 400, "content_filter", "req-1", False)
    assert "content management policy" in err.message


async def test_a_content_filter_error_without_details_has_no_categories(mock: respx.MockRouter) -> None:
    body = {"error": {"message": "filtered", "code": "content_filter", "innererror": {"content_filter_result": [1]}}}
    mock.route(host="example-resource.openai.azure.com").respond(400, json=body)
    async with azure() as conn:
        with pytest.raises(AzureContentFilterError) as caught:
            await conn.generate_chat(DEPLOYMENT, "hi")
    assert caught.value.categories == []


FILTER_RESULTS = {"hate": {"filtered": False, "severity": "safe"}, "violence": {"filtered": True, "severity": "high"}}


async def test_a_filtered_answer_finishes_with_content_filter(mock: respx.MockRouter) -> None:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-5.4-mini",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            "choices": [{"index": 0, "finish_reason": "content_filter", "message": {"role": "assistant",
                                                                                    "content": None},
                         "content_filter_results": FILTER_RESULTS}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
    mock.route(host="example-resource.openai.azure.com").respond(json=body)
    async with azure() as conn:
        response = await conn.generate_chat(DEPLOYMENT, "hi")
    assert (response.finish_reason, response.content) == ("content_filter", "")
    assert response.raw["choices"][0]["content_filter_results"] == FILTER_RESULTS


async def test_a_filtered_stream_with_azures_prompt_filter_chunk(mock: respx.MockRouter) -> None:
    chunks = [  # Azure's first chunk carries only the prompt's filter results, with no choices
        {"choices": [], "created": 0, "id": "", "model": "", "object": "",
         "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5.4-mini",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Once"}, "finish_reason": None,
                      "content_filter_results": {}}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5.4-mini",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter",
                      "content_filter_results": FILTER_RESULTS}]},
    ]
    sse = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    mock.route(host="example-resource.openai.azure.com").respond(
        content=sse, headers={"content-type": "text/event-stream"})
    async with azure() as conn:
        response = await conn.generate_chat_stream(DEPLOYMENT, "hi").collect()
    assert (response.content, response.finish_reason) == ("Once", "content_filter")


# -- loopback round trips (a real socket, the OpenAI fake) --------------------------------------------------

def dated_fake(fake: OpenAIFake) -> Any:
    """The dated API in front of the OpenAI fake: /openai/deployments/{d}/... with ?api-version."""
    def handler(request: Request) -> Reply:
        found = re.fullmatch(r"/openai/deployments/([^/]+)(/chat/completions|/embeddings)", request.path.split("?")[0])
        if request.query.get("api-version") != VERSION or found is None or request.headers.get("api-key") != "k":
            return Reply.json({"error": {"code": "404", "message": "Resource not found"}}, 404)
        body = request.json()
        assert body["model"] == found.group(1)
        return fake.chat(body) if found.group(2) == "/chat/completions" else fake.embeddings(body)
    return handler


@pytest.mark.parametrize("style", ["v1", "dated"])
async def test_round_trip_over_loopback(style: str) -> None:
    fake = OpenAIFake("hello from azure", path_prefix="/openai/v1")
    with FakeServer(fake if style == "v1" else dated_fake(fake)) as server:
        dated = {"api_version": VERSION} if style == "dated" else {}
        async with AzureOpenAIConnector(endpoint=server.url, api_key="k", retry=False, **dated) as conn:
            response = await conn.generate_chat(DEPLOYMENT, "hi")
            streamed = await conn.generate_chat_stream(DEPLOYMENT, "hi").collect()
            vectors = await conn.generate_embedding(DEPLOYMENT, ["a b"])
    assert response.content == streamed.content == "hello from azure"
    assert len(vectors.embeddings[0]) == 8
    assert all(r.headers.get("api-key") == "k" and "authorization" not in r.headers for r in server.requests)


# -- the shipped conformance suite on the dated API (the v1 kit runs in test_conformance.py) -------------

class AzureDatedWireKit(AzureOpenAIWireKit):
    base_path = "/openai"
    chat_path = f"/openai/deployments/{OpenAIWireKit.model}/chat/completions"
    api_version = VERSION


class TestDatedConformance(ConnectorConformance):
    kit = AzureDatedWireKit()

    async def test_request_shape(self, wire_kit: Any, fake_server: FakeServer, scripted_handler: Any) -> None:
        class ShapeKit(AzureDatedWireKit):  # this test's model names the deployment in the path
            chat_path = "/openai/deployments/conformance-model-1/chat/completions"

        await super().test_request_shape(ShapeKit(), fake_server, scripted_handler)
