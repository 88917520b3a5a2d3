"""Reading Ollama's chat answers: the NDJSON lines of ``/api/chat`` (WIRE.md §4.3, §4.4, §5.1).

A non-streamed answer is one ``done: true`` line, so both paths go through
:class:`OllamaStreamDecoder` and a collected stream gives the same
:class:`~llm_connectors.ChatResponse` as the non-streaming call. Answers are untrusted input:
each line is checked against :class:`ChatLine` (or :class:`ErrorLine`), the documented shape of
the fields we read, before anything is read from it, so a wrong type is a ``ProtocolError``
naming the field, never text made up from it. Tool-call arguments are JSON objects, and ids may
be missing on older servers: a stable id is made up for them.
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
from ..wire.shapes import Count, Shape, conform

__all__ = [
    "ChatLine",
    "ErrorLine",
    "OllamaStreamDecoder",
    "OllamaTranslator",
    "in_band_error",
    "normalize_done_reason",
    "read_tool_call",
]


# -- the documented shapes (only the fields we read) ---------------------------------------------
# From shared/specs/ollama-openapi.yaml (ChatResponse, ToolCall) and the official client's models,
# which also insist on `message`, a function `name` and `arguments` as an object.

class _Function(Shape):
    # Required, but checked by the decoder, which knows the call's place in the line (the
    # message then says "function name" and the path).
    name: str | None = None
    # An object; JSON text of one is also read, from proxies that re-encode it (read_tool_call).
    arguments: dict[str, Any] | str | None = None


class _ToolCall(Shape):
    function: _Function
    id: str | None = None


class _Message(Shape):
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None


class ChatLine(Shape):
    """One line of ``POST /api/chat``: a step of the answer, or (``done: true``) its end.

    A non-streamed answer is one ``done: true`` line. The counts are ``omitempty`` on the wire.
    """

    message: _Message
    done: bool
    model: str | None = None
    done_reason: str | None = None
    prompt_eval_count: Count | None = None
    eval_count: Count | None = None


class ErrorLine(Shape):
    """``{"error": "text"}``: a failure, inside a 200 stream or as a whole 200 answer."""

    error: str


class OllamaTranslator(Protocol):
    """What the decoder asks of its connector; a subclass's overrides are honoured."""

    @property
    def provider(self) -> str: ...

    def error_from_payload(self, payload: Any, *, status: int | None = None) -> LLMConnectorError: ...

    def parse_tool_call(self, raw: Any, index: int) -> ToolCall: ...


def in_band_error(connector: OllamaTranslator, data: Any, what: str) -> LLMConnectorError | None:
    """The typed error when ``data`` is an ``{"error": ...}`` object (``""`` or ``null`` is none)."""
    if not isinstance(data, dict) or data.get("error") in (None, ""):
        return None
    conform(data, ErrorLine, provider=connector.provider, what=what)
    return connector.error_from_payload(data)


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


class OllamaStreamDecoder(StreamDecoder):
    """Parsed NDJSON lines of ``/api/chat`` in, chunks out.

    Text, thinking and (complete) tool calls are emitted as their lines arrive; the
    ``done: true`` line ends the stream and brings the finish reason and usage together.
    A ``{"error": ...}`` line raises the typed error; a line of another shape, or an answer
    that ends with nothing in it and no ``done_reason``, raises :class:`ProtocolError`.

    Args:
        what: How errors name a line: ``"stream line"``, or ``"chat response"`` for the
            non-streamed answer.
    """

    def __init__(self, connector: OllamaTranslator, request: ChatRequest, *, what: str = "stream line") -> None:
        super().__init__(connector.provider, request.model)
        self._connector = connector
        self._what = what

    def feed(self, event: Any) -> ChatChunk | None:
        if self.done:
            return None  # the answer is complete; nothing is defined after the end marker
        if not isinstance(event, dict):
            raise ProtocolError(f"{self._what} is not a JSON object", provider=self.provider)
        error = in_band_error(self._connector, event, f"error {self._what}")
        if error is not None:
            raise error
        line = conform(event, ChatLine, provider=self.provider, what=self._what)
        if line.model:
            self.model = line.model
        message = line.message
        calls = self._tool_calls(message, event) if message.tool_calls else []
        text, thinking = message.content or "", message.thinking or ""
        if not line.done:
            return self.chunk(text, thinking, calls, raw=event)
        native = line.done_reason
        if not (native or text or thinking or calls or self._text or self._reasoning or self.tool_calls):
            # `done_reason` says why an empty answer is empty (`length`, `load`); without it there
            # is no answer at all, and '' returned as success would be made up.
            raise ProtocolError(f"the {self._what} ended (`done: true`) with no `message.content`, no "
                                f"`message.tool_calls` and no `done_reason`", provider=self.provider)
        self.done = True
        self.raw = event
        self.native_finish_reason = native
        finish = normalize_done_reason(native, bool(self.tool_calls or calls))
        usage = Usage.of(line.prompt_eval_count or 0, line.eval_count or 0)  # omitempty: absent is 0
        return self.chunk(text, thinking, calls, finish_reason=finish, usage=usage, raw=event)

    def _tool_calls(self, message: _Message, event: dict[str, Any]) -> list[ToolCall]:
        """The line's calls, each through the connector's ``parse_tool_call`` (which takes the raw call)."""
        calls = []
        for position, call in enumerate(message.tool_calls or ()):
            where = f"$.message.tool_calls[{position}].function"
            if not call.function.name:
                raise ProtocolError(f"the {self._what} has a tool call without a function name "
                                    f"(at `{where}.name`)", provider=self.provider)
            raw = event["message"]["tool_calls"][position]
            parsed = self._connector.parse_tool_call(raw, len(self.tool_calls) + position)
            if parsed.parse_error is not None:  # JSON text from a proxy, and not of an object
                raise ProtocolError(f"the {self._what} has tool-call arguments that are neither an object "
                                    f"nor the JSON text of one (at `{where}.arguments`)", provider=self.provider)
            calls.append(parsed)
        return calls


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
    if arguments is not None:  # a number or a list is not "no arguments"
        raise ProtocolError("tool-call arguments are not an object", provider=provider)
    return ToolCall(id=call_id, name=name, arguments={})


def _synthetic_id(index: int, name: str, arguments: Any) -> str:
    """A stable id for a call the server sent without one (older servers)."""
    try:
        canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        canonical = repr(arguments)
    digest = hashlib.sha256(f"{name}\0{canonical}".encode()).hexdigest()[:8]
    return f"call_{index}_{digest}"
