"""Reading Ollama's chat answers: the NDJSON lines of ``/api/chat`` (WIRE.md §4.3, §4.4, §5.1).

A non-streamed answer is one ``done: true`` line, so both paths go through
:class:`OllamaStreamDecoder` and a collected stream gives the same
:class:`~llm_connectors.ChatResponse` as the non-streaming call. Tool-call arguments are JSON
objects, and ids may be missing on older servers: a stable id is made up for them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import LLMConnectorError, ProtocolError
from ..requests import ChatRequest
from ..stream import StreamDecoder
from ..types import ChatChunk, ToolCall, Usage

__all__ = [
    "OllamaStreamDecoder",
    "OllamaTranslator",
    "count_or_zero",
    "normalize_done_reason",
    "ollama_usage",
    "read_tool_call",
]


class OllamaTranslator(Protocol):
    """What the decoder asks of its connector; a subclass's overrides are honoured."""

    @property
    def provider(self) -> str: ...

    def error_from_payload(self, payload: Any, *, status: int | None = None) -> LLMConnectorError: ...

    def parse_tool_call(self, raw: Any, index: int) -> ToolCall: ...


def normalize_done_reason(native: Any, has_tool_calls: bool) -> str:
    """Ollama's ``done_reason`` in our vocabulary (WIRE.md §5.1).

    A turn that called tools ends with ``stop`` (there is no ``tool_calls`` reason), and an
    empty or absent reason with tool calls is read the same way.
    """
    if native in ("stop", "", None) and has_tool_calls:
        return "tool_calls"
    if native in ("stop", "length"):
        return str(native)
    return "other"  # load, unload, "", and whatever a newer server invents


def ollama_usage(data: Mapping[str, Any]) -> Usage:
    """Eval counts as usage; the counts are ``omitempty`` on the wire, so absent means 0."""
    return Usage.of(count_or_zero(data.get("prompt_eval_count")), count_or_zero(data.get("eval_count")))


def count_or_zero(value: Any) -> int:
    """A count from the wire; 0 when absent or not a non-negative integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class OllamaStreamDecoder(StreamDecoder):
    """Parsed NDJSON lines of ``/api/chat`` in, chunks out.

    Text, thinking and (complete) tool calls are emitted as their lines arrive; the
    ``done: true`` line ends the stream and brings the finish reason and usage together.
    A ``{"error": ...}`` line raises the typed error.
    """

    def __init__(self, connector: OllamaTranslator, request: ChatRequest) -> None:
        super().__init__(connector.provider, request.model)
        self._connector = connector

    def feed(self, event: Any) -> ChatChunk | None:
        if self.done:
            return None  # the answer is complete; nothing is defined after the end marker
        if not isinstance(event, dict):
            raise ProtocolError("stream line is not a JSON object", provider=self.provider)
        if event.get("error") not in (None, ""):
            raise self._connector.error_from_payload(event)
        model = event.get("model")
        if isinstance(model, str) and model:
            self.model = model
        message = event.get("message")
        if not isinstance(message, Mapping):
            message = {}
        calls = [self._connector.parse_tool_call(raw, len(self.tool_calls) + i)
                 for i, raw in enumerate(message.get("tool_calls") or ())]
        text, thinking = _text(message.get("content")), _text(message.get("thinking"))
        if event.get("done") is not True:
            return self.chunk(text, thinking, calls, raw=event)
        self.done = True
        self.raw = event
        native = event.get("done_reason")
        self.native_finish_reason = native if isinstance(native, str) else None
        finish = normalize_done_reason(native, bool(self.tool_calls or calls))
        return self.chunk(text, thinking, calls, finish_reason=finish, usage=ollama_usage(event), raw=event)


def read_tool_call(raw: Any, index: int, provider: str) -> ToolCall:
    """One complete tool call; arguments are an object, the id is synthesised when missing.

    ``index`` counts the calls of the whole answer, so the same answer gives the same ids
    whether streamed or not.
    """
    function = raw.get("function") if isinstance(raw, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(name, str) or not name:
        raise ProtocolError("tool call without a function name", provider=provider)
    arguments = function.get("arguments")
    call_id = raw.get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = _synthetic_id(index, name, arguments)
    if isinstance(arguments, Mapping):
        return ToolCall(id=call_id, name=name, arguments=dict(arguments))
    if isinstance(arguments, str):  # not Ollama's shape, but proxies re-encode
        return ToolCall.from_json_text(call_id, name, arguments)
    return ToolCall(id=call_id, name=name, arguments={})


def _synthetic_id(index: int, name: str, arguments: Any) -> str:
    """A stable id for a call the server sent without one (older servers)."""
    try:
        canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        canonical = repr(arguments)
    digest = hashlib.sha256(f"{name}\0{canonical}".encode()).hexdigest()[:8]
    return f"call_{index}_{digest}"
