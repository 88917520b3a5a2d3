"""Differential: the official SDKs (openai, anthropic, mistralai, ollama) as the oracle for our parsers.

Seeded random answers per provider (``stream_answers.py``: text with multi-byte and line-separator
characters, reasoning, refusals, tool calls with nested arguments) are rendered as the provider's
stream and as its non-streaming body. Each stream is served in random reads (whole, one byte per
read, random cuts) to the SDK's client and to our framer and decoder; each body to both
non-streaming parsers. Every pair must agree (``sdk_oracle.differences``) except where the SDK is
wrong, listed in :data:`SDK_FAULTS` and named in ``docs/providers/<provider>.md``; and our streamed
and non-streamed parses of every answer must be equal. Streams cut inside a tool call are compared
with the SDKs' snapshots: we raise ``StreamInterruptedError`` carrying what they keep.

The PR tier draws :data:`PR_COUNT` answers per provider (one SDK subprocess, ~15 s); the nightly
tier :data:`NIGHTLY_COUNT` from a seed that changes daily (printed on failure).
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sdk_oracle import Case, differences, ours, sdk_parse
from stream_answers import PROVIDERS, Answer, answers, reads, render

import llm_connectors as lc

FIXTURES = Path(__file__).parents[1] / "fixtures"
PR_COUNT = 25
NIGHTLY_COUNT = 300
PR_SEED = 20_000

#: Where the official SDK is wrong and we are right: (provider, mode) -> (why, does it apply to this body).
SDK_FAULTS: dict[tuple[str, str], tuple[str, Callable[[bytes], bool]]] = {
    ("ollama", "stream"): (
        "ollama splits NDJSON with httpx's iter_lines (str.splitlines), so a raw U+0085, U+2028 or U+2029 "
        "inside a JSON string cuts the line in two and json.loads fails",
        lambda body: any(ch.encode() in body for ch in "\x85\u2028\u2029")),
}


def _cases(count: int, seed: int) -> list[tuple[str, Answer, Case]]:
    out = []
    for provider in PROVIDERS:
        for answer in answers(provider, count, seed):
            stream, body = render(provider, answer)
            rng = random.Random(answer.seed)
            out.append((provider, answer, {"provider": provider, "mode": "stream", "body": stream,
                                           "reads": reads(rng, len(stream))}))
            out.append((provider, answer, {"provider": provider, "mode": "json", "body": body, "reads": None}))
    return out


def _fault(provider: str, case: Case) -> str | None:
    known = SDK_FAULTS.get((provider, case["mode"]))
    return known[0] if known and known[1](case["body"]) else None


def _parity(stream: Any, plain: Any) -> list[str]:
    if not isinstance(stream, lc.ChatResponse) or not isinstance(plain, lc.ChatResponse):
        return [f"streamed: {stream!r:.200}; not streamed: {plain!r:.200}"]
    fields = ("content", "reasoning", "reasoning_blocks", "tool_calls", "finish_reason", "native_finish_reason",
              "usage", "model", "id")
    return [f"{name}: streamed {getattr(stream, name)!r:.200} != {getattr(plain, name)!r:.200}"
            for name in fields if getattr(stream, name) != getattr(plain, name)]


def check_against_sdks(count: int, seed: int) -> None:
    cases = _cases(count, seed)
    results = sdk_parse([case for _, _, case in cases])
    problems: list[str] = []
    faults: dict[str, int] = {}
    parsed: dict[tuple[str, int, str], Any] = {}
    for (provider, answer, case), sdk in zip(cases, results, strict=True):
        mine = ours(provider, case)
        parsed[provider, answer.seed, case["mode"]] = mine
        where = f"{provider} {case['mode']} seed={answer.seed} reads={'whole' if not case['reads'] else 'split'}"
        if isinstance(mine, lc.LLMConnectorError):
            problems.append(f"{where}: we failed on a valid answer: {mine!r:.300}")
            continue
        fault = _fault(provider, case)
        if fault and "error" in sdk:
            faults[fault] = faults.get(fault, 0) + 1
            continue
        problems += [f"{where}: {p}" for p in differences(provider, mine, sdk)]
    for (provider, seed_n, mode), stream in parsed.items():
        if mode == "stream":
            problems += [f"{provider} seed={seed_n} parity: {p}"
                         for p in _parity(stream, parsed[provider, seed_n, "json"])]
    assert not problems, f"{len(problems)} differences (seed {seed}):\n" + "\n".join(problems[:30])


def test_generated_answers_agree_with_the_official_sdks() -> None:
    check_against_sdks(PR_COUNT, PR_SEED)


@pytest.mark.nightly
def test_generated_answers_agree_with_the_official_sdks_nightly() -> None:
    check_against_sdks(NIGHTLY_COUNT, int(datetime.date.today().strftime("%Y%m%d")) * 1000)


# -- recorded answers ----------------------------------------------------------------------------

RECORDED = [
    ("openai", "openai/chat_stream_refusal.sse", "openai/chat_refusal.json"),
    ("claude", "claude/stream_text.sse", "claude/message_text.json"),
    ("claude", "claude/stream_tool_use.sse", "claude/message_tool_use.json"),
    ("claude", "claude/stream_thinking.sse", "claude/message_thinking.json"),
    ("mistral", "mistral/chat_stream.sse", "mistral/chat.json"),
    ("mistral", "mistral/chat_stream_tools.sse", "mistral/chat_tool_calls.json"),
    ("mistral", "mistral/chat_stream_thinking.sse", "mistral/chat_thinking.json"),
    ("ollama", "ollama/chat_plain.ndjson", "ollama/chat_plain.json"),
    ("ollama", "ollama/chat_tools.ndjson", "ollama/chat_tools.json"),
    ("ollama", "ollama/chat_thinking.ndjson", "ollama/chat_thinking.json"),
]


def test_recorded_answers_agree_with_the_official_sdks() -> None:
    cases: list[tuple[str, Case]] = []
    for provider, stream, body in RECORDED:
        data = (FIXTURES / stream).read_bytes()
        for split in (None, [1] * len(data)):
            cases.append((provider, {"provider": provider, "mode": "stream", "body": data, "reads": split}))
        cases.append((provider, {"provider": provider, "mode": "json", "body": (FIXTURES / body).read_bytes(),
                                 "reads": None}))
    results = sdk_parse([case for _, case in cases])
    problems = [f"{provider} {case['mode']}: {p}" for (provider, case), sdk in zip(cases, results, strict=True)
                for p in differences(provider, ours(provider, case), sdk)]
    assert not problems, "\n".join(problems)


# -- streams cut inside a tool call ----------------------------------------------------------------

def _cut_inside_a_call(answer: Answer, stream: bytes, rng: random.Random) -> bytes:
    """The stream cut at an event boundary after a random fragment of its last tool call."""
    events = stream.split(b"\n\n")
    start = next(i for i, event in enumerate(events) if f'"{answer.calls[-1].id}"'.encode() in event)
    fragment = b'"input_json_delta"' if b'"input_json_delta"' in stream else b'"tool_calls"'
    last = rng.choice([i for i in range(start, len(events)) if fragment in events[i]])
    return b"\n\n".join(events[:last + 1]) + b"\n\n"


CUT_PROVIDERS = ("claude", "openai", "mistral")  # the providers whose streams carry a tool call in pieces


@pytest.fixture(scope="module")
def cut_streams() -> dict[str, list[tuple[Answer, Case, dict[str, Any]]]]:
    """Per provider, 12 answers with tool calls cut inside their last call, with the SDK's reading (one batch)."""
    cases = []
    for provider in CUT_PROVIDERS:
        for answer in [a for a in answers(provider, 60, 7_000) if a.calls][:12]:
            stream, _ = render(provider, answer)
            rng = random.Random(answer.seed)
            cut = _cut_inside_a_call(answer, stream, rng)
            cases.append((answer, {"provider": provider, "mode": "stream", "body": cut,
                                   "reads": reads(rng, len(cut))}))
    results = sdk_parse([case for _, case in cases])
    out: dict[str, list[tuple[Answer, Case, dict[str, Any]]]] = {p: [] for p in CUT_PROVIDERS}
    for (answer, case), sdk in zip(cases, results, strict=True):
        out[case["provider"]].append((answer, case, sdk))
    return out


