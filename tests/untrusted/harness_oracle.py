"""The oracle: send one (possibly mutated) answer through a real connector and judge the outcome.

For every case the connector is built fresh (``retry=False, circuit_breaker=False``: one request,
its own outcome), pointed at the byte-level :class:`~harness_server.RawHTTPServer`, given a canary
API key, and called once in the template's mode. The outcome must be one of:

* a success whose value (text, vectors, model ids) is one :func:`harness_readers.allowed`
  allows — the value the provider actually sent, never made up; ``""`` only with a documented
  empty-answer reason — with well-typed metadata (usage counts are ints >= 0, the model a str,
  the finish reason one of ours...), and ``stats()`` and the cost estimate still working after it;
* a typed :class:`llm_connectors.LLMConnectorError` of a class the case permits (a malformed 200
  is a ``ProtocolError``; a stream that broke after text reached the caller a
  ``StreamInterruptedError`` whose ``partial`` is exactly what was delivered — nothing else once
  text was delivered).

Never another exception type. And the canary key (raw, URL-encoded, base64) appears nowhere: not
in ``str(err)``, ``repr(err)``, ``err.request_id``, the exception chain, or any log record.

:func:`check_case` runs a case from a synchronous test on several (event loop, engine) pairs, each
run on its own loop (:func:`run_sync`), judges every outcome and compares them
(:func:`parity_problems`): the same answer must come out the same way on asyncio and on trio (the
same error class, or the same value).
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import secrets
import ssl
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from builders import build_connector
from harness_findings import PINNED_LEAKS
from harness_readers import Allowed
from harness_server import RawHTTPServer, RawRequest, Script, http_response
from harness_templates import EMBED_INPUTS, Template

import llm_connectors as lc
from llm_connectors.http.engine_choice import aiohttp_installed
from llm_connectors.types import ChatResponse, EmbeddingResponse, ModelInfo, ToolCall, Usage

__all__ = ["FAILS_200", "FAILS_CUT", "FAILS_NETWORK", "FUZZ_KEY", "SHARED_TLS", "Case", "Outcome", "answer_script",
           "assert_ok", "check_case", "echo_headers", "engines", "every_pair", "judge", "key_spellings",
           "outcome_class", "parity_problems", "run_case", "run_sync", "scrubbed"]

#: The error classes a malformed 200 may raise (a stream that broke after text reached the caller: interrupted).
FAILS_200: tuple[type[lc.LLMConnectorError], ...] = (lc.ProtocolError, lc.StreamInterruptedError)
#: ... and an answer cut short, or HTTP that is broken (the engine's own errors are NetworkErrors, timeouts too).
FAILS_NETWORK: tuple[type[lc.LLMConnectorError], ...] = (*FAILS_200, lc.NetworkError)
FAILS_CUT = FAILS_NETWORK
FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "other", "error", None}
SPELLINGS = ("raw", "quote", "quote_plus", "base64")
#: The canary key of the fuzz tables: every connector is configured with it, wrong values in mutated
#: answers carry it, and it must come back nowhere (characters that URL-encode, so the spellings differ).
FUZZ_KEY = f"sk-fuzz-{secrets.token_hex(16)}+/=Z9"
#: One trust store for every connector: building the default one costs ~25 ms per client, and the
#: harness speaks plain http to 127.0.0.1, so no case ever uses it.
SHARED_TLS = ssl.create_default_context()


def engines() -> list[str]:
    """The HTTP engines a connector can use here (aiohttp when the ``fast`` extra is installed)."""
    return ["httpx", "aiohttp"] if aiohttp_installed() else ["httpx"]


def key_spellings(key: str) -> dict[str, str]:
    """How a key may travel back: as is, URL-encoded (query strings), base64 (Basic auth)."""
    raw = key.encode("utf-8", "surrogatepass")  # a bad key under test may hold a lone surrogate
    return {"raw": key, "quote": urllib.parse.quote(raw, safe=""), "quote_plus": urllib.parse.quote_plus(raw),
            "base64": base64.b64encode(raw).decode()}


def _received_key(request: RawRequest) -> str | None:
    headers = request.headers
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:]
    return headers.get("x-api-key") or headers.get("x-megachat-key") or headers.get("api-key")


def echo_headers(request: RawRequest, spelling: str) -> list[tuple[str, str]]:
    """Every provider's request-id header, each carrying the key the request came with.

    A proxy or a provider that echoes the ``Authorization`` value into its request id is a real
    thing; a connector reads one of these headers into ``err.request_id``.
    """
    key = _received_key(request)
    if not key:
        return []
    value = "req_" + key_spellings(key)[spelling]
    return [(name, value) for name in ("x-request-id", "request-id", "mistral-correlation-id",
                                       "x-kong-request-id", "megachat-trace-id")]


def answer_script(template: Template, pieces: Sequence[bytes], *, spelling: str | None = None,
                  cut: bool = False) -> Callable[[RawRequest], Script]:
    """A handler answering every request with ``pieces``: JSON with a Content-Length, a stream chunked
    (one chunk per event). ``cut``: the connection is reset after the pieces (no last chunk).
    ``spelling``: echo the request's key in every request-id header, spelled so."""
    def handler(request: RawRequest) -> Script:
        headers = [("content-type", template.content_type)]
        if spelling is not None:
            headers += echo_headers(request, spelling)
        if template.framing == "json" and not cut:
            return http_response(200, headers, b"".join(pieces))
        steps = http_response(200, headers, list(pieces), framing="chunked")
        if cut:
            steps = [*steps[:-2], "reset"]  # drop the last chunk and the close: the peer dies mid-body
        return steps
    return handler


