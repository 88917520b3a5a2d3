"""A server may echo anything back, the key included: in a request-id header, in an error message,
URL-encoded or base64. None of it reaches an error's message, str, repr or request id."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

import llm_connectors as lc
from llm_connectors.connectors.mistral import MistralConnector
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.testing import FakeServer, Reply

pytestmark = pytest.mark.anyio

KEY = "sk-echo-0123456789abcdef"
SPELLINGS = (KEY, urllib.parse.quote(KEY, safe=""), base64.b64encode(KEY.encode()).decode())


@pytest.mark.parametrize(("cls", "header"), [(OpenAIConnector, "x-request-id"),
                                              (MistralConnector, "mistral-correlation-id")])
@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_a_key_echoed_in_the_request_id_and_message_is_masked(cls: type[lc.BaseConnector], header: str,
                                                                    spelling: str) -> None:
    def echo(_: object) -> Reply:
        body = {"error": {"message": f"bad key {spelling}", "type": "invalid_request_error", "code": None}}
        return Reply.json(body, 400, {header: f"req-{spelling}"})

    with FakeServer(echo) as server:
        async with cls(api_key=KEY, base_url=server.url + "/v1", retry=False, circuit_breaker=False) as conn:
            with pytest.raises(lc.InvalidRequestError) as caught:
                await conn.generate_chat("m", "hi")
    err = caught.value
    shown = " ".join([err.message, str(err), repr(err), err.request_id or ""])
    assert all(s not in shown for s in SPELLINGS), shown
    assert err.request_id == "req-***"
