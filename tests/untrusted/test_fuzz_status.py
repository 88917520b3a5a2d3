"""Error statuses with odd bodies and headers, and API keys echoed back by a provider or a proxy.

Every status a provider may answer with (401, 403, 400, 404, 429, 5xx, redirects), with bodies
of every JSON type, NaN, lone surrogates, a 100 000-deep array, 3 MiB of text, HTML; Retry-After
and rate-limit reset headers that are infinite, NaN, negative, 400 digits, a date, garbage; and
the configured key echoed in the body and in each provider's request-id header, raw, URL-encoded
or base64. The error must be the status's typed class, its message bounded, its ``retry_after`` a
finite number >= 0 or ``None``, and the key must be in no message, request id or log record —
on asyncio and trio (httpx, compared) and on aiohttp.

Two tests look further than the rest: every log record at DEBUG, the HTTP engines' own trace
loggers included, for an answer whose headers echo the key; and the whole cause/context chain of
an error for a response the engine cannot parse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from harness_findings import xfail_marks
from harness_oracle import (
    FAILS_NETWORK,
    FUZZ_KEY,
    SPELLINGS,
    Case,
    answer_script,
    assert_ok,
    check_case,
    echo_headers,
    every_pair,
    run_sync,
)
from harness_readers import Allowed, allowed
from harness_server import (
    CLOSE,
    RawHTTPServer,
    RawRequest,
    Script,
    http_response,
    raw_server as raw_server,  # the fixture
)
from harness_templates import Template, render, templates

import llm_connectors as lc
from llm_connectors.errors import MAX_MESSAGE_CHARS


@dataclass(frozen=True)
class StatusCase:
    name: str
    status: int
    body: bytes
    expected: type[lc.LLMConnectorError]
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"


def _key_body(template: str) -> bytes:
    return template.replace("KEY", FUZZ_KEY).encode()


STATUS_CASES = [
    StatusCase("401-key-in-message", 401, _key_body('{"error": {"message": "Incorrect API key provided: KEY", '
                                                    '"type": "invalid_request_error"}}'), lc.AuthenticationError),
    StatusCase("401-key-everywhere", 401, _key_body('{"error": {"message": "bad KEY", "type": "KEY", "code": "KEY",'
                                                    ' "param": "KEY"}, "detail": "KEY", "message": "KEY",'
                                                    ' "failure": {"reason": "KEY", "detail": "KEY"}}'),
               lc.AuthenticationError),
    StatusCase("403-plain-text-key", 403, _key_body("forbidden for key KEY"), lc.PermissionDeniedError,
               content_type="text/plain"),
    StatusCase("400-array", 400, b"[1, 2]", lc.InvalidRequestError),
    StatusCase("400-number", 400, b"5", lc.InvalidRequestError),
    StatusCase("400-null", 400, b"null", lc.InvalidRequestError),
    StatusCase("400-string", 400, b'"nope"', lc.InvalidRequestError),
    StatusCase("400-error-number", 400, b'{"error": 5, "message": 7, "detail": 9}', lc.InvalidRequestError),
    StatusCase("400-message-object", 400, _key_body('{"error": {"message": {"k": "KEY"}, "type": ["KEY"], '
                                                    '"code": 3.5}}'), lc.InvalidRequestError),
    StatusCase("400-nan", 400, b'{"error": {"message": NaN, "code": Infinity}}', lc.InvalidRequestError),
    StatusCase("400-surrogate", 400, b'{"error": {"message": "bad \\ud800 thing"}}', lc.InvalidRequestError),
    StatusCase("400-deep", 400, b"[" * 100_000 + b"]" * 100_000, lc.InvalidRequestError),
    StatusCase("400-huge-body", 400, b'{"error": {"message": "' + b"x" * (3 << 20) + b'"}}', lc.InvalidRequestError),
    StatusCase("404-html", 404, b"<html>not found</html>", lc.NotFoundError, content_type="text/html"),
    StatusCase("429-retry-after-inf", 429, b"{}", lc.RateLimitError, (("retry-after", "1e999"),)),
    StatusCase("429-retry-after-nan", 429, b"{}", lc.RateLimitError, (("retry-after", "NaN"),)),
    StatusCase("429-retry-after-negative", 429, b"{}", lc.RateLimitError, (("retry-after", "-30"),)),
    StatusCase("429-retry-after-huge", 429, b"{}", lc.RateLimitError, (("retry-after", "9" * 400),)),
    StatusCase("429-retry-after-date", 429, b"{}", lc.RateLimitError,
               (("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),)),
    StatusCase("429-retry-after-garbage", 429, b"{}", lc.RateLimitError, (("retry-after", "soon\x01"),)),
    StatusCase("429-ratelimit-reset-odd", 429, b"{}", lc.RateLimitError,
               (("x-ratelimit-reset-requests", "NaNs"), ("x-ratelimit-reset-tokens", "-1e999ms"),
                ("anthropic-ratelimit-requests-reset", "not a date"))),
    StatusCase("500-html", 500, b"<html>oops</html>", lc.ProviderError, content_type="text/html"),
    StatusCase("599", 599, b"{}", lc.ProviderError),
    StatusCase("302-to-elsewhere", 302, b"", lc.ConfigurationError, (("location", "http://169.254.169.254/KEY"),)),
    StatusCase("307-no-location", 307, b"", lc.ConfigurationError),
    StatusCase("301-bad-location", 301, b"", lc.ConfigurationError, (("location", "http://[::1"),)),
]


def _status_params() -> list[object]:
    params = []
    chat = [t for t in templates() if t.mode in ("chat", "stream")]
    for number, (template, status) in enumerate((t, s) for t in chat for s in STATUS_CASES):
        spelling = SPELLINGS[number % len(SPELLINGS)]
        case_id = f"{template.id}:{status.name}:{spelling}"
        params.append(pytest.param(template, status, spelling, id=case_id, marks=xfail_marks(case_id)))
    return params


def _status_case(template: Template, status: StatusCase, spelling: str) -> Case:
    def handler(request: RawRequest) -> Script:
        headers = [("content-type", status.content_type), *status.headers, *echo_headers(request, spelling)]
        headers = [(k, v.replace("KEY", FUZZ_KEY)) for k, v in headers]
        return http_response(status.status, headers, status.body)

    return Case(f"{template.id}:{status.name}", template, handler, Allowed(why="an error status"),
                fails=(status.expected,), note=spelling)


@pytest.mark.parametrize(("template", "status", "spelling"), _status_params())
def test_error_status(template: Template, status: StatusCase, spelling: str, raw_server: RawHTTPServer,
                      caplog: pytest.LogCaptureFixture) -> None:
    """A typed error of the status's class; the key, echoed in the body and in each request-id header, is
    in no message, request id or log record; Retry-After, whatever it says, is a finite number >= 0 or None."""
    outcomes = check_case(_status_case(template, status, spelling), every_pair(), raw_server, caplog)
    for label, outcome in outcomes.items():
        err = outcome.error
        assert isinstance(err, lc.LLMConnectorError), label
        assert len(err.message) <= MAX_MESSAGE_CHARS + 1, label
        retry_after = err.retry_after
        assert retry_after is None or (isinstance(retry_after, float | int) and math.isfinite(retry_after)
                                       and retry_after >= 0), f"{label}: retry_after={retry_after!r}"
        assert err.request_id is None or isinstance(err.request_id, str), label


def _engine_params(case_prefix: str, names: list[str]) -> list[object]:
    return [pytest.param(name, backend, engine, id=f"{name}-{backend}-{engine}",
                         marks=xfail_marks(f"{case_prefix}{name}", engine))
            for name in names for backend, engine in every_pair()]


@pytest.mark.parametrize(("spelling", "backend", "engine"), _engine_params("openai-chat:echo-key-in-headers-",
                                                                          list(SPELLINGS)))
def test_echoed_key_reaches_no_log_record(spelling: str, backend: str, engine: str, raw_server: RawHTTPServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """A valid answer whose request-id headers echo the key: every log record at DEBUG is scanned, the
    HTTP engine's own trace loggers included (the other tests leave those to this one)."""
    template = next(t for t in templates() if t.id == "openai-chat")
    case = Case(f"openai-chat:echo-key-in-headers-{spelling}", template,
                answer_script(template, render(template, template.answer), spelling=spelling),
                allowed(template, template.answer), note=spelling)
    outcome = run_sync(raw_server, case, FUZZ_KEY, caplog, backend=backend, engine=engine)
    assert_ok(case, outcome, FUZZ_KEY, every_leak=True)
    assert outcome.error is None