@dataclass
class Case:
    """One answer to send and what may come of it."""

    id: str
    template: Template
    handler: Callable[[RawRequest], Script]
    allowed: Allowed
    fails: tuple[type[lc.LLMConnectorError], ...] = FAILS_200
    #: What the case is (the mutation, the expectation), for failure messages.
    note: str = ""
    #: The outcome depends on timing (a connection reset mid-body): loops compared on success/failure only.
    racy: bool = False


@dataclass
class Outcome:
    value: Any = None
    response: Any = None
    error: BaseException | None = None
    deltas: list[str] = field(default_factory=list)
    stats: Any = None
    stats_error: BaseException | None = None
    requests: int = 0
    #: The case's own script failed (a harness bug, not the library's): judged as a problem.
    script_errors: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)


async def _call(connector: Any, template: Template, outcome: Outcome) -> None:
    model = template.model
    if template.mode == "chat":
        outcome.response = await connector.generate_chat(model, "hi")
        outcome.value = outcome.response.content
    elif template.mode == "stream":
        async with connector.generate_chat_stream(model, "hi") as stream:
            async for chunk in stream:
                outcome.deltas.append(chunk.delta)
            outcome.response = stream.response
        outcome.value = outcome.response.content
    elif template.mode == "embeddings":
        outcome.response = await connector.generate_embedding(model, list(EMBED_INPUTS))
        outcome.value = outcome.response.embeddings
    else:
        outcome.response = await connector.list_models()
        outcome.value = [m.id for m in outcome.response]


async def run_case(server: RawHTTPServer, case: Case, key: str, caplog: pytest.LogCaptureFixture,
                   **settings: Any) -> Outcome:
    """Serve ``case`` and make the one call; every exception is caught into the outcome."""
    outcome = Outcome()
    start = len(caplog.records)
    settings.setdefault("timeout", 15)
    settings.setdefault("log_payloads", True)
    settings.setdefault("verify", SHARED_TLS)
    with server.serving(case.handler):
        connector = build_connector(case.template.provider, base_url=server.url, api_key=key, **settings)
        try:
            await _call(connector, case.template, outcome)
        except Exception as exc:  # judged below: only typed errors are acceptable
            outcome.error = exc
        finally:
            try:
                outcome.stats = connector.stats()
            except Exception as exc:
                outcome.stats_error = exc
            await connector.aclose()
    outcome.requests = len(server.requests)
    outcome.script_errors = [e for e in server.errors if e.startswith("handler failed")]
    outcome.logs = [_record_text(r) for r in caplog.records[start:]]
    return outcome


def run_sync(server: RawHTTPServer, case: Case, key: str, caplog: pytest.LogCaptureFixture, *, backend: str,
             engine: str, **settings: Any) -> Outcome:
    """:func:`run_case` on its own event loop (``asyncio`` or ``trio``) with the HTTP engine ``engine``."""
    call = functools.partial(run_case, server, case, key, caplog, transport=engine, **settings)
    return anyio.run(call, backend=backend)


def outcome_class(outcome: Outcome) -> str:
    """``"success"`` or the error's class name: what must not depend on the event loop."""
    return "success" if outcome.error is None else type(outcome.error).__name__


def parity_problems(outcomes: dict[str, Outcome], *, exact: bool = True) -> list[str]:
    """How the outcomes of one case on several (loop, engine) pairs differ. ``exact``: the same error class
    (or the same value); otherwise (a connection reset mid-body, where the kernel decides whether the bytes
    before the RST are read at all) only success against failure."""
    if exact:
        seen = {label: (outcome_class(o), repr(o.value) if o.error is None else "") for label, o in outcomes.items()}
    else:
        seen = {label: (o.error is None, "") for label, o in outcomes.items()}
    if len(set(seen.values())) <= 1:
        return []
    return ["different outcomes: " + "; ".join(f"{label} -> {outcome_class(o)}"
                                               for label, o in outcomes.items())]


