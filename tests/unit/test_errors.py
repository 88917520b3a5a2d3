"""The error tree, its policy flags and its text."""

from __future__ import annotations

import pickle

import pytest

import llm_connectors as lc
from llm_connectors import errors as e


def test_tree_matches_the_contract() -> None:
    assert issubclass(e.NoProviderAvailableError, e.ConfigurationError)
    assert issubclass(e.QuotaExceededError, e.RateLimitError)
    assert issubclass(e.ContextWindowExceededError, e.InvalidRequestError)
    assert issubclass(e.OverloadedError, e.ProviderError)
    assert issubclass(e.TimeoutError, e.NetworkError)
    for name in e.__all__:
        assert issubclass(getattr(e, name), e.LLMConnectorError)
        assert getattr(lc, name) is getattr(e, name)
    assert lc.errors is e


@pytest.mark.parametrize(("cls", "retryable", "breaker", "fallback"), [
    (e.InvalidRequestError, False, False, False),
    (e.ContextWindowExceededError, False, False, True),
    (e.AuthenticationError, False, False, True),
    (e.PermissionDeniedError, False, False, True),
    (e.NotFoundError, False, False, True),
    (e.RateLimitError, True, False, True),
    (e.QuotaExceededError, False, False, True),
    (e.ContentFilterError, False, False, False),
    (e.ProviderError, True, True, True),
    (e.OverloadedError, True, True, True),
    (e.ProtocolError, True, True, True),
    (e.NetworkError, True, True, True),
    (e.TimeoutError, True, True, True),
    (e.CircuitOpenError, False, False, True),
    (e.UnsupportedCapabilityError, False, False, True),
    (e.StreamInterruptedError, False, False, False),
    (e.ConfigurationError, False, False, False),
])
def test_policy_flags(cls: type[e.LLMConnectorError], retryable: bool, breaker: bool, fallback: bool) -> None:
    err = cls("x")
    assert (err.retryable, err.breaker_failure, err.fallback) == (retryable, breaker, fallback)


def test_retryable_override_and_text() -> None:
    err = e.RateLimitError("slow down", provider="openai", status_code=429, request_id="req_1",
                           retryable=False, retry_after=1.5, code="rate_limit_exceeded")
    assert not err.retryable
    assert str(err) == "[openai] 429 slow down (request id: req_1)"
    assert repr(err) == ("RateLimitError('slow down', provider='openai', status_code=429, request_id='req_1', "
                         "code='rate_limit_exceeded', retry_after=1.5)")


def test_long_messages_truncated() -> None:
    assert len(e.ProviderError("x" * 10_000).message) <= e.MAX_MESSAGE_CHARS + 1


def test_pickle_keeps_fields() -> None:
    err = e.StreamInterruptedError("broke", partial="Hel", provider="claude", status_code=200)
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), copy.partial, copy.provider, str(copy)) == (type(err), "Hel", "claude", str(err))


def test_all_providers_failed_summarises_causes() -> None:
    causes = [e.RateLimitError("a", provider="claude", retry_after=3.0),
              e.ProviderError("b", provider="openai", status_code=503, retry_after=1.0)]
    err = e.AllProvidersFailedError(causes)
    assert err.errors == causes and err.retry_after == 1.0 and err.status_code == 503
    assert "claude: RateLimitError: a" in str(err) and "openai: ProviderError: b" in str(err)


def test_content_filter_categories_come_from_the_error_body_and_survive_pickling() -> None:
    import pickle

    from llm_connectors.wire.classify import ErrorInfo, classify

    err = classify(400, ErrorInfo("filtered", ("content_filter",), categories=("hate", "violence")), {},
                   provider="p", request_id=None, codes={"content_filter": lc.ContentFilterError})
    assert isinstance(err, lc.ContentFilterError) and err.categories == ["hate", "violence"]
    assert pickle.loads(pickle.dumps(err)).categories == ["hate", "violence"]
    assert lc.ContentFilterError("x").categories == []
