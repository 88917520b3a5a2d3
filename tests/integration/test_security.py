"""Security hygiene (RELIABILITY.md §6 and §8 X rows)."""

from __future__ import annotations

import gzip
import logging
import shutil
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import httpx
import pytest
import respx
from builders import build_connector

import llm_connectors as lc
from llm_connectors.connectors.openai import OpenAIConnector
from llm_connectors.http.urls import check_base_url
from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.kit import TEST_KEY, ScriptedHandler
from llm_connectors.testing.openai_wire import OpenAIFake, OpenAIWireKit, openai_chat_json

pytestmark = pytest.mark.anyio
KIT = OpenAIWireKit()
USER = [{"role": "user", "content": "Hi"}]
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")


# -- X3: redirects ----------------------------------------------------------------------------------

def redirect_to(target: str, status: int = 307) -> ScriptedHandler:
    return ScriptedHandler(default=Reply(status, {"location": target, "content-length": "0"}))


async def test_x3_redirects_are_not_followed_by_default() -> None:
    with FakeServer(OpenAIFake()) as b, FakeServer(redirect_to("")) as a:
        a.handler = redirect_to(b.url + "/v1/chat/completions")  # type: ignore[assignment]
        async with build_connector("openai", a.url) as conn:
            with pytest.raises(lc.ConfigurationError, match=r"redirect to 127\.0\.0\.1"):
                await conn.generate_chat("m", USER)
    assert len(b.requests) == 0


async def test_x3_cross_origin_redirect_drops_every_credential() -> None:
    with FakeServer(OpenAIFake("from b")) as b, FakeServer(redirect_to("")) as a:
        a.handler = redirect_to(b.url + "/v1/chat/completions")  # type: ignore[assignment]
        async with build_connector("openai", a.url, follow_redirects=True, headers={"x-trace": "t1"}) as conn:
            resp = await conn.generate_chat("m", USER)
    assert resp.content == "from b"
    received = b.requests[0].headers
    assert not [h for h in CREDENTIAL_HEADERS if h in received] and received["x-trace"] == "t1"
    assert b.requests[0].json()["model"] == "m"  # 307 kept the method and body


async def test_x3_same_origin_redirect_keeps_the_key() -> None:
    fake = OpenAIFake("moved")
    with FakeServer(fake) as server:
        fake.replies.append(Reply(308, {"location": "/v1/chat/completions?moved=1", "content-length": "0"}))
        async with build_connector("openai", server.url, follow_redirects=True) as conn:
            await conn.generate_chat("m", USER)
    assert server.requests[1].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert server.requests[1].query == {"moved": "1"}


async def test_x3_https_to_http_and_method_changing_redirects_refused() -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post("https://a.example/v1/chat/completions").respond(307, headers={"location": "http://b.example/x"})
        mock.post("https://c.example/v1/chat/completions").respond(302, headers={"location": "https://c.example/y"})
        target = mock.post("http://b.example/x")
        async with build_connector("openai", "https://a.example", follow_redirects=True) as conn:
            with pytest.raises(lc.ConfigurationError, match="https to plain http"):
                await conn.generate_chat("m", USER)
        async with build_connector("openai", "https://c.example", follow_redirects=True) as conn:
            with pytest.raises(lc.ConfigurationError, match="only 307/308"):
                await conn.generate_chat("m", USER)
    assert not target.calls


# -- X4: base URL policy -----------------------------------------------------------------------------

