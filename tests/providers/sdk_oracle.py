"""Our parse and the official SDKs' parse of the same bytes, side by side.

:func:`sdk_parse` sends a batch of cases to ``tests/fixtures/sdk_stream_oracle.py`` running in the
pinned SDKs' venv (``scripts/sdk_drift.py``'s ``sdk_python()``: the SDKs are never the project's
dependencies, and openai/mistralai 3.x bring ``httpx2``), one subprocess per batch.
:func:`ours` decodes the same bytes with a connector's own framer and decoder, in the same reads,
without a transport. :func:`differences` compares the two in the SDKs' terms.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from builders import build_connector

import llm_connectors as lc
from llm_connectors.base import BaseConnector
from llm_connectors.stream import interrupted
from llm_connectors.wire import jsonio
from llm_connectors.wire.framing import NDJSONDecoder, SSEDecoder

__all__ = ["Case", "connector", "differences", "ours", "pieces", "sdk_parse"]

ROOT = Path(__file__).resolve().parents[2]
ORACLE = ROOT / "tests" / "fixtures" / "sdk_stream_oracle.py"
Case = dict[str, Any]
_CONNECTORS: dict[str, BaseConnector] = {}


def _sdk_python() -> Path:
    spec = importlib.util.spec_from_file_location("sdk_drift", ROOT / "scripts" / "sdk_drift.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    python: Path = module.sdk_python()
    return python


def sdk_parse(cases: list[Case]) -> list[dict[str, Any]]:
    """What each official SDK read from each case (``{"ok": ...}`` or ``{"error": ...}``)."""
    batch = [{**case, "body": base64.b64encode(case["body"]).decode()} for case in cases]
    result = subprocess.run([str(_sdk_python()), str(ORACLE)], input=json.dumps(batch), capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, f"the SDK oracle failed:\n{result.stderr[-3000:]}"
    out: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(out) == len(cases)
    return out


def connector(provider: str) -> BaseConnector:
    """A connector used only for its translator (nothing is sent)."""
    conn = _CONNECTORS.get(provider)
    if conn is None:
        conn = _CONNECTORS[provider] = build_connector(provider)
    return conn


def pieces(body: bytes, reads: list[int] | None) -> Iterator[bytes]:
    """``body`` in the given reads, as ``sdk_stream_oracle.pieces`` serves it to the SDKs."""
    at = 0
    for size in reads or [len(body)]:
        if at >= len(body):
            return
        yield body[at:at + size]
        at += size
    if at < len(body):
        yield body[at:]


def ours(provider: str, case: Case) -> lc.ChatResponse | lc.LLMConnectorError:
    """Our parse of a case: the answer, or the typed error it raised (a cut inside a tool call carrying it)."""
    conn = connector(provider)
    request = conn.prepare_chat(None, "hi", {}, stream=case["mode"] == "stream")
    if case["mode"] == "json":
        try:
            return conn.parse_chat_response(jsonio.loads(case["body"], provider=provider), request)
        except lc.LLMConnectorError as exc:
            return exc
    decoder = conn.create_stream_decoder(request)
    try:
        framer = SSEDecoder() if conn.stream_format == "sse" else NDJSONDecoder(provider=provider)
        for piece in pieces(case["body"], case.get("reads")):
            for event in framer.feed(piece):
                decoder.feed(event)
        for event in framer.close() or ():
            decoder.feed(event)
        decoder.finish()
        return decoder.response()
    except lc.LLMConnectorError as exc:
        return interrupted(decoder, exc)  # what HTTPSender.stream_chunks raises


def _arguments(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def differences(provider: str, mine: lc.ChatResponse | lc.LLMConnectorError, sdk: dict[str, Any]) -> list[str]:
    """How our answer differs from the SDK's reading of the same bytes (empty: they agree)."""
    if "error" in sdk or isinstance(mine, lc.LLMConnectorError):
        if "error" in sdk and isinstance(mine, lc.LLMConnectorError):
            return []
        return [f"ours: {mine!r:.300}; the SDK: {sdk.get('error') or 'success'}"]
    want = sdk["ok"]
    problems = []
    text = want["text"] + (want["refusal"] or "")
    if mine.content != text:
        problems.append(f"text {mine.content!r:.120} != the SDK's {text!r:.120}")
    if mine.reasoning != want["reasoning"]:
        problems.append(f"reasoning {mine.reasoning!r:.120} != the SDK's {want['reasoning']!r:.120}")
    if mine.native_finish_reason != want["finish"]:
        problems.append(f"finish {mine.native_finish_reason!r} != the SDK's {want['finish']!r}")
    if want["refusal"] and not want["text"] and mine.finish_reason != "content_filter":
        problems.append(f"a refusal ended with {mine.finish_reason!r}")
    if mine.usage.output_tokens != want["usage"]["out"] or mine.usage.input_tokens != want["usage"]["in"]:
        problems.append(f"usage {mine.usage} != the SDK's {want['usage']}")
    theirs = want["tool_calls"]
    if len(mine.tool_calls) != len(theirs):
        problems.append(f"{len(mine.tool_calls)} tool calls, the SDK {len(theirs)}")
    for call, other in zip(mine.tool_calls, theirs, strict=False):
        if call.name != other["name"] or call.arguments != _arguments(other["arguments"]) \
                or (other["id"] is not None and call.id != other["id"]):
            problems.append(f"tool call {call} != the SDK's {other}")
    return problems
