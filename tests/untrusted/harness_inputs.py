"""The caller-input table: bad values for every entry point, each of which must be refused before I/O.

Tables of bad inputs for the constructor (``api_key``, ``base_url``, ``headers``, ``timeout``,
options), ``generate_chat`` / ``generate_chat_stream`` (:data:`CHAT`) and ``generate_embedding``
(:data:`EMBED`): wrong types, ``None``, bytes, generators, NaN and Infinity nested in tool schemas,
``extra`` and ``provider_options``, lone surrogates in text, tool names and stop strings,
integers beyond 64 bits, zero, negative and infinite timeouts, data URLs that are not base64 or
not images, unknown roles, tool turns without ids... ``test_caller_input.py`` runs them.

:func:`assert_refused_on_both_loops` is their judge: a typed error (never a raw exception), raised
before any I/O, quoting no secret, the same class on asyncio and on trio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
from harness_oracle import FUZZ_KEY, key_spellings, scrubbed
from harness_server import RawHTTPServer, RawRequest, Script

import llm_connectors as lc

__all__ = ["CHAT", "EMBED", "PASSWORD", "SETUP", "USER", "Bad", "BadSetup", "assert_refused_on_both_loops",
           "refusal_problems"]

BACKENDS = ("asyncio", "trio")

NAN, INF = math.nan, math.inf
PASSWORD = "hunter2-pw"
USER = [{"role": "user", "content": "hi"}]
IMAGE = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
         "AAAABJRU5ErkJggg==")
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def _tool(name: Any = "get_weather", parameters: Any = None, **more: Any) -> dict[str, Any]:
    function = {"name": name, "parameters": {"type": "object", "properties": {}} if parameters is None
                else parameters, **more}
    return {"type": "function", "function": function}


def _image(url: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def _tool_turns(tool_message: dict[str, Any], call: Any = CALL) -> list[dict[str, Any]]:
    return [*USER, {"role": "assistant", "content": None, "tool_calls": [call]}, tool_message]


def _generator() -> Iterator[str]:
    yield "stop"


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


@dataclass(frozen=True)
class Bad:
    """One bad call: ``messages`` and ``options`` for a chat, or ``input`` for embeddings (in ``messages``).

    Either may be a function making the value: a generator is used up by the first call, and each case
    runs on two event loops."""

    name: str
    model: Any = None
    messages: Any = None
    options: Any = None


def _m(name: str, messages: Any) -> Bad:
    return Bad(name, messages=messages)


def _o(name: str, **options: Any) -> Bad:
    return Bad(name, options=options)


#: Bad chats: the same table for generate_chat and generate_chat_stream.
CHAT: list[Bad] = [
    # -- messages as a whole
    _m("messages-None", None), _m("messages-int", 5), _m("messages-bytes", b"hi"), _m("messages-empty-list", []),
    _m("messages-dict", {"role": "user", "content": "hi"}),
    _m("messages-surrogate-str", "hi \ud800"), _m("messages-set", {"hi"}), _m("message-None", [None]),
    _m("message-int", [5]), _m("message-bytes", [b"hi"]), _m("message-list", [["user", "hi"]]),
    # -- roles
    _m("role-unknown", [{"role": "wizard", "content": "hi"}]), _m("role-None", [{"role": None, "content": "hi"}]),
    _m("role-int", [{"role": 5, "content": "hi"}]), _m("role-missing", [{"content": "hi"}]),
    _m("role-empty", [{"role": "", "content": "hi"}]), _m("role-upper", [{"role": "USER", "content": "hi"}]),
    _m("role-bytes", [{"role": b"user", "content": "hi"}]),
    _m("message-empty-dict", [{}]),
    # -- content
    _m("content-missing", [{"role": "user"}]), _m("content-None", [{"role": "user", "content": None}]),
    _m("content-int", [{"role": "user", "content": 5}]), _m("content-float-nan", [{"role": "user", "content": NAN}]),
    _m("content-bytes", [{"role": "user", "content": b"hi"}]),
    _m("content-dict", [{"role": "user", "content": {"text": "hi"}}]),
    _m("content-generator", lambda: [{"role": "user", "content": (p for p in [{"type": "text", "text": "hi"}])}]),
    _m("content-surrogate", [{"role": "user", "content": "hi \ud800 there"}]),
    _m("content-surrogate-low", [{"role": "user", "content": "\udfff"}]),
    _m("system-surrogate", [{"role": "system", "content": "be \udc80 nice"}, *USER]),
    _m("system-int", [{"role": "system", "content": 7}, *USER]),
    _m("part-None", [{"role": "user", "content": [None]}]),
    _m("part-no-type", [{"role": "user", "content": [{"text": "hi"}]}]),
    _m("part-unknown-type", [{"role": "user", "content": [{"type": "video", "url": "x"}]}]),
    _m("part-text-missing", [{"role": "user", "content": [{"type": "text"}]}]),
    _m("part-text-int", [{"role": "user", "content": [{"type": "text", "text": 5}]}]),
    _m("part-text-surrogate", [{"role": "user", "content": [{"type": "text", "text": "\ud83d"}]}]),
    _m("name-int", [{"role": "user", "content": "hi", "name": 5}]),
    _m("name-surrogate", [{"role": "user", "content": "hi", "name": "a\ud800"}]),
    # -- images
    _m("image-not-base64", _image("data:image/png;base64,%%%not base64%%%")),
    _m("image-not-image", _image("data:text/plain;base64,aGVsbG8=")),
    _m("image-empty-data", _image("data:image/png;base64,")),
    _m("image-no-media-type", _image("data:;base64,aGVsbG8=")),
    _m("image-url-int", _image(5)), _m("image-url-None", _image(None)), _m("image-url-empty", _image("")),
    _m("image-url-bytes", _image(IMAGE.encode())),
    _m("image-url-javascript", _image("javascript:alert(1)")),
    _m("image-url-file", _image("file:///etc/passwd")),
    _m("image-url-surrogate", _image("https://example.com/\ud800.png")),
    _m("image-url-object-missing", [{"role": "user", "content": [{"type": "image_url"}]}]),
    _m("image-url-object-int", [{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}]),
    _m("image-truncated-base64", _image("data:image/png;base64,iVBORw0KGgo")),
    _m("image-bad-padding", _image("data:image/png;base64,aGVsbG8")),
    # -- tool turns
    _m("tool-without-id", _tool_turns({"role": "tool", "content": "sunny"})),
    _m("tool-id-int", _tool_turns({"role": "tool", "content": "sunny", "tool_call_id": 5})),
    _m("tool-id-empty", _tool_turns({"role": "tool", "content": "sunny", "tool_call_id": ""})),
    _m("tool-id-surrogate", _tool_turns({"role": "tool", "content": "sunny", "tool_call_id": "c\ud800"})),
    _m("tool-content-int", _tool_turns({"role": "tool", "content": 5, "tool_call_id": "call_1"})),
    _m("tool-calls-int", [*USER, {"role": "assistant", "content": None, "tool_calls": 5}]),
    _m("tool-calls-item-int", [*USER, {"role": "assistant", "content": None, "tool_calls": [5]}]),
    _m("tool-call-no-function", [*USER, {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}]),
    _m("tool-call-name-int", _tool_turns({"role": "tool", "content": "x", "tool_call_id": "call_1"},
                                         {**CALL, "function": {"name": 5, "arguments": "{}"}})),
    _m("tool-call-name-surrogate", _tool_turns({"role": "tool", "content": "x", "tool_call_id": "call_1"},
                                               {**CALL, "function": {"name": "f\ud800", "arguments": "{}"}})),
    _m("tool-call-arguments-nan", _tool_turns({"role": "tool", "content": "x", "tool_call_id": "call_1"},
                                              {**CALL, "function": {"name": "f", "arguments": {"x": NAN}}})),
    _m("tool-call-arguments-int", _tool_turns({"role": "tool", "content": "x", "tool_call_id": "call_1"},
                                              {**CALL, "function": {"name": "f", "arguments": 5}})),
    _m("tool-call-id-int", _tool_turns({"role": "tool", "content": "x", "tool_call_id": "call_1"},
                                       {**CALL, "id": 5})),
    _m("message-object-bad-role", lambda: [lc.Message(role="wizard", content="hi")]),  # type: ignore[arg-type]
    _m("message-object-bad-content", lambda: [lc.Message(role="user", content=5)]),  # type: ignore[arg-type]
    # -- the model
    Bad("model-int", model=5), Bad("model-bytes", model=b"gpt"),
    Bad("model-empty", model=""),
    Bad("model-surrogate", model="gpt-\ud800"), Bad("model-list", model=["gpt"]),
    Bad("model-newline", model="gpt\r\nX-Injected: 1"),
    # -- sampling options
    _o("temperature-str", temperature="hot"), _o("temperature-nan", temperature=NAN),
    _o("temperature-inf", temperature=INF), _o("temperature-negative", temperature=-1),
    _o("temperature-huge", temperature=1e308), _o("temperature-bool", temperature=True),
    _o("temperature-list", temperature=[1]),
    _o("top_p-nan", top_p=NAN), _o("top_p-above-1", top_p=2), _o("top_p-str", top_p="0.5"),
    _o("max_tokens-zero", max_tokens=0), _o("max_tokens-negative", max_tokens=-1),
    _o("max_tokens-huge", max_tokens=10**30), _o("max_tokens-float", max_tokens=1.5),
    _o("max_tokens-str", max_tokens="10"), _o("max_tokens-bool", max_tokens=True),
    _o("max_tokens-nan", max_tokens=NAN),
    _o("stop-int", stop=5), _o("stop-list-int", stop=[5]), _o("stop-empty-str", stop=""),
    _o("stop-list-empty-str", stop=[""]), _o("stop-surrogate", stop=["end\ud800"]),
    Bad("stop-generator", options=lambda: {"stop": _generator()}), _o("stop-bytes", stop=b"end"),
    _o("stop-dict", stop={"a": 1}),
    _o("seed-huge", seed=2**70), _o("seed-negative-huge", seed=-(2**70)), _o("seed-str", seed="1"),
    _o("seed-float", seed=1.5), _o("seed-bool", seed=True),
    # -- tools
    _o("tools-int", tools=5), _o("tools-dict", tools=_tool()), _o("tools-item-int", tools=[5]),
    _o("tools-item-None", tools=[None]), _o("tools-no-function", tools=[{"type": "function"}]),
    _o("tools-type-unknown", tools=[{"type": "spell", "function": {"name": "x"}}]),
    _o("tools-name-int", tools=[_tool(5)]), _o("tools-name-empty", tools=[_tool("")]),
    _o("tools-name-surrogate", tools=[_tool("get\ud800")]), _o("tools-name-spaces", tools=[_tool("get weather!")]),
    _o("tools-name-huge", tools=[_tool("x" * 10_000)]),
    _o("tools-duplicate-names", tools=[_tool(), _tool()]),
    _o("tools-params-int", tools=[_tool(parameters=5)]),
    _o("tools-params-nan", tools=[_tool(parameters={"type": "object", "properties": {"x": {"default": NAN}}})]),
    _o("tools-params-inf-deep", tools=[_tool(parameters={"type": "object", "properties": {"x": {"type": "number",
                                                                                             "maximum": INF}}})]),
    _o("tools-params-set", tools=[_tool(parameters={"type": "object", "enum": {1, 2}})]),
    _o("tools-params-int-key", tools=[_tool(parameters={"type": "object", 5: "x"})]),
    _o("tools-params-surrogate-key", tools=[_tool(parameters={"type": "object", "properties": {"\ud800": {}}})]),
    _o("tools-params-huge-int", tools=[_tool(parameters={"type": "integer", "maximum": 2**70})]),
    _o("tools-params-deep", tools=[_tool(parameters=_deep(200))]),
    _o("tools-description-int", tools=[_tool(description=5)]),
    Bad("tools-generator", options=lambda: {"tools": (t for t in [_tool()])}),
    _o("tool_choice-unknown", tools=[_tool()], tool_choice="sometimes"),
    _o("tool_choice-int", tools=[_tool()], tool_choice=5),
    _o("tool_choice-not-a-tool", tools=[_tool()], tool_choice={"type": "function", "function": {"name": "nope"}}),
    _o("tool_choice-no-function", tools=[_tool()], tool_choice={"type": "function"}),
    _o("tool_choice-without-tools", tool_choice="required"),
    # -- response format
    _o("response_format-str", response_format="json"),
    _o("response_format-unknown", response_format={"type": "yaml"}),
    _o("response_format-no-schema", response_format={"type": "json_schema"}),
    _o("response_format-schema-nan", response_format={"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "number", "minimum": NAN}}}),
    _o("response_format-schema-int", response_format={"type": "json_schema", "json_schema": 5}),
    # -- extra and provider_options: anything JSON cannot carry
    _o("extra-int", extra=5), _o("extra-nan", extra={"x": NAN}), _o("extra-inf-nested", extra={"x": [{"y": -INF}]}),
    _o("extra-set", extra={"x": {1, 2}}), _o("extra-bytes", extra={"x": b"raw"}),
    _o("extra-object", extra={"x": object()}),
    _o("extra-int-key", extra={5: "a"}), _o("extra-surrogate", extra={"x": "\ud800"}),
    _o("extra-surrogate-key", extra={"\udc00": 1}), _o("extra-huge-int", extra={"x": 2**64}),
    _o("extra-deep", extra=_deep(500)), Bad("extra-generator", options=lambda: {"extra": {"x": (i for i in range(3))}}),
    _o("extra-tuple-key", extra={("a",): 1}),
    _o("provider_options-int", provider_options=5), _o("provider_options-nan", provider_options={"x": NAN}),
    _o("provider_options-set", provider_options={"x": {1}}), _o("provider_options-surrogate",
                                                               provider_options={"x": "\ud800"}),
    _o("provider_options-huge-int", provider_options={"x": -(2**80)}),
    # -- unknown options and per-call timeouts
    _o("option-unknown", bogus=1), _o("option-typo", temprature=0.5),
    _o("timeout-zero", timeout=0), _o("timeout-negative", timeout=-1), _o("timeout-inf", timeout=INF),
    _o("timeout-nan", timeout=NAN), _o("timeout-str", timeout="10"), _o("timeout-bool", timeout=True),
    _o("timeout-huge", timeout=10**30),
]

#: Bad embedding calls (the connector's other inputs valid).
EMBED: list[Bad] = [
    Bad("input-None", messages=None), Bad("input-int", messages=5),
    Bad("input-bytes", messages=b"hi"), Bad("input-empty-list", messages=[]),
    Bad("input-empty-str", messages=""), Bad("input-list-empty-str", messages=["ok", ""]),
    Bad("input-list-int", messages=["ok", 5]), Bad("input-list-None", messages=[None]),
    Bad("input-surrogate", messages="a\ud800"), Bad("input-list-surrogate", messages=["\udfff"]),
    Bad("input-dict", messages={"a": "b"}), Bad("input-list-bytes", messages=[b"x"]),
    Bad("input-nested-list", messages=[["a"]]),
    Bad("model-int", model=5, messages="hi"), Bad("model-surrogate", model="e\ud800", messages="hi"),
    Bad("dimensions-zero", messages="hi", options={"dimensions": 0}),
    Bad("dimensions-negative", messages="hi", options={"dimensions": -8}),
    Bad("dimensions-str", messages="hi", options={"dimensions": "8"}),
    Bad("dimensions-bool", messages="hi", options={"dimensions": True}),
    Bad("dimensions-float", messages="hi", options={"dimensions": 1.5}),
    Bad("dimensions-huge", messages="hi", options={"dimensions": 2**70}),
    Bad("option-unknown", messages="hi", options={"bogus": 1}),
    Bad("timeout-negative", messages="hi", options={"timeout": -1}),
    Bad("timeout-inf", messages="hi", options={"timeout": INF}),
    Bad("extra-nan", messages="hi", options={"extra": {"x": NAN}}),
    Bad("extra-surrogate", messages="hi", options={"extra": {"x": "\ud800"}}),
]


@dataclass(frozen=True)
class BadSetup:
    """Bad constructor settings; ``base_url`` ``None`` means the harness server's."""

    name: str
    settings: dict[str, Any]
    base_url: Any = None
    #: Python's own TypeError is the documented answer (a misspelt keyword, ``base._refuse_unknown``).
    python_type_error: bool = False


