"""TLS certificate verification (RELIABILITY.md §6.5, row X5), against a trustme-signed loopback server.

A certificate signed by an unknown CA fails by default with a typed error that says how to fix
it; only an explicit CA bundle or ``ssl.SSLContext`` makes it pass; ``verify=False`` needs
``allow_unverified_tls=True`` and then warns once per process. Every engine behaves the same: httpx's
(asyncio and trio, pooled and behind an environment proxy setting) and aiohttp's (asyncio only).
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import engine_matrix
import httpx
import pytest
import trustme
from builders import build_connector

import llm_connectors as lc
from llm_connectors.errors import InsecureTLSWarning
from llm_connectors.http import settings as _http
from llm_connectors.http.engines import ClientEngine
from llm_connectors.testing import FakeServer
from llm_connectors.testing.kit import TEST_KEY
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit
from llm_connectors.wire.classify import TLS_VERIFY_FAILED

pytestmark = pytest.mark.anyio
# Every test taking ``engine`` runs on asyncio+httpx, trio+httpx and asyncio+aiohttp.
combo, anyio_backend, engine = engine_matrix.combo, engine_matrix.anyio_backend, engine_matrix.engine
needs_aiohttp = engine_matrix.needs_aiohttp
KIT = OpenAIWireKit()
USER = [{"role": "user", "content": "Hi"}]
MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_pem(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(ca: trustme.CA, *hosts: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hosts).configure_cert(context)
    return context


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[FakeServer]:
    """An OpenAI-wire server on https://127.0.0.1 whose certificate only the test CA vouches for."""
    with FakeServer(OpenAIFake(), ssl_context=server_context(ca, "127.0.0.1")) as running:
        yield running


