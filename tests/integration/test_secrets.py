"""No API key in any exception, repr or log line; bad keys rejected without echoing them."""

from __future__ import annotations

import logging
import traceback

import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors._secrets import Secret
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.openai_wire import OpenAIFake

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "Hi"}]


def exception_text(exc: BaseException) -> str:
    seen = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return "\n".join([*(repr(e) + str(e) for e in seen),
                      "".join(traceback.format_exception(exc))])


def test_secret_never_shows() -> None:
    secret = Secret("sk-very-secret")
    assert "sk-very" not in repr(secret) + str(secret) + f"{secret}"
    assert secret.reveal() == "sk-very-secret" and Secret(secret) == secret
    assert secret.fingerprint() != "sk-very-secret" and len(secret.fingerprint()) == 16
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


@pytest.mark.parametrize("bad", ["sk-abc\n", "sk-\r\nX-Injected: 1", "sk-a\x00b", " sk-x", "sk-\x7f", "sk-é😀"])
def test_bad_keys_rejected_without_echo(bad: str) -> None:
    with pytest.raises(lc.ConfigurationError) as info:
        OpenAIConnector(api_key=bad)
    text = exception_text(info.value)
    assert bad.strip() not in text and "sk-" not in text.replace("sk-canary", "")
    assert "API key" in str(info.value)


def test_bad_header_values_rejected() -> None:
    with pytest.raises(lc.ConfigurationError, match="header 'x-trace'"):
        OpenAIConnector(api_key="k", headers={"x-trace": "a\nb"})
    with pytest.raises(lc.ConfigurationError, match="invalid header name"):
        OpenAIConnector(api_key="k", headers={"bad name": "v"})


async def test_canary_never_leaks(canary_key: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = OpenAIFake()
    # A hostile or careless server echoing the key back in its error message.
    fake.replies.extend([
        Reply.json({"error": {"message": f"Incorrect API key provided: {canary_key}"}}, 401),
        Reply.json({"error": {"message": f"key {canary_key} over quota", "code": "insufficient_quota"}}, 429),
        Reply.sse([f'data: {{"error": {{"message": "bad {canary_key}"}}}}\n\n'.encode()]),
    ])
    errors: list[BaseException] = []
    with FakeServer(fake) as server:
        async with build_connector("openai", server.url, api_key=canary_key) as conn:
            assert canary_key not in repr(conn) + str(conn)
            for _ in range(2):
                with pytest.raises(lc.LLMConnectorError) as info:
                    await conn.generate_chat("m", USER)
                errors.append(info.value)
            with pytest.raises(lc.LLMConnectorError) as info:
                await conn.generate_chat_stream("m", USER).collect()
            errors.append(info.value)
            assert not await conn.health_check() or True
    with FakeServer(OpenAIFake()) as gone:
        closed = gone.url  # nothing listens there any more: the connection is refused
    async with build_connector("openai", closed, api_key=canary_key) as conn:
        with pytest.raises(lc.NetworkError) as info:
            await conn.generate_chat("m", USER)
        errors.append(info.value)
    for error in errors:
        assert canary_key not in exception_text(error)
    assert "***" in str(errors[0])
    assert canary_key not in caplog.text