#: Responses no HTTP parser takes: the engines' own exceptions carry the request (and its headers) along.
NOT_HTTP = {"garbage-status-line": [b"HTTP/1.1 OK\r\ncontent-length: 2\r\n\r\n{}", CLOSE],
            "not-http": [b"SSH-2.0-OpenSSH_9.6\r\n", CLOSE]}


@pytest.mark.parametrize(("fault", "backend", "engine"), _engine_params("openai-chat:error-chain-", list(NOT_HTTP)))
def test_error_chain_holds_no_key(fault: str, backend: str, engine: str, raw_server: RawHTTPServer,
                                  caplog: pytest.LogCaptureFixture) -> None:
    """A response the engine cannot parse: the typed error, its whole cause/context chain (what a traceback
    or an error tracker shows) included, never holds the key (the other tests leave the chain to this one)."""
    template = next(t for t in templates() if t.id == "openai-chat")
    case = Case(f"openai-chat:error-chain-{fault}", template, lambda request: NOT_HTTP[fault],
                Allowed(why="not HTTP"), fails=FAILS_NETWORK, note=fault)
    outcome = run_sync(raw_server, case, FUZZ_KEY, caplog, backend=backend, engine=engine)
    assert_ok(case, outcome, FUZZ_KEY, every_leak=True)