def _record_text(record: logging.LogRecord) -> str:
    text = f"{record.name}: {record.getMessage()}"
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text


# -- judging ---------------------------------------------------------------------------------------------

def _leaks(key: str, texts: dict[str, str], *, every: bool) -> list[str]:
    """Where the key appears; unless ``every``, not where a finding pinned by its own test says it does."""
    spellings = key_spellings(key)
    return [f"the API key ({how}) appears in {where}: {text[:160]!r}"
            for where, text in texts.items() if text and (every or not _pinned(where, text))
            for how, spelled in spellings.items() if spelled in text]


def _pinned(where: str, text: str) -> bool:
    return any(where.startswith(place) and text.startswith(start) for place, start in PINNED_LEAKS)


def _error_texts(err: BaseException) -> dict[str, str]:
    texts: dict[str, str] = {}
    seen: set[int] = set()
    current: BaseException | None = err
    depth = 0
    while current is not None and id(current) not in seen and depth < 10:
        seen.add(id(current))
        label = "err" if depth == 0 else f"err.__cause__/__context__[{depth}]"
        texts[f"str({label})"] = str(current)
        texts[f"repr({label})"] = repr(current)
        if isinstance(current, lc.LLMConnectorError):
            for name in ("request_id", "message", "code"):
                value = getattr(current, name, None)
                if isinstance(value, str):
                    texts[f"{label}.{name}"] = value
        current = current.__cause__ or current.__context__
        depth += 1
    return texts


