"""Malformed answers through a real socket, from the scripted mutation table, on both event loops.

Every provider (openai, mistral, claude, ollama, sample) in every mode it has (chat, stream,
embeddings, model list): each node of a valid answer replaced by a value of another type, nulled,
deleted, emptied; odd numbers in token counts (5000 digits, ``1e999``, ``NaN``, -1, 2.5, 2**64);
lone surrogates and bad escapes in text; non-JSON bodies and events; duplicated events; streams of
only the end marker, of nothing, or cut (cleanly or by a reset) at event boundaries and inside a
multi-byte character. The oracle (``harness_oracle``) judges each outcome, and each case runs on
asyncio and on trio, which must agree (the same error class, or the same value).

* PR tier: the table with only the first element of each list mutated and the odd numbers only in
  token counts; asyncio on httpx and aiohttp in turn, trio on httpx.
* Nightly: the whole table, recorded fixtures included, on every (loop, engine) pair.

Besides: the documented empty answers (no text, a finish reason that says why) succeed with
``""`` on every provider and mode, and the same answers without the reason are ``ProtocolError``s;
and NDJSON lines that arrive in one read with a malformed one reach the caller as if they had not.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness_findings import xfail_marks
from harness_mutations import scripted_cases
from harness_oracle import Case, answer_script, check_case, engines, every_pair
from harness_readers import allowed
from harness_server import (
    CLOSE,
    RawHTTPServer,
    raw_server as raw_server,  # the fixture
)
from harness_templates import PROVIDERS, TEXT, chat_template, render, templates

import llm_connectors as lc

PR_CASES = scripted_cases(templates(), full=False)


def _pr_params() -> list[Any]:
    """Each case on asyncio (httpx and aiohttp in turn) and on trio (httpx)."""
    available = engines()
    params = []
    for number, case in enumerate(PR_CASES):
        engine = available[number % len(available)]
        params.append(pytest.param(case, [("asyncio", engine), ("trio", "httpx")], id=f"{case.id}@{engine}",
                                   marks=xfail_marks(case.id, engine)))
    return params


@pytest.mark.parametrize(("case", "runs"), _pr_params())
def test_scripted_answer(case: Case, runs: list[tuple[str, str]], raw_server: RawHTTPServer,
                         caplog: pytest.LogCaptureFixture) -> None:
    check_case(case, runs, raw_server, caplog, cross_engine=True)


def _nightly_params() -> list[Any]:
    return [pytest.param(case, every_pair(), id=case.id, marks=xfail_marks(case.id))
            for case in scripted_cases(templates(fixtures=True), full=True)]


@pytest.mark.nightly
@pytest.mark.parametrize(("case", "runs"), _nightly_params())
def test_scripted_answer_every_pair(case: Case, runs: list[tuple[str, str]], raw_server: RawHTTPServer,
                                   caplog: pytest.LogCaptureFixture) -> None:
    check_case(case, runs, raw_server, caplog, cross_engine=True)


# -- documented empty answers ---------------------------------------------------------------------------------

#: A reason each provider documents for an answer without text, and what it is normalised to.
EMPTY_REASONS = {"openai": ("length", "length"), "mistral": ("length", "length"), "claude": ("max_tokens", "length"),
                 "ollama": ("length", "length"), "sample": ("max_output", "length")}


def _empty_case(provider: str, mode: str, reason: str | None) -> Case:
    template = chat_template(provider, mode, [], reason=reason)  # type: ignore[arg-type]
    name = f"{template.id}:empty-{'with' if reason else 'without'}-reason"
    return Case(name, template, answer_script(template, render(template, template.answer)),
                allowed(template, template.answer), note=f"reason {reason!r}")


def _empty_params(with_reason: bool) -> list[Any]:
    params = []
    for provider in PROVIDERS:
        for mode in ("chat", "stream"):
            case = _empty_case(provider, mode, EMPTY_REASONS[provider][0] if with_reason else None)
            params.append(pytest.param(provider, case, id=case.id, marks=xfail_marks(case.id)))
    return params


@pytest.mark.parametrize(("provider", "case"), _empty_params(with_reason=True))
def test_documented_empty_answer_succeeds(provider: str, case: Case, raw_server: RawHTTPServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """No text, and the provider's finish reason saying why: a success with ``""``, on every loop and engine."""
    for label, outcome in check_case(case, every_pair(), raw_server, caplog, cross_engine=True).items():
        assert outcome.error is None, f"{label}: {outcome.error!r}"
        assert outcome.value == "" and outcome.response.finish_reason == EMPTY_REASONS[provider][1], label
        assert outcome.response.native_finish_reason == EMPTY_REASONS[provider][0], label


@pytest.mark.parametrize(("provider", "case"), _empty_params(with_reason=False))
def test_empty_answer_without_reason_is_refused(provider: str, case: Case, raw_server: RawHTTPServer,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """No text, no tool call and no reason: a ``ProtocolError``, never ``""`` made up as an answer."""
    outcomes = check_case(case, [("asyncio", "httpx"), ("trio", "httpx")], raw_server, caplog)
    for label, outcome in outcomes.items():
        assert isinstance(outcome.error, lc.ProtocolError), f"{label}: {outcome.error!r}"


# -- NDJSON lines in one read ---------------------------------------------------------------------------------

def _one_read_case() -> Case:
    """Ollama's stream in one write (status line, headers and every line), the done line replaced by non-JSON."""
    template = chat_template("ollama", "stream")
    body = b"".join(render(template, template.answer)[:-1]) + b'{"done": true, "eval_count": NaN}\n'
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: %d\r\n" \
           b"connection: close\r\n\r\n" % len(body)
    return Case("ollama-stream:bad-line-in-one-read", template, lambda request: [head + body, CLOSE],
                allowed(template, template.answer), note="one read")


@pytest.mark.parametrize("case", [pytest.param(_one_read_case(), id="ollama-stream",
                                               marks=xfail_marks("ollama-stream:bad-line-in-one-read"))])
def test_lines_before_a_bad_one_reach_the_caller(case: Case, raw_server: RawHTTPServer,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """What reaches the caller must not depend on how the bytes were split into reads: the lines before a
    malformed one are delivered, then a ``StreamInterruptedError`` carries them, as when each line arrives
    in a read of its own (the scripted table, where such cases are compared on success/failure only)."""
    for label, outcome in check_case(case, every_pair(), raw_server, caplog).items():
        assert isinstance(outcome.error, lc.StreamInterruptedError), f"{label}: {outcome.error!r}"
        assert outcome.error.partial == TEXT, label
