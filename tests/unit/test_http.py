"""HTTP plumbing: Retry-After parsing, timeouts, base URLs, error classification."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given, settings, strategies as st

from llm_connectors import errors as e
from llm_connectors.http.settings import Timeouts
from llm_connectors.http.urls import check_base_url
from llm_connectors.wire.classify import ErrorInfo, classify, parse_error_body
from llm_connectors.wire.headers import parse_retry_after, should_retry_header

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after": "2"}, 2.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after": "0"}, 0.0),
    ({"retry-after": "-3"}, 0.0),
    ({"retry-after": email.utils.formatdate(NOW + 20, usegmt=True)}, 20.0),
    ({"retry-after": email.utils.formatdate(NOW - 20, usegmt=True)}, 0.0),
    ({"retry-after": "soon"}, None),
    ({"retry-after": "nan"}, None),
    ({"retry-after": "inf"}, None),
    ({"retry-after-ms": "nan", "retry-after": "4"}, 4.0),
    ({}, None),
])
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


@settings(max_examples=2000, deadline=None)
@given(st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms"]), st.text(max_size=40)))
def test_parse_retry_after_never_raises(headers: dict[str, str]) -> None:
    value = parse_retry_after(headers, now=NOW)
    assert value is None or (value >= 0 and value < float("inf"))


def test_should_retry_header() -> None:
    assert should_retry_header({"x-should-retry": "true"}) is True
    assert should_retry_header({"x-should-retry": "false"}) is False
    assert should_retry_header({}) is None


def test_timeouts() -> None:
    assert Timeouts.coerce(None) == Timeouts()
    assert Timeouts.coerce(3).total == 3 and Timeouts.coerce(3).connect == 3
    assert Timeouts().httpx_timeout().read == 300.0
    for bad in (0, -1, float("inf"), "5"):
        with pytest.raises(e.ConfigurationError):
            Timeouts.coerce(bad) if isinstance(bad, str) else Timeouts(total=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["ftp://x", "api.openai.com", "http://user:pw@host", "https://", 7])
def test_bad_base_urls(url: object) -> None:
    with pytest.raises(e.ConfigurationError):
        check_base_url(url)  # type: ignore[arg-type]


def test_good_base_url_strips_slash() -> None:
    assert check_base_url("http://localhost:11434/") == "http://localhost:11434"


@pytest.mark.parametrize(("body", "message", "codes"), [
    (b'{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"x"}}', "bad",
     ("x", "invalid_request_error")),
    (b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"r"}',
     "Overloaded", ("overloaded_error",)),
    (b'{"error":"model \'x\' not found"}', "model 'x' not found", ()),
    (b'{"detail":"Unauthorized"}', "Unauthorized", ()),
    (b'{"detail":[{"type":"extra_forbidden","loc":["body","stream_options"],"msg":"Extra inputs"}]}',
     "stream_options: Extra inputs", ()),
    (b'{"object":"error","message":"Rate limit exceeded","type":"rate_limited","param":null,"code":"1300"}',
     "Rate limit exceeded", ("1300", "rate_limited")),
    (b'{"object":"error","message":{"detail":[{"loc":["body","x"],"msg":"nope"}]},"type":"invalid"}',
     "x: nope", ("invalid",)),
    (b'{"object":"error","message":"{\\"detail\\":\\"inner\\"}","type":"internal_error_proxy","code":"1000"}',
     "inner", ("1000", "internal_error_proxy")),
    (b'{"message":"Requests rate limit exceeded"}', "Requests rate limit exceeded", ()),
    (b"<html><body>Bad Gateway</body></html>", "HTTP 502 with no readable error body", ()),
    (b"plain text failure", "plain text failure", ()),
    (b"", "HTTP 502 with no readable error body", ()),
])
def test_error_body_shapes(body: bytes, message: str, codes: tuple[str, ...]) -> None:
    info = parse_error_body(502, body)
    assert info.message == message and info.codes == codes


@pytest.mark.parametrize(("status", "codes", "message", "cls"), [
    (400, (), "bad", e.InvalidRequestError),
    (400, (), "This model's maximum context length is 8192 tokens", e.ContextWindowExceededError),
    (400, (), "prompt is too long: 201000 tokens > 200000 maximum", e.ContextWindowExceededError),
    (400, ("context_length_exceeded",), "x", e.ContextWindowExceededError),
    (401, ("invalid_api_key",), "Incorrect API key", e.AuthenticationError),
    (402, (), "billing", e.QuotaExceededError),
    (403, (), "no", e.PermissionDeniedError),
    (404, (), "model not found", e.NotFoundError),
    (408, (), "slow", e.TimeoutError),
    (409, (), "conflict", e.ProviderError),
    (413, (), "too big", e.InvalidRequestError),
    (422, (), "extra_forbidden", e.InvalidRequestError),
    (429, (), "slow down", e.RateLimitError),
    (429, ("insufficient_quota",), "quota", e.QuotaExceededError),
    (500, (), "boom", e.ProviderError),
    (502, (), "gateway", e.ProviderError),
    (503, (), "unavailable", e.ProviderError),
    (504, ("timeout_error",), "t", e.TimeoutError),
    (529, (), "overloaded", e.OverloadedError),
    (418, (), "teapot", e.InvalidRequestError),
])
def test_classification_status_then_code_then_message(status: int, codes: tuple[str, ...], message: str,
                                                      cls: type[e.LLMConnectorError]) -> None:
    err = classify(status, ErrorInfo(message, codes), {"retry-after": "3"}, provider="p", request_id="r",
                   codes={})
    assert type(err) is cls
    assert (err.status_code, err.request_id, err.retry_after, err.provider) == (status, "r", 3.0, "p")


def test_409_is_retryable_but_not_a_health_failure() -> None:
    err = classify(409, ErrorInfo("lock"), {}, provider="p", request_id=None, codes={})
    assert err.retryable and not err.breaker_failure


@pytest.mark.parametrize(("header", "retryable"), [("true", True), ("false", False)])
def test_x_should_retry_overrides(header: str, retryable: bool) -> None:
    for status in (400, 429, 500):
        err = classify(status, ErrorInfo("x"), {"x-should-retry": header}, provider="p", request_id=None,
                       codes={})
        assert err.retryable is retryable


def test_provider_code_map_wins() -> None:
    err = classify(400, ErrorInfo("x", ("3280",)), {}, provider="p", request_id=None,
                   codes={"3280": e.InvalidRequestError})
    assert type(err) is e.InvalidRequestError