@pytest.fixture
def warned_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The once-per-process warning, as if no connector had turned verification off yet."""
    monkeypatch.setattr(_http, "_warned_unverified", False)


def unverified(server: FakeServer, engine: str) -> lc.BaseConnector:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureTLSWarning)
        return build_connector("openai", server.url, transport=engine, verify=False, allow_unverified_tls=True)


async def chat_and_stream(conn: lc.BaseConnector | lc.FallbackConnector) -> None:
    reply = await conn.generate_chat(MODEL, USER)
    assert reply.content == "Hello from the fake provider."
    async with conn.generate_chat_stream(MODEL, USER) as stream:
        assert "".join([chunk.delta async for chunk in stream]) == reply.content


def assert_tls_error(err: lc.ConfigurationError, reason: str) -> None:
    text = str(err)
    assert err.code == TLS_VERIFY_FAILED and err.provider == "openai"
    assert "TLS certificate verification failed" in text and reason in text
    assert "verify='/path/to/ca-bundle.pem'" in text and "ssl.SSLContext" in text  # the fix
    assert err.retryable is False and err.breaker_failure is False and err.fallback is False
    assert TEST_KEY not in text and TEST_KEY not in repr(err)


# -- verification on: the default, a CA bundle, an SSLContext ------------------------------------


async def test_default_trust_store_refuses_an_unknown_ca(server: FakeServer, engine: str) -> None:
    # The default retry policy and breaker are on: a trust problem must be neither retried nor counted.
    async with build_connector("openai", server.url, transport=engine, retry=None, circuit_breaker=None) as conn:
        with pytest.raises(lc.ConfigurationError) as info:
            await conn.generate_chat(MODEL, USER)
        assert_tls_error(info.value, "unable to get local issuer certificate")
        assert "during chat response" in str(info.value)
        with pytest.raises(lc.ConfigurationError) as opened:
            async with conn.generate_chat_stream(MODEL, USER) as stream:
                async for _ in stream:
                    pass
        assert_tls_error(opened.value, "unable to get local issuer certificate")
        stats = conn.stats()["openai"]
        assert stats["retries"] == 0 and stats["breaker"]["failures"] == 0
    assert server.requests == []  # nothing, the key included, went over the untrusted connection


async def test_a_certificate_for_another_host_is_the_same_typed_error(ca: trustme.CA, ca_pem: str,
                                                                       engine: str) -> None:
    with FakeServer(OpenAIFake(), ssl_context=server_context(ca, "localhost")) as other:
        async with build_connector("openai", other.url, transport=engine, verify=ca_pem) as conn:
            with pytest.raises(lc.ConfigurationError) as info:
                await conn.generate_chat(MODEL, USER)
        assert other.requests == []
    assert_tls_error(info.value, "IP address mismatch, certificate is not valid for '127.0.0.1'")


async def test_a_ca_bundle_path_is_trusted(server: FakeServer, ca_pem: str, engine: str) -> None:
    for verify in (ca_pem, Path(ca_pem)):
        async with build_connector("openai", server.url, transport=engine, verify=verify) as conn:
            await chat_and_stream(conn)
    assert all(request.headers["authorization"] == f"Bearer {TEST_KEY}" for request in server.requests)


async def test_an_ssl_context_is_trusted(server: FakeServer, ca: trustme.CA, engine: str) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with build_connector("openai", server.url, transport=engine, verify=context) as conn:
        await chat_and_stream(conn)


async def test_ssl_cert_file_is_honoured_as_before(server: FakeServer, ca_pem: str, engine: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem)
    async with build_connector("openai", server.url, transport=engine) as conn:
        await chat_and_stream(conn)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_behind_an_environment_proxy_setting(server: FakeServer, ca_pem: str, anyio_backend: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With HTTPS_PROXY set, httpx's own client carries the requests (NO_PROXY keeps them local)."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with build_connector("openai", server.url, transport="httpx") as conn:
        assert isinstance(conn._sender.engine(), ClientEngine)
        with pytest.raises(lc.ConfigurationError) as info:
            await conn.generate_chat(MODEL, USER)
        assert_tls_error(info.value, "unable to get local issuer certificate")
    async with build_connector("openai", server.url, transport="httpx", verify=ca_pem) as conn:
        assert isinstance(conn._sender.engine(), ClientEngine)
        await chat_and_stream(conn)


# -- verification off: refused without the flag, warned once with it -------------------------------


@pytest.mark.usefixtures("warned_fresh")
def test_verify_false_needs_the_flag() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused before anything: not even the warning
        with pytest.raises(lc.ConfigurationError, match=r"allow_unverified_tls=True") as info:
            build_connector("openai", "https://127.0.0.1:1", verify=False)
        assert "verify='/path/to/ca.pem'" in str(info.value)
        lax = ssl.create_default_context()
        lax.check_hostname = False
        lax.verify_mode = ssl.CERT_NONE  # verify=False in disguise
        with pytest.raises(lc.ConfigurationError, match=r"allow_unverified_tls=True"):
            build_connector("openai", "https://127.0.0.1:1", verify=lax)
        # The flag alone changes nothing: verification stays on, silently.
        conn = build_connector("openai", "https://127.0.0.1:1", allow_unverified_tls=True)
        assert conn._sender.config.tls.verifies


@pytest.mark.usefixtures("warned_fresh")
async def test_verify_false_with_the_flag_works_and_warns_once(server: FakeServer, engine: str) -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # so a second warning would be recorded, not swallowed
        # The kit itself, not tests/builders.py: the warning names the first line outside the package.
        first = KIT.make_connector(server.url, transport=engine, verify=False, allow_unverified_tls=True)
        second = KIT.make_connector(server.url, transport=engine, verify=False, allow_unverified_tls=True)
    assert [w.category for w in record] == [InsecureTLSWarning]
    assert record[0].filename == __file__  # it names the line that built the connector
    message = str(record[0].message)
    assert "verification is off for the openai connector" in message and TEST_KEY not in message
    async with first, second:
        await chat_and_stream(first)
        await chat_and_stream(second)
        assert first._sender.engine() is second._sender.engine()  # the same trust: one shared pool


# -- pools: connectors that trust differently never share a connection -----------------------------


async def test_trust_settings_never_share_a_pool(server: FakeServer, ca: trustme.CA, ca_pem: str,
                                                 engine: str) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    loose = unverified(server, engine)
    strict = build_connector("openai", server.url, transport=engine)
    by_path, same_path = (build_connector("openai", server.url, transport=engine, verify=ca_pem) for _ in range(2))
    by_ctx, same_ctx = (build_connector("openai", server.url, transport=engine, verify=context) for _ in range(2))
    async with loose, strict, by_path, same_path, by_ctx, same_ctx:
        await chat_and_stream(loose)  # leaves an unverified connection idle in its pool
        with pytest.raises(lc.ConfigurationError) as info:  # ...which the default connector must not reuse
            await strict.generate_chat(MODEL, USER)
        assert_tls_error(info.value, "unable to get local issuer certificate")
        engines = {id(c._sender.engine()) for c in (loose, strict, by_path, by_ctx)}
        assert len(engines) == 4
        assert same_path._sender.engine() is by_path._sender.engine()
        assert same_ctx._sender.engine() is by_ctx._sender.engine()
        await chat_and_stream(by_path)
        await chat_and_stream(same_ctx)


# -- construction-time checks -----------------------------------------------------------------------


def test_a_missing_ca_path_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(lc.ConfigurationError) as info:
        build_connector("openai", "https://127.0.0.1:1", verify=str(missing))
    assert str(missing) in str(info.value) and "PEM file" in str(info.value)


def test_a_file_without_certificates_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(lc.ConfigurationError, match=r"could not load CA certificates from .*junk\.pem"):
        build_connector("openai", "https://127.0.0.1:1", verify=junk)


def test_a_directory_of_certificates_is_accepted(tmp_path: Path) -> None:
    conn = build_connector("openai", "https://127.0.0.1:1", verify=tmp_path)
    assert conn._sender.config.tls.key == ("ca", str(tmp_path)) and conn._sender.config.tls.verifies


@pytest.mark.parametrize("value", [None, 1, 0, b"/etc/ssl/ca.pem", "", ["ca.pem"]])
def test_other_values_are_refused(value: object) -> None:
    with pytest.raises(lc.ConfigurationError, match=r"verify must be"):
        build_connector("openai", "https://127.0.0.1:1", verify=value)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_callers_client_keeps_its_own_tls(ca_pem: str, anyio_backend: str) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(lc.ConfigurationError, match=r"httpx\.AsyncClient\(verify=\.\.\.\)"):
            build_connector("openai", "https://127.0.0.1:1", http_client=client, verify=ca_pem)
        build_connector("openai", "https://127.0.0.1:1", http_client=client, verify=True)  # the default is fine


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_get_connector_and_chains_pass_verify(server: FakeServer, ca_pem: str, anyio_backend: str) -> None:
    url = server.url + "/v1"
    async with lc.get_connector("openai", api_key=TEST_KEY, base_url=url, verify=ca_pem, retry=False) as conn:
        await chat_and_stream(conn)
    member = {"provider": "openai", "api_key": TEST_KEY, "base_url": url}
    # A trust failure is a setup problem: the chain reports it rather than moving on.
    async with lc.get_connector({"primary": member, "fallbacks": [dict(member, provider="mistral")],
                                 "retry": False}) as chain:
        with pytest.raises(lc.ConfigurationError) as info:
            await chain.generate_chat(MODEL, USER)
        assert info.value.code == TLS_VERIFY_FAILED
    async with lc.get_connector({"primary": member, "fallbacks": [dict(member, provider="mistral")],
                                 "retry": False, "verify": ca_pem}) as chain:
        await chat_and_stream(chain)