def _is_count(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _usage_problems(usage: Any) -> list[str]:
    if not isinstance(usage, Usage):
        return [f"usage is {type(usage).__name__}, not Usage"]
    return [f"usage.{name} is {getattr(usage, name)!r}" for name in
            ("input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens",
             "reasoning_tokens") if not _is_count(getattr(usage, name))]


def _tool_call_problems(calls: Any) -> list[str]:
    if not isinstance(calls, list):
        return [f"tool_calls is {type(calls).__name__}"]
    problems = []
    for call in calls:
        if not isinstance(call, ToolCall) or not isinstance(call.id, str) or not isinstance(call.name, str) \
                or not isinstance(call.arguments, dict):
            problems.append(f"malformed tool call {call!r:.120}")
    return problems


def _metadata_problems(template: Template, response: Any) -> list[str]:
    problems: list[str] = []
    if template.mode in ("chat", "stream"):
        if not isinstance(response, ChatResponse):
            return [f"returned {type(response).__name__}, not ChatResponse"]
        if not isinstance(response.model, str):
            problems.append(f"model is {response.model!r:.80}")
        if response.id is not None and not isinstance(response.id, str):
            problems.append(f"id is {response.id!r:.80}")
        if response.finish_reason not in FINISH_REASONS:
            problems.append(f"finish_reason is {response.finish_reason!r:.80}")
        if response.native_finish_reason is not None and not isinstance(response.native_finish_reason, str):
            problems.append(f"native_finish_reason is {response.native_finish_reason!r:.80}")
        if not isinstance(response.reasoning, str):
            problems.append(f"reasoning is {type(response.reasoning).__name__}")
        problems += _usage_problems(response.usage) + _tool_call_problems(response.tool_calls)
    elif template.mode == "embeddings":
        if not isinstance(response, EmbeddingResponse):
            return [f"returned {type(response).__name__}, not EmbeddingResponse"]
        if not isinstance(response.model, str):
            problems.append(f"model is {response.model!r:.80}")
        for vector in response.embeddings:
            if not all(isinstance(x, float) and math.isfinite(x) for x in vector):
                problems.append(f"a vector holds non-floats: {vector!r:.120}")
        problems += _usage_problems(response.usage)
    else:
        for model in response:
            if not isinstance(model, ModelInfo) or not isinstance(model.id, str) or not model.id:
                problems.append(f"malformed model {model!r:.120}")
            elif not (model.name is None or isinstance(model.name, str)) or not _is_count(model.created) \
                    or not _is_count(model.context_length):
                problems.append(f"model {model.id!r} has malformed fields: {model!r:.160}")
    if template.mode != "models" and not problems:
        try:
            cost = lc.estimate_cost(template.provider, response.model, response.usage)
        except Exception as exc:
            problems.append(f"estimate_cost raised {exc!r:.160}")
        else:
            if cost is not None and not (isinstance(cost, float | int) and math.isfinite(cost) and cost >= 0):
                problems.append(f"estimate_cost gave {cost!r}")
    return problems


def _stats_problems(template: Template, outcome: Outcome) -> list[str]:
    if outcome.stats_error is not None:
        return [f"stats() raised {outcome.stats_error!r:.200}"]
    snapshot = (outcome.stats or {}).get(template.provider, {})
    problems = [f"stats {name} is {snapshot.get(name)!r}" for name in ("input_tokens", "output_tokens")
                if not _is_count(snapshot.get(name))]
    cost = snapshot.get("estimated_cost_usd")
    if not (isinstance(cost, float | int) and math.isfinite(cost) and cost >= 0):
        problems.append(f"stats estimated_cost_usd is {cost!r}")
    return problems


def judge(case: Case, outcome: Outcome, key: str, *, every_leak: bool = False) -> list[str]:
    """Every way ``outcome`` breaks the contract (empty: it holds). A leak of a finding pinned by its own
    test (:data:`~harness_findings.PINNED_LEAKS`) is left to that test, unless ``every_leak``."""
    problems: list[str] = []
    err = outcome.error
    if err is None:
        if not case.allowed.accepts(outcome.value):
            expected = case.allowed.values or f"an error ({case.allowed.why})"
            problems.append(f"success with {outcome.value!r:.200}; allowed: {expected!r:.200}")
        problems += _metadata_problems(case.template, outcome.response)
        if case.template.mode == "stream" and "".join(outcome.deltas) != outcome.value:
            problems.append(f"the deltas {''.join(outcome.deltas)!r:.120} differ from the response's text")
    elif not isinstance(err, lc.LLMConnectorError):
        problems.append(f"raw exception {type(err).__module__}.{type(err).__qualname__}: {err!s:.300}")
    else:
        if not isinstance(err, case.fails):
            problems.append(f"{type(err).__name__} ({err!s:.200}) where {[c.__name__ for c in case.fails]} "
                            "was expected")
        delivered = "".join(outcome.deltas)
        if isinstance(err, lc.StreamInterruptedError):
            if err.partial != delivered:
                problems.append(f"partial {err.partial!r:.80} differs from the delivered text {delivered!r:.80}")
        elif delivered:
            problems.append(f"{type(err).__name__} after {delivered!r:.80} reached the caller (a stream that breaks "
                            "after text was delivered raises StreamInterruptedError)")
        problems += _leaks(key, _error_texts(err), every=every_leak)
    problems += _stats_problems(case.template, outcome)
    problems += [f"harness: the case's script failed: {e}" for e in outcome.script_errors]
    problems += _leaks(key, {f"log record {i}": text for i, text in enumerate(outcome.logs)}, every=every_leak)
    return problems


def scrubbed(text: str, key: str) -> str:
    """``text`` without the key in any spelling: a report must not leak what it reports leaking (the
    session's canary scan must only ever see the library's own leaks)."""
    for spelled in key_spellings(key).values():
        text = text.replace(spelled, "<KEY>")
    return text


def assert_ok(case: Case, outcome: Outcome, key: str, *, every_leak: bool = False) -> None:
    problems = judge(case, outcome, key, every_leak=every_leak)
    if problems:
        raise AssertionError(scrubbed(f"{case.id} ({case.note}): " + " || ".join(problems), key))


#: The (loop, engine) pairs a case can run on here: both loops on httpx, asyncio on aiohttp (which needs asyncio).
def every_pair() -> list[tuple[str, str]]:
    return [("asyncio", "httpx"), ("trio", "httpx")] + [("asyncio", e) for e in engines() if e != "httpx"]


def check_case(case: Case, runs: list[tuple[str, str]], server: RawHTTPServer, caplog: pytest.LogCaptureFixture,
               *, cross_engine: bool = False, **settings: Any) -> dict[str, Outcome]:
    """Run ``case`` on each (loop, engine) of ``runs``; fail on any oracle problem, and when the loops disagree
    on one engine. ``cross_engine``: the engines must agree too (valid HTTP: how it is read must not matter)."""
    outcomes = {f"{backend}/{engine}": run_sync(server, case, FUZZ_KEY, caplog, backend=backend, engine=engine,
                                                **settings) for backend, engine in runs}
    problems = [f"{label}: {problem}" for label, outcome in outcomes.items()
                for problem in judge(case, outcome, FUZZ_KEY)]
    problems += [f"{label}: no request reached the server ({o.error!r:.160})" for label, o in outcomes.items()
                 if o.requests < 1]
    for engine in dict.fromkeys(engine for _, engine in runs):
        same_engine = {label: o for label, o in outcomes.items() if label.endswith(f"/{engine}")}
        problems += parity_problems(same_engine, exact=not case.racy)
    if cross_engine and not problems:
        problems += parity_problems(outcomes, exact=not case.racy)
    if problems:
        raise AssertionError(scrubbed(f"{case.id} ({case.note}): " + " || ".join(problems), FUZZ_KEY))
    return outcomes