SETUP: list[BadSetup] = [
    BadSetup("api_key-empty", {"api_key": ""}), BadSetup("api_key-space", {"api_key": " "}),
    BadSetup("api_key-accent", {"api_key": "sk-café"}), BadSetup("api_key-newline", {"api_key": "sk-a\nX-B: c"}),
    BadSetup("api_key-inner-space", {"api_key": "sk a"}), BadSetup("api_key-int", {"api_key": 5}),
    BadSetup("api_key-bytes", {"api_key": b"sk-abc"}), BadSetup("api_key-list", {"api_key": ["sk-a", 5]}),
    BadSetup("api_key-surrogate", {"api_key": "sk-\ud800"}), BadSetup("api_key-nul", {"api_key": "sk-\x00"}),
    BadSetup("api_key-dict", {"api_key": {"k": "v"}}),
    BadSetup("api_key-trailing-newline", {"api_key": FUZZ_KEY + "\n"}),
    BadSetup("base_url-port-99999", {}, base_url="http://127.0.0.1:99999"),
    BadSetup("base_url-port-negative", {}, base_url="http://127.0.0.1:-1"),
    BadSetup("base_url-port-text", {}, base_url="http://127.0.0.1:http"),
    BadSetup("base_url-bracket", {}, base_url="http://[::1"),
    BadSetup("base_url-password", {}, base_url=f"http://user:{PASSWORD}@127.0.0.1:1/v1"),
    BadSetup("base_url-ftp", {}, base_url="ftp://127.0.0.1/"),
    BadSetup("base_url-no-scheme", {}, base_url="127.0.0.1:8080"),
    BadSetup("base_url-scheme-only", {}, base_url="http://"),
    BadSetup("base_url-int", {}, base_url=5), BadSetup("base_url-bytes", {}, base_url=b"http://127.0.0.1"),
    BadSetup("base_url-space", {}, base_url="http://exa mple.com"),
    BadSetup("base_url-newline", {}, base_url="http://127.0.0.1/\r\nX-A: b"),
    BadSetup("base_url-surrogate", {}, base_url="http://\ud800.example/"),
    BadSetup("base_url-metadata", {}, base_url="http://169.254.169.254/latest"),
    BadSetup("base_url-plain-http-remote", {}, base_url="http://192.0.2.1/v1"),
    BadSetup("base_url-javascript", {}, base_url="javascript:alert(1)"),
    BadSetup("headers-int-value", {"headers": {"X-A": 5}}), BadSetup("headers-None-value", {"headers": {"X-A": None}}),
    BadSetup("headers-int-name", {"headers": {5: "a"}}), BadSetup("headers-space-name", {"headers": {"X A": "b"}}),
    BadSetup("headers-newline-value", {"headers": {"X-A": "a\r\nX-B: c"}}),
    BadSetup("headers-accent-value", {"headers": {"X-A": "café"}}),
    BadSetup("headers-empty-name", {"headers": {"": "a"}}),
    BadSetup("headers-list", {"headers": [("X-A", "b")]}), BadSetup("headers-str", {"headers": "X-A: b"}),
    BadSetup("headers-bytes-value", {"headers": {"X-A": b"b"}}),
    BadSetup("headers-surrogate-name", {"headers": {"X-\ud800": "b"}}),
    BadSetup("timeout-zero", {"timeout": 0}), BadSetup("timeout-negative", {"timeout": -1}),
    BadSetup("timeout-inf", {"timeout": INF}), BadSetup("timeout-nan", {"timeout": NAN}),
    BadSetup("timeout-str", {"timeout": "10"}), BadSetup("timeout-bool", {"timeout": True}),
    BadSetup("timeout-huge", {"timeout": 10**30}), BadSetup("timeout-list", {"timeout": [1]}),
    BadSetup("retry-str", {"retry": "yes"}), BadSetup("retry-int", {"retry": 5}),
    BadSetup("retry-bad-dict", {"retry": {"max_retries": -1}}),
    BadSetup("circuit_breaker-str", {"circuit_breaker": "on"}),
    BadSetup("rate_limit-int", {"rate_limit": 5}),
    BadSetup("rate_limit-nan", {"rate_limit": {"requests_per_minute": NAN}}),
    BadSetup("cache-str", {"cache": "yes"}), BadSetup("pool-int", {"pool": 5}),
    BadSetup("transport-unknown", {"transport": "curl"}), BadSetup("transport-int", {"transport": 5}),
    BadSetup("verify-int", {"verify": 5}), BadSetup("verify-missing-file", {"verify": "/nonexistent/ca.pem"}),
    BadSetup("verify-false-unconfirmed", {"verify": False}),
    BadSetup("follow_redirects-str", {"follow_redirects": "yes"}), BadSetup("log_payloads-str", {"log_payloads": "y"}),
    BadSetup("hooks-int", {"hooks": 5}), BadSetup("shared_state-int", {"shared_state": 5}),
    BadSetup("allow_insecure_http-str", {"allow_insecure_http": "yes"}),
    BadSetup("option-unknown", {"bogus_option": 1}, python_type_error=True),
    BadSetup("default_model-int", {"default_model": 5}),
    BadSetup("http_client-int", {"http_client": 5}),
]


