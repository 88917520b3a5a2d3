"""The harness catches what it is for: deliberately broken parsers and checks, fed through the oracle.

A harness that cannot fail proves nothing. Each test here plants one bug — a parser that makes
text up, drops it, raises a raw ``KeyError``, quotes the API key (raw or base64), returns a
negative token count, behaves differently on trio; a connector that lets a bad input through to
the server or quotes the key in its refusal — runs it through the same socket, oracle and judges
as the real tables, and asserts the harness reports exactly that. Controls: the unbroken connector
on the same answers (a valid one, a documented empty one) gives no report at all; the servers
listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from builders import build_connector
from harness_inputs import assert_refused_on_both_loops
from harness_oracle import FUZZ_KEY, SHARED_TLS, Case, Outcome, answer_script, check_case, judge, run_sync
from harness_readers import allowed
from harness_server import (
    RawHTTPServer,
    http_response,
    raw_server as raw_server,  # the fixture
)
from harness_templates import CHAT_MODELS, TEXT, chat_template, render

import llm_connectors as lc
from llm_connectors.types import ChatResponse, Usage

OPENAI = type(build_connector("openai"))
Parse = Callable[[Any, Any, Any], ChatResponse]


def _case(provider: str = "openai", *, reason: str | object | None = "default", deltas: tuple[str, ...] | None = None,
          mode: str = "chat") -> Case:
    template = chat_template(provider, mode, *([deltas] if deltas is not None else []),  # type: ignore[arg-type]
                             **({} if reason == "default" else {"reason": reason}))
    return Case(f"{template.id}:selfcheck", template, answer_script(template, render(template, template.answer)),
                allowed(template, template.answer), note="planted")


def _plant(monkeypatch: pytest.MonkeyPatch, broken: Callable[[Parse, Any, Any, Any], ChatResponse],
           provider: str = "openai") -> None:
    """Replace the connector's answer parser by ``broken(original, self, data, request)``."""
    cls = type(build_connector(provider))
    original = cls.parse_chat_response
    monkeypatch.setattr(cls, "parse_chat_response", lambda self, data, request: broken(original, self, data, request))


def _problems(case: Case, server: RawHTTPServer, caplog: pytest.LogCaptureFixture) -> list[str]:
    return judge(case, run_sync(server, case, FUZZ_KEY, caplog, backend="asyncio", engine="httpx"), FUZZ_KEY)