@pytest.mark.parametrize("provider", CUT_PROVIDERS)
def test_a_stream_cut_inside_a_tool_call_keeps_what_the_sdk_keeps(
        provider: str, cut_streams: dict[str, list[tuple[Answer, Case, dict[str, Any]]]]) -> None:
    for answer, case, sdk in cut_streams[provider]:
        err = ours(provider, case)
        assert isinstance(err, lc.StreamInterruptedError), f"seed {answer.seed}: {err!r:.300}"
        assert isinstance(err.__cause__, lc.ProtocolError)  # cut before the end marker
        want = sdk["ok"]  # the SDKs return a cut stream's snapshot as if it were complete
        assert want.get("complete") is not True
        assert err.partial == want["text"] + (want["refusal"] or "")
        # Claude delivers each call at its block's end: only the open one is pending. The OpenAI
        # dialect delivers calls at [DONE]: every call begun is.
        calls = want["tool_calls"][-1:] if provider == "claude" else want["tool_calls"]
        assert [c.name for c in err.partial_tool_calls] == [c["name"] for c in calls]
        assert [c.id for c in err.partial_tool_calls] == [c["id"] for c in calls]
        cut = err.partial_tool_calls[-1]
        raw = calls[-1].get("raw", calls[-1]["arguments"])  # anthropic: its JSON buffer; openai: the text
        assert cut.raw_arguments == raw
        if cut.parse_error is None:  # the cut fell after the last fragment: the arguments are whole
            assert cut.arguments == answer.calls[-1].arguments