# -- the judge ------------------------------------------------------------------------------------------------

def refusal_problems(raised: BaseException | None, server: RawHTTPServer, secrets: tuple[str, ...], *,
                     typed: tuple[type[BaseException], ...] = (lc.LLMConnectorError,)) -> list[str]:
    """How one attempt broke the rule: accepted, a raw exception, I/O before the error, a quoted secret."""
    sent = f"{server.connections} connection(s), {len(server.requests)} request(s)"
    if raised is None:
        return [f"accepted (no error); the server saw {sent}"]
    problems = []
    if not isinstance(raised, typed):
        problems.append(f"raw exception {type(raised).__module__}.{type(raised).__qualname__}: {raised!s:.300}")
    if server.connections or server.requests:
        problems.append(f"I/O before the error: {sent}")
    elif isinstance(raised, lc.NetworkError) or getattr(raised, "status_code", None) is not None:
        # a base_url elsewhere was accepted and tried: only I/O makes these errors
        problems.append(f"{type(raised).__name__} ({raised!s:.160}): an error only I/O produces")
    request_id = getattr(raised, "request_id", None)
    texts = {"str(err)": str(raised), "repr(err)": repr(raised), "err.request_id": request_id or ""}
    problems += [f"{where} quotes a secret ({how})" for secret in secrets
                 for how, spelled in key_spellings(secret).items()
                 for where, text in texts.items() if spelled in text]
    return problems


def assert_refused_on_both_loops(server: RawHTTPServer, handler: Callable[[RawRequest], Script],
                                 attempt: Callable[[], Any], secrets: tuple[str, ...], *,
                                 typed: tuple[type[BaseException], ...] = (lc.LLMConnectorError,)) -> None:
    """``attempt`` (a coroutine function) on asyncio and on trio, each against a fresh server record."""
    problems, classes = [], {}
    for backend in BACKENDS:
        server.reset(handler)
        raised = anyio.run(attempt, backend=backend)
        problems += [f"{backend}: {p}" for p in refusal_problems(raised, server, secrets, typed=typed)]
        classes[backend] = type(raised).__name__ if raised is not None else "accepted"
    if len(set(classes.values())) > 1:
        problems.append(f"different outcomes: {classes}")
    if problems:
        shown = " || ".join(problems)
        for secret in secrets:
            shown = scrubbed(shown, secret)
        raise AssertionError(shown)