ALLOWED = [
    "https://api.openai.com/v1", "https://api.anthropic.com", "HTTPS://API.EXAMPLE.COM/v1",
    "http://localhost:11434", "http://127.0.0.1:8000/v1", "http://[::1]:8080", "http://127.1:11434",
    "http://foo.localhost:3000", "https://10.0.0.5/v1", "https://192.168.1.20:8443", "http://localhost.:11434",
    "https://example.com./v1", "https://[2001:db8::1]/v1",
]
REFUSED = [
    ("file:///etc/passwd", "absolute http"), ("ftp://example.com", "absolute http"),
    ("api.openai.com/v1", "absolute http"), ("https://", "absolute http"),
    ("https://user:pw@api.example.com", "user name or password"), ("https://user@api.example.com", "user name"),
    ("http://api.example.com/v1", "plain http"), ("http://192.168.1.20:11434", "plain http"),
    ("https://169.254.169.254/latest", "link-local"), ("http://169.254.169.254/latest", "plain http"),
    ("https://2852039166/", "link-local"), ("https://0xa9fea9fe/", "link-local"),
    # httpx itself refuses the octal spelling; refused either way
    ("https://0251.0376.0251.0376/", "link-local|not a valid URL"), ("https://[::ffff:169.254.169.254]/", "link-local"),
    ("https://[fd00:ec2::254]/", "cloud metadata address"), ("https://[fe80::1]/", "link-local"),
    ("https://metadata.google.internal/computeMetadata", "cloud metadata host"),
    ("https://METADATA.GOOGLE.INTERNAL./x", "cloud metadata host"),
]


@pytest.mark.parametrize("url", ALLOWED)
def test_x4_allowed_base_urls(url: str) -> None:
    assert check_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_x4_refused_base_urls(url: str, why: str) -> None:
    with pytest.raises(lc.ConfigurationError, match=why):
        check_base_url(url)


def test_x4_flags_and_keyless_servers() -> None:
    assert check_base_url("http://gpu-box.lan:11434", allow_insecure_http=True)
    assert check_base_url("http://gpu-box.lan:11434", sends_credentials=False)  # keyless Ollama on the LAN
    assert check_base_url("https://169.254.169.254", allow_private_network=True)
    with pytest.raises(lc.ConfigurationError, match="plain http"):
        OpenAIConnector(api_key="k", base_url="http://gpu-box.lan/v1")
    from llm_connectors.connectors.ollama import OllamaConnector

    assert OllamaConnector(base_url="http://gpu-box.lan:11434").base_url == "http://gpu-box.lan:11434"
    with pytest.raises(lc.ConfigurationError, match="plain http"):
        OllamaConnector(base_url="http://gpu-box.lan:11434", api_key="k")


# -- X6: decompression bombs --------------------------------------------------------------------------

BOMB_SCRIPT = textwrap.dedent('''
    import gzip, resource, sys, anyio
    import llm_connectors as lc
    from llm_connectors.testing import FakeServer, Reply
    from llm_connectors.testing.openai_wire import OpenAIWireKit

    stream = sys.argv[1] == "stream"
    bomb = gzip.compress(b"0" * (200 << 20), compresslevel=9)
    headers = {"content-encoding": "gzip",
               "content-type": "text/event-stream" if stream else "application/json"}
    reply = Reply(200, headers, chunks=[bomb[i:i + 65536] for i in range(0, len(bomb), 65536)])

    async def main():
        with FakeServer(lambda request: reply) as server:
            async with OpenAIWireKit().make_connector(server.url) as conn:
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                try:
                    if stream:
                        await conn.generate_chat_stream("m", "hi").collect()
                    else:
                        await conn.generate_chat("m", "hi")
                except lc.ProtocolError as exc:
                    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
                    print(len(bomb), grown // 1024, exc.message)

    anyio.run(main)
''')


@pytest.mark.parametrize(("mode", "limit_mib"), [("json", 32), ("stream", 64)])
def test_x6_gzip_bomb_is_stopped_at_the_limit(mode: str, limit_mib: int) -> None:
    result = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, mode], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    compressed, grown_mib, message = result.stdout.split(" ", 2)
    assert int(compressed) < 300_000  # a 200 MiB body on the wire is ~200 KB
    assert "limit" in message and int(grown_mib) < 2 * limit_mib


async def test_gzip_and_deflate_bodies_are_decoded() -> None:
    body = openai_chat_json("compressed answer")
    import json

    raw = json.dumps(body).encode()
    for encoding, data in (("gzip", gzip.compress(raw)), ("deflate", zlib.compress(raw))):
        with FakeServer(lambda request, d=data, e=encoding: Reply(200, {"content-encoding": e}, d)) as server:
            async with build_connector("openai", server.url) as conn:
                assert (await conn.generate_chat("m", USER)).content == "compressed answer"
            assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"
    with FakeServer(lambda request: Reply(200, {"content-encoding": "br"}, b"xx")) as server:
        async with build_connector("openai", server.url) as conn:
            with pytest.raises(lc.ProtocolError, match="'br'"):
                await conn.generate_chat("m", USER)
    with FakeServer(lambda request: Reply(200, {"content-encoding": "gzip"}, b"not gzip")) as server:
        async with build_connector("openai", server.url) as conn:
            with pytest.raises(lc.ProtocolError, match="corrupt"):
                await conn.generate_chat("m", USER)