def test_the_unbroken_connector_gives_no_report(raw_server: RawHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    """The control: the same answers through the real parser, a documented empty answer among them."""
    assert _problems(_case(), raw_server, caplog) == []
    assert _problems(_case(reason="length", deltas=()), raw_server, caplog) == []
    assert _problems(_case(mode="stream"), raw_server, caplog) == []
    assert _problems(_case("claude", reason=None, deltas=()), raw_server, caplog) == []  # refused, rightly


def _made_up(original: Parse, self: Any, data: Any, request: Any) -> ChatResponse:
    return dataclasses.replace(original(self, data, request), content="a made-up answer")


def _dropped(original: Parse, self: Any, data: Any, request: Any) -> ChatResponse:
    return dataclasses.replace(original(self, data, request), content="")


def _raw_error(original: Parse, self: Any, data: Any, request: Any) -> ChatResponse:
    raise KeyError("choices")


def _quotes_key(original: Parse, self: Any, data: Any, request: Any) -> ChatResponse:
    raise lc.ProtocolError(f"the answer for key {FUZZ_KEY} is malformed", provider="openai")


def _quotes_key_base64(original: Parse, self: Any, data: Any, request: Any) -> ChatResponse:
    raise lc.ProtocolError("bad answer", provider="openai", request_id=base64.b64encode(FUZZ_KEY.encode()).decode())


def _empty_anyway(original: Parse, self: Any, data: Any, request: Any) -> ChatResponse:
    return ChatResponse(content="", finish_reason="stop", usage=Usage(), tool_calls=[], provider=self.provider,
                        model=request.model, raw=data)


def _negative_count(original: Parse, self: Any, data: Any, request: Any) -> ChatResponse:
    return dataclasses.replace(original(self, data, request), usage=Usage(input_tokens=-7, output_tokens=3))


@pytest.mark.parametrize(("broken", "case", "report"), [
    pytest.param(_made_up, _case(), "success with 'a made-up answer'", id="made-up-text"),
    pytest.param(_dropped, _case(), "success with ''", id="dropped-text"),
    pytest.param(_raw_error, _case(), "raw exception builtins.KeyError", id="raw-exception"),
    pytest.param(_quotes_key, _case(), "the API key (raw) appears in str(err)", id="key-in-message"),
    pytest.param(_quotes_key_base64, _case(), "the API key (base64) appears in err.request_id", id="key-in-request-id"),
    pytest.param(_negative_count, _case(), "usage.input_tokens is -7", id="negative-count"),
    # Claude's real parser refuses this answer (no text, no reason: the control above); '' is made up
    pytest.param(_empty_anyway, _case("claude", reason=None, deltas=()), "success with ''",
                 id="empty-without-reason"),
])
def test_a_planted_parser_bug_is_reported(broken: Callable[..., ChatResponse], case: Case, report: str,
                                          monkeypatch: pytest.MonkeyPatch, raw_server: RawHTTPServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    _plant(monkeypatch, broken, case.template.provider)
    problems = _problems(case, raw_server, caplog)
    assert any(report in problem for problem in problems), problems


def test_a_loop_difference_is_reported(monkeypatch: pytest.MonkeyPatch, raw_server: RawHTTPServer,
                                       caplog: pytest.LogCaptureFixture) -> None:
    """A parser that refuses the answer on trio only: each outcome is acceptable alone, the pair is not."""
    def on_asyncio_only(original: Parse, self: Any, data: Any, request: Any) -> ChatResponse:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # trio
            raise lc.ProtocolError("planted: refused on trio", provider="openai") from None
        return original(self, data, request)

    _plant(monkeypatch, on_asyncio_only)
    with pytest.raises(AssertionError, match=r"different outcomes: asyncio/httpx -> success; trio/httpx -> Protocol"):
        check_case(_case(), [("asyncio", "httpx"), ("trio", "httpx")], raw_server, caplog)


def test_stream_errors_after_delivered_text_are_judged() -> None:
    """After text reached the caller only a StreamInterruptedError carrying exactly that text will do."""
    case = _case(mode="stream")
    plain = Outcome(error=lc.ProtocolError("cut", provider="openai"), deltas=["Hé", "llo"])
    assert any("reached the caller" in p for p in judge(case, plain, FUZZ_KEY))
    short = Outcome(error=lc.StreamInterruptedError("cut", partial="Hé", provider="openai"), deltas=["Hé", "llo"])
    assert any("differs from the delivered text" in p for p in judge(case, short, FUZZ_KEY))
    assert TEXT.startswith("Hé")


# -- the caller-input judge ----------------------------------------------------------------------------------

def _caller_attempt(server: RawHTTPServer, **options: Any) -> Callable[[], Any]:
    async def attempt() -> BaseException | None:
        connector = build_connector("openai", base_url=server.url, api_key=FUZZ_KEY, verify=SHARED_TLS)
        try:
            await connector.generate_chat(CHAT_MODELS["openai"], "hi", **options)
        except Exception as exc:
            return exc
        finally:
            await connector.aclose()
        return None
    return attempt


def _answer(server: RawHTTPServer) -> Any:
    template = chat_template("openai", "chat")
    body = b"".join(render(template, template.answer))
    return lambda request: http_response(200, [("content-type", "application/json")], body)


def test_the_caller_input_judge_passes_a_real_refusal(raw_server: RawHTTPServer) -> None:
    assert_refused_on_both_loops(raw_server, _answer(raw_server), _caller_attempt(raw_server, temperature=float("nan")),
                                 (FUZZ_KEY,))


def test_a_bad_input_that_reaches_the_server_is_reported(monkeypatch: pytest.MonkeyPatch,
                                                         raw_server: RawHTTPServer) -> None:
    """A connector whose validation lets the options through: the bad temperature is sent."""
    original = OPENAI.prepare_chat
    monkeypatch.setattr(OPENAI, "prepare_chat", lambda self, model, messages, options, *, stream:
                        original(self, model, messages, {}, stream=stream))
    with pytest.raises(AssertionError, match=r"asyncio: accepted \(no error\); the server saw 1 connection"):
        assert_refused_on_both_loops(raw_server, _answer(raw_server),
                                     _caller_attempt(raw_server, temperature=float("nan")), (FUZZ_KEY,))


def test_a_refusal_quoting_the_key_is_reported(monkeypatch: pytest.MonkeyPatch, raw_server: RawHTTPServer) -> None:
    def quoting(self: Any, model: Any, messages: Any, options: Any, *, stream: bool) -> Any:
        raise lc.InvalidRequestError(f"temperature is wrong for {FUZZ_KEY}", provider="openai")

    monkeypatch.setattr(OPENAI, "prepare_chat", quoting)
    with pytest.raises(AssertionError, match=r"str\(err\) quotes a secret \(raw\)"):
        assert_refused_on_both_loops(raw_server, _answer(raw_server),
                                     _caller_attempt(raw_server, temperature=float("nan")), (FUZZ_KEY,))


def test_the_servers_listen_on_loopback_only(raw_server: RawHTTPServer) -> None:
    assert raw_server._listener is not None
    assert raw_server._listener.getsockname()[0] == "127.0.0.1"
    assert raw_server.url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(("engine", "sessions"), [("aiohttp", 1), ("httpx", 0)])
def test_run_sync_takes_the_engine_it_is_given(engine: str, sessions: int, monkeypatch: pytest.MonkeyPatch,
                                               raw_server: RawHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    """The engine is the connector's own setting, whatever the environment says: aiohttp runs where asked."""
    aiohttp = pytest.importorskip("aiohttp")
    opened: list[object] = []
    original = aiohttp.ClientSession.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", counting)
    monkeypatch.setenv("LLM_CONNECTORS_TRANSPORT", "httpx" if engine == "aiohttp" else "aiohttp")
    outcome = run_sync(raw_server, _case(), FUZZ_KEY, caplog, backend="asyncio", engine=engine)
    assert outcome.error is None
    assert len(opened) == sessions
