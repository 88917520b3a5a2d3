"""Caller input is untrusted too: every bad value is refused with a typed error before any I/O.

The tables of ``harness_inputs`` (the constructor, ``generate_chat``, ``generate_chat_stream`` and
``generate_embedding``) run for every provider, each case on asyncio and on trio, while the
connector points at the byte-level server. Each case must:

* raise an :class:`~llm_connectors.LLMConnectorError` subclass (which one is the library's call:
  ``InvalidRequestError``, ``ConfigurationError``, ``UnsupportedCapabilityError`` for Claude's
  embeddings, a ``NotFoundError`` for a retired model...), never a raw exception;
* raise it before any I/O: the server sees no connection at all;
* quote neither the configured key nor a password from ``base_url`` (in any spelling) in
  ``str(err)``, ``repr(err)`` or ``err.request_id``;
* raise the same class on asyncio and on trio.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from builders import build_connector
from harness_findings import xfail_marks
from harness_inputs import CHAT, EMBED, PASSWORD, SETUP, USER, Bad, BadSetup, assert_refused_on_both_loops
from harness_oracle import FUZZ_KEY, SHARED_TLS
from harness_server import (
    RawHTTPServer,
    RawRequest,
    Script,
    http_response,
    raw_server as raw_server,  # the fixture
)
from harness_templates import CHAT_MODELS, EMBED_MODELS, PROVIDERS, Template, render, templates

import llm_connectors as lc
from llm_connectors.registry import connector_class

_TEMPLATES = {(t.provider, t.mode): t for t in templates()}


def _valid_answer(template: Template | None) -> Callable[[RawRequest], Script]:
    """What the server answers if a request gets through after all: a valid answer (so only the
    request count, not a failed parse, can tell)."""
    if template is None:  # Claude has no embeddings endpoint
        return lambda request: http_response(404, body=b"{}")
    body = b"".join(render(template, template.answer))
    framing = "chunked" if template.mode == "stream" else "length"
    return lambda request: http_response(200, [("content-type", template.content_type)], [body], framing=framing)


def _connector(provider: str, server: RawHTTPServer, **settings: Any) -> lc.BaseConnector:
    settings.setdefault("api_key", FUZZ_KEY)
    settings.setdefault("verify", SHARED_TLS)
    settings.setdefault("timeout", 10)
    return build_connector(provider, base_url=server.url, **settings)


def _connector_at(provider: str, *, base_url: Any, **settings: Any) -> lc.BaseConnector:
    """A connector at ``base_url`` itself (not the harness server's), with the kits' test settings."""
    settings.update(api_key=settings.get("api_key", FUZZ_KEY), verify=SHARED_TLS, retry=False, circuit_breaker=False,
                    timeout=2)  # if a bad address were accepted, the call must not hang for long
    return connector_class(provider)(base_url=base_url, **settings)


async def _call(connector: Any, entry: str, bad: Bad) -> None:
    messages = bad.messages() if callable(bad.messages) else bad.messages
    options = dict(bad.options() if callable(bad.options) else bad.options or {})
    if entry == "chat":
        model = bad.model if bad.model is not None else CHAT_MODELS[connector.provider]
        await connector.generate_chat(model, messages, **options)
    elif entry == "stream":
        model = bad.model if bad.model is not None else CHAT_MODELS[connector.provider]
        async with connector.generate_chat_stream(model, messages, **options) as stream:
            async for _ in stream:
                pass
    else:
        model = bad.model if bad.model is not None else EMBED_MODELS.get(connector.provider, "embed-model")
        await connector.generate_embedding(model, messages, **options)


async def _attempt(make: Callable[[], lc.BaseConnector], use: Callable[[Any], Any]) -> BaseException | None:
    """Build a connector and use it once; what was raised (by either step), or None."""
    connector = None
    try:
        connector = make()
        await use(connector)
    except Exception as exc:  # judged by the caller: only typed errors are acceptable
        return exc
    finally:
        if connector is not None:
            await connector.aclose()
    return None


def _params(table: list[Bad], entries: tuple[str, ...]) -> list[Any]:
    return [pytest.param(provider, entry, bad, id=f"{provider}-{entry}:{bad.name}",
                         marks=xfail_marks(f"{provider}-{entry}:{bad.name}"))
            for provider in PROVIDERS for entry in entries for bad in table]


@pytest.mark.parametrize(("provider", "entry", "bad"), _params(CHAT, ("chat", "stream")))
def test_bad_chat_input(provider: str, entry: str, bad: Bad, raw_server: RawHTTPServer) -> None:
    use = functools.partial(_call, entry=entry, bad=bad)
    attempt = functools.partial(_attempt, functools.partial(_connector, provider, raw_server), use)
    assert_refused_on_both_loops(raw_server, _valid_answer(_TEMPLATES[(provider, entry)]), attempt, (FUZZ_KEY,))


@pytest.mark.parametrize(("provider", "entry", "bad"), _params(EMBED, ("embeddings",)))
def test_bad_embedding_input(provider: str, entry: str, bad: Bad, raw_server: RawHTTPServer) -> None:
    """Claude has no embeddings: every call is refused (``UnsupportedCapabilityError``) before the input is read."""
    use = functools.partial(_call, entry=entry, bad=bad)
    attempt = functools.partial(_attempt, functools.partial(_connector, provider, raw_server), use)
    assert_refused_on_both_loops(raw_server, _valid_answer(_TEMPLATES.get((provider, "embeddings"))), attempt,
                                 (FUZZ_KEY,))


@pytest.mark.parametrize(("provider", "bad"), [
    pytest.param(provider, bad, id=f"{provider}-setup:{bad.name}", marks=xfail_marks(f"{provider}-setup:{bad.name}"))
    for provider in PROVIDERS for bad in SETUP])
def test_bad_setup(provider: str, bad: BadSetup, raw_server: RawHTTPServer) -> None:
    """A connector refused at construction (or, at the latest, by the first call, before it connects)."""
    settings = dict(bad.settings)
    if bad.base_url is None:
        make = functools.partial(_connector, provider, raw_server, **settings)
    else:
        make = functools.partial(_connector_at, provider, base_url=bad.base_url, **settings)

    async def use(connector: lc.BaseConnector) -> None:
        # model=None where the default model is the bad value, so the call has to use it
        await connector.generate_chat(None if "default_model" in settings else CHAT_MODELS[provider], USER)

    secrets = tuple(s for s in (settings.get("api_key"), PASSWORD, FUZZ_KEY) if isinstance(s, str) and len(s) > 3)
    attempt = functools.partial(_attempt, make, use)
    typed = (lc.LLMConnectorError, TypeError) if bad.python_type_error else (lc.LLMConnectorError,)
    assert_refused_on_both_loops(raw_server, _valid_answer(_TEMPLATES[(provider, "chat")]), attempt, secrets,
                                 typed=typed)


def test_table_size() -> None:
    """The tables hold 200+ bad inputs; every provider runs them all."""
    assert len(CHAT) + len(EMBED) + len(SETUP) >= 200
    assert len(PROVIDERS) == 5