# -- X7: prompts are not logged ------------------------------------------------------------------------

async def test_x7_prompts_never_logged_unless_opted_in(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    prompt = "prompt-canary-7f3a9c"
    with FakeServer(OpenAIFake()) as server:
        async with build_connector("openai", server.url) as conn:
            await conn.generate_chat("m", prompt)
            await conn.generate_chat_stream("m", prompt).collect()
        assert prompt not in caplog.text
        async with build_connector("openai", server.url, log_payloads=True) as conn:
            await conn.generate_chat("m", prompt)
    payloads = [r for r in caplog.records if r.name == "llm_connectors.payloads"]
    assert any(prompt in r.getMessage() for r in payloads)
    assert TEST_KEY not in caplog.text


# -- X8: provider text in exceptions -------------------------------------------------------------------

async def test_x8_error_text_is_bounded_and_html_is_not_echoed() -> None:
    handler = ScriptedHandler()
    with FakeServer(handler) as server:
        async with build_connector("openai", server.url) as conn:
            handler.push(Reply.json({"error": {"message": "x" * 10_000}}, 400))
            with pytest.raises(lc.InvalidRequestError) as info:
                await conn.generate_chat("m", USER)
            assert len(info.value.message) <= 2049
            handler.push(Reply(502, {"content-type": "text/html"},
                               b"<html><body>internal admin panel secret</body></html>"))
            with pytest.raises(lc.ProviderError) as html:
                await conn.generate_chat("m", USER)
    assert "admin panel" not in str(html.value)


# -- X1: the canary scan itself ------------------------------------------------------------------------

def test_x1_the_canary_scan_catches_a_leak(tmp_path: Path) -> None:
    """Copy the suite's conftest next to a test that logs the key: the run must fail."""
    for name in ("conftest.py", "transport_plugin.py"):
        shutil.copy(Path(__file__).parents[1] / name, tmp_path / name)
    (tmp_path / "test_leak.py").write_text(textwrap.dedent('''
        import logging
        from llm_connectors.testing.kit import TEST_KEY

        def test_leaks():
            logging.getLogger("llm_connectors").debug("oops %s", TEST_KEY)
    '''))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert result.returncode != 0 and "API KEY LEAK" in result.stdout


async def test_x1_public_objects_never_show_the_key(canary_key: str) -> None:
    with FakeServer(OpenAIFake()) as server:
        conn = build_connector("openai", server.url, api_key=canary_key, cache=True)
        chain = await lc.get_connector(primary="openai", api_key=canary_key, base_url=server.url + "/v1")
        stream = conn.generate_chat_stream("m", USER)
        objects: list[object] = [conn, chain, stream, conn._credentials, lc.Secret(canary_key), conn.definition,
                                 conn.prepare_chat("m", USER, {}, stream=False), conn.stats()]
        resp = await conn.generate_chat("m", USER)
        objects += [resp, await stream.collect()]
        for obj in objects:
            assert canary_key not in repr(obj) + str(obj), type(obj).__name__
        await conn.aclose()
        await chain.aclose()


def test_x2_keys_and_headers_validated_without_echo() -> None:
    for bad in ("sk-abc\r\nX-Evil: 1", "sk-\x00zzz", "sk-\u2028zzz"):
        with pytest.raises(lc.ConfigurationError) as info:
            OpenAIConnector(api_key=bad)
        assert "sk-" not in str(info.value)
    with pytest.raises(lc.ConfigurationError):
        OpenAIConnector(api_key="k", headers={"x-ok": "fine\nX-Evil: 1"})
    assert httpx  # the request was never built: nothing reached httpx/h11 to echo

