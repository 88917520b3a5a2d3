"""Caller values are checked before anything is sent: each mistake is a typed error naming where.

The checks themselves (json_values, header and key checks, base URL policy, redaction); the
end-to-end table over every entry point and provider is tests/untrusted/test_caller_input.py.
"""

from __future__ import annotations

import base64
import math
import urllib.parse
from typing import Any

import pytest

import llm_connectors as lc
from llm_connectors._secrets import Secret, check_header_value, check_headers, scrub
from llm_connectors.http.urls import check_base_url, masked_url
from llm_connectors.json_values import INT64_MAX, check_json_value, check_text
from llm_connectors.observe.stats import ProviderStats
from llm_connectors.wire.messages import normalize_messages

LONE = "ok \ud800 here"


@pytest.mark.parametrize(("value", "where"), [
    (math.nan, "x"), (math.inf, "x"), (-math.inf, "x"),
    ({"a": [1, {"b": math.nan}]}, "x['a'][1]['b']"),
    ({1: "a"}, "key of type int"),
    ({"k": LONE}, "lone surrogate"),
    ({LONE: 1}, "lone surrogate"),
    (INT64_MAX + 1, "beyond 64 bits"),
    (-INT64_MAX - 2, "beyond 64 bits"),
    ({"s": {1, 2}}, "set"),
    (b"bytes", "bytes"),
    (object(), "object"),
])
def test_json_values_refused_with_where(value: Any, where: str) -> None:
    with pytest.raises(lc.InvalidRequestError) as caught:
        check_json_value(value, "x", "p")
    assert where in caught.value.message and caught.value.provider == "p"


def test_json_values_accepted_and_depth_bounded() -> None:
    check_json_value({"a": [1, 2.5, "é", None, True, {"b": INT64_MAX}]}, "x", "p")
    deep: Any = []
    for _ in range(70):
        deep = [deep]
    with pytest.raises(lc.InvalidRequestError, match="nested more than 64"):
        check_json_value(deep, "x", "p")


def test_text_with_a_lone_surrogate_is_refused_ascii_is_free() -> None:
    check_text("plain ascii", "t", None)
    check_text("café ✓", "t", None)
    with pytest.raises(lc.InvalidRequestError, match=r"t holds a lone surrogate \(U\+D800\) at position 3"):
        check_text(LONE, "t", None)


@pytest.mark.parametrize("messages", [None, 5, b"hi", 3.5, {"role": "user", "content": "x"}])
def test_messages_of_the_wrong_kind(messages: Any) -> None:
    with pytest.raises(lc.InvalidRequestError, match="messages must be"):
        normalize_messages(messages, "p")


@pytest.mark.parametrize(("content", "match"), [
    (LONE, "lone surrogate"),
    ([{"type": "text", "text": LONE}], r"content\[0\].text holds a lone surrogate"),
    ([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}], "not valid base64"),
    ([{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}], "names its image type"),
    ([{"type": "image_url", "image_url": {"url": "data:;base64,aGk="}}], "names its image type"),
    ([{"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}], "holds no data"),
    ([{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}], "http\\(s\\) or a data: URL"),
])
def test_message_content_checked(content: Any, match: str) -> None:
    with pytest.raises(lc.InvalidRequestError, match=match):
        normalize_messages([{"role": "user", "content": content}], "p")


def test_tool_call_arguments_and_reasoning_checked() -> None:
    call = {"id": "c1", "name": "f", "arguments": {"x": math.nan}}
    with pytest.raises(lc.InvalidRequestError, match=r"tool_calls\[0\].arguments\['x'\]"):
        normalize_messages([{"role": "assistant", "tool_calls": [call]}], "p")
    with pytest.raises(lc.InvalidRequestError, match="must be strings"):
        normalize_messages([{"role": "assistant", "content": "a", "reasoning": [{"text": 5}]}], "p")


@pytest.mark.parametrize(("key", "match"), [
    ("", "empty"), ("sk-café", "code 0xe9"), ("sk a", "space"), ("sk-\nx", "code 0x0a"), (" sk", "space"),
    (5, "must be a str"),
])
def test_api_keys_are_printable_ascii_and_never_echoed(key: Any, match: str) -> None:
    with pytest.raises(lc.ConfigurationError, match=match) as caught:
        check_header_value("api_key", key, secret=True)
    if isinstance(key, str) and len(key) > 2:
        assert key not in str(caught.value) and key not in repr(caught.value)


@pytest.mark.parametrize(("headers", "match"), [
    ({"X-A": 5}, "must be a str"), ({"X-A": "a\r\nb"}, "code 0x0d"), ({"X-A": "é"}, "code 0xe9"),
    ({5: "a"}, "header names must be str"), ({"X A": "a"}, "invalid header name"), (["x"], "must be a dict"),
])
def test_headers_checked(headers: Any, match: str) -> None:
    with pytest.raises(lc.ConfigurationError, match=match):
        check_headers(headers)
    check_headers({"X-Tab": "a\tb", "X-Empty": ""})


@pytest.mark.parametrize(("url", "match"), [
    ("http://127.0.0.1:99999/v1", "port 99999"),
    ("http://127.0.0.1:0/v1", "port 0"),
    ("https://user:hunter2@api.example.com/v1", "user name or password"),
    ("http://user:hunter2@[::1", "not a valid URL"),
    ("ftp://user:hunter2@example.com", "must not contain"),
])
def test_base_url_policy_never_echoes_a_password(url: str, match: str) -> None:
    with pytest.raises(lc.ConfigurationError, match=match) as caught:
        check_base_url(url, sends_credentials=False)
    assert "hunter2" not in str(caught.value)


def test_masked_url() -> None:
    assert masked_url("https://u:p@h:8/v1?key=sk-1") == "https://***@h:8/v1"
    assert masked_url("http://h/v1") == "http://h/v1"


def test_scrub_covers_raw_url_encoded_and_base64_spellings() -> None:
    key = "sk-test/abc+def=="
    text = " | ".join([key, urllib.parse.quote(key, safe=""), urllib.parse.quote_plus(key),
                       base64.b64encode(key.encode()).decode()])
    assert scrub(text, [Secret(key)]) == " | ".join(["***"] * 4)


def test_stats_survive_odd_usage_from_a_third_party_connector() -> None:
    stats = ProviderStats()
    odd = lc.Usage(input_tokens="3", output_tokens=True)  # type: ignore[arg-type]
    stats.record_success(0.1, odd, None, math.nan)
    assert stats.successes == 1 and stats.input_tokens == 0 and stats.output_tokens == 0 and stats.cost == 0
