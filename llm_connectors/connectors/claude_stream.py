"""Reading Claude's answers: the Messages API response shape and its SSE event stream.

Both paths share the helpers here (usage, stop reasons, content blocks), so a collected
stream and the non-streaming call on the same content give the same
:class:`~llm_connectors.ChatResponse`, ``raw`` included. Wire facts: WIRE.md §1.3, §1.4, §5.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import LLMConnectorError, ProtocolError
from ..stream import StreamDecoder
from ..types import ChatChunk, ReasoningBlock, ToolCall, Usage
from ..wire import jsonio as _json
from ..wire.framing import SSEEvent

__all__ = [
    "ClaudeStreamDecoder",
    "ContentSummary",
    "normalize_stop_reason",
    "parse_claude_usage",
    "read_content_blocks",
]

# WIRE.md §5.1; the provider's own value is kept as ``native_finish_reason``.
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

ErrorFactory = Callable[[Any], LLMConnectorError]


def normalize_stop_reason(value: Any, has_tool_calls: bool) -> str:
    """Claude's ``stop_reason`` in the normalised vocabulary (``pause_turn`` etc. -> ``other``)."""
    if value is None or value == "":
        return "tool_calls" if has_tool_calls else "stop"
    return _STOP_REASONS.get(value, "other")


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_claude_usage(usage: Any) -> Usage | None:
    """Claude usage, normalised.

    ``input_tokens`` on the wire excludes cached tokens, so the normalised input is
    ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens`` (WIRE.md §1.3).
    """
    if not isinstance(usage, Mapping):
        return None
    fresh = _count(usage.get("input_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    cache_read = _count(usage.get("cache_read_input_tokens"))
    total_input = None
    if fresh is not None or cache_write is not None or cache_read is not None:
        total_input = (fresh or 0) + (cache_write or 0) + (cache_read or 0)
    details = usage.get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, Mapping) else None
    return Usage.of(total_input, _count(usage.get("output_tokens")), cache_read_tokens=cache_read,
                    cache_write_tokens=cache_write, reasoning_tokens=thinking)


def merge_usage(current: dict[str, Any], update: Any) -> None:
    """Fold a ``message_delta`` usage into the running one.

    The counts are cumulative: a value present in the update *replaces* the earlier one
    (never adds to it); absent or null values leave it alone (WIRE.md §1.4).
    """
    if isinstance(update, Mapping):
        for key, value in update.items():
            if value is not None:
                current[key] = value


@dataclass
class ContentSummary:
    """What a list of content blocks says, in our terms."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    reasoning_blocks: list[ReasoningBlock] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)


def reasoning_block(block: Mapping[str, Any]) -> ReasoningBlock | None:
    """A ``thinking`` / ``redacted_thinking`` block, kept whole so it can be sent back."""
    kind = block.get("type")
    if kind == "thinking":
        return ReasoningBlock(text=str(block.get("thinking") or ""), signature=block.get("signature") or None)
    if kind == "redacted_thinking":
        return ReasoningBlock(redacted_data=str(block.get("data") or ""))
    return None


def tool_call_from_input(block: Mapping[str, Any]) -> ToolCall:
    """A ``tool_use`` block whose ``input`` is already an object (non-streaming answers)."""
    call_id, name = str(block.get("id") or ""), str(block.get("name") or "")
    arguments = block.get("input")
    if isinstance(arguments, Mapping):
        return ToolCall(id=call_id, name=name, arguments=dict(arguments))
    if arguments is None:
        return ToolCall(id=call_id, name=name)
    return ToolCall(id=call_id, name=name, raw_arguments=json.dumps(arguments),
                    parse_error="arguments are not a JSON object")


def tool_call_from_json(call_id: str, name: str, text: str) -> ToolCall:
    """A streamed ``tool_use``: the concatenated ``partial_json``, parsed once ("" means ``{}``).

    When the text parses to an object the call equals the non-streaming one (the provider's
    final ``input`` is an object, so ``raw_arguments`` stays ``None``); otherwise the text is
    kept with the parse error.
    """
    parsed = ToolCall.from_json_text(call_id, name, text)
    if parsed.parse_error is None:
        return ToolCall(id=call_id, name=name, arguments=parsed.arguments)
    return parsed


def read_content_blocks(content: Any) -> ContentSummary:
    """Text, thinking and tool calls of a complete ``content`` array; unknown blocks are skipped."""
    out = ContentSummary()
    if not isinstance(content, list):
        return out
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            out.text.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            out.tool_calls.append(tool_call_from_input(block))
        else:
            thought = reasoning_block(block)
            if thought is not None:
                out.reasoning_blocks.append(thought)
                out.reasoning.append(thought.text)
    return out


class _Block:
    """One content block being streamed: its start record and the fragments so far."""

    __slots__ = ("fragments", "record", "signature")

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.fragments: list[str] = []
        self.signature: str | None = None

    @property
    def kind(self) -> Any:
        return self.record.get("type")


class ClaudeStreamDecoder(StreamDecoder):
    """Claude's named SSE events (WIRE.md §1.4), one stream's state.

    Text and thinking deltas are delivered as they arrive. A tool call's ``partial_json``
    fragments are collected per block ``index`` and parsed once, at ``content_block_stop``,
    where the call is delivered. Finish reason and usage (cumulative, replacing) come
    together on the last chunk, at ``message_stop``. ``ping`` and unknown events are ignored;
    an ``error`` event is raised as the typed error (``overloaded_error`` -> ``OverloadedError``).
    ``raw`` accumulates the complete message, equal to the non-streaming response body.

    Args:
        provider: The provider id chunks are reported under.
        model: The requested model (replaced by the one ``message_start`` names).
        error_from_payload: Builds the typed error for an in-band ``error`` event.
    """

    def __init__(self, provider: str, model: str, error_from_payload: ErrorFactory) -> None:
        super().__init__(provider, model)
        self._error_from_payload = error_from_payload
        self._blocks: dict[int, _Block] = {}
        self._finished: dict[int, dict[str, Any]] = {}  # index -> complete block record
        self._message: dict[str, Any] = {}
        self._usage: dict[str, Any] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], ChatChunk | None]] = {
            "message_start": self._message_start,
            "content_block_start": self._block_start,
            "content_block_delta": self._block_delta,
            "content_block_stop": self._block_stop,
            "message_delta": self._message_delta,
            "message_stop": self._message_stop,
            "error": self._error,
        }

    def feed(self, event: SSEEvent) -> ChatChunk | None:
        """Consume one SSE event; return the chunk it produced, if any."""
        if self.done or not event.data.strip():
            return None  # after message_stop nothing counts; a blank ``data:`` is no event (WHATWG)
        obj = _json.loads(event.data, provider=self.provider, what="stream event")
        if not isinstance(obj, dict):
            raise ProtocolError("stream event is not a JSON object", provider=self.provider)
        kind = obj.get("type")
        handler = self._handlers.get(kind if isinstance(kind, str) else event.event)
        # "ping" and event types added after this was written are skipped, as the API asks.
        return handler(obj) if handler is not None else None

    # -- message-level events -----------------------------------------------------------------

    def _message_start(self, obj: dict[str, Any]) -> ChatChunk | None:
        message = obj.get("message")
        if not isinstance(message, Mapping):
            raise ProtocolError("message_start has no message", provider=self.provider)
        self._message = dict(message)
        self._message["content"] = []
        self.id = message.get("id") or self.id
        self.model = message.get("model") or self.model
        merge_usage(self._usage, message.get("usage"))
        self._message["usage"] = self._usage
        self.raw = self._message
        return None

    def _message_delta(self, obj: dict[str, Any]) -> ChatChunk | None:
        delta = obj.get("delta")
        if isinstance(delta, Mapping):
            self._message.update(delta)  # stop_reason, stop_sequence, stop_details, container
        merge_usage(self._usage, obj.get("usage"))
        self._message["usage"] = self._usage
        return None

    def _message_stop(self, obj: dict[str, Any]) -> ChatChunk | None:
        self.done = True
        self.raw = self._message
        native = self._message.get("stop_reason")
        self.native_finish_reason = native if isinstance(native, str) else None
        finish = normalize_stop_reason(native, bool(self.tool_calls))
        return self.chunk(finish_reason=finish, usage=parse_claude_usage(self._usage) or Usage(), raw=obj)

    def _error(self, obj: dict[str, Any]) -> ChatChunk | None:
        raise self._error_from_payload(obj)

    # -- content blocks -----------------------------------------------------------------------

    def _index(self, obj: Mapping[str, Any]) -> int:
        index = obj.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise ProtocolError(f"{obj.get('type')} event has no integer index", provider=self.provider)
        return index

    def _block(self, obj: Mapping[str, Any]) -> _Block:
        block = self._blocks.get(self._index(obj))
        if block is None:
            raise ProtocolError(f"{obj.get('type')} for content block {obj.get('index')} that never started",
                                provider=self.provider)
        return block

    def _block_start(self, obj: dict[str, Any]) -> ChatChunk | None:
        record = obj.get("content_block")
        if not isinstance(record, Mapping):
            raise ProtocolError("content_block_start has no content_block", provider=self.provider)
        block = self._blocks[self._index(obj)] = _Block(dict(record))
        kind = block.kind
        if kind == "text":
            return self._on_text(block, record.get("text"), obj)
        if kind == "thinking":
            block.signature = record.get("signature") or None
            return self._on_thinking(block, record.get("thinking"), obj)
        return None

    def _block_delta(self, obj: dict[str, Any]) -> ChatChunk | None:
        block = self._block(obj)
        delta = obj.get("delta")
        if not isinstance(delta, Mapping):
            return None
        kind = delta.get("type")
        if kind == "text_delta":
            return self._on_text(block, delta.get("text"), obj)
        if kind == "thinking_delta":
            return self._on_thinking(block, delta.get("thinking"), obj)
        if kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if isinstance(fragment, str):
                block.fragments.append(fragment)
        elif kind == "signature_delta":
            block.signature = delta.get("signature") or None  # the whole signature: replace
        elif kind == "citations_delta":
            citations = block.record.get("citations") or []
            block.record["citations"] = [*citations, delta.get("citation")]
        return None

    def _on_text(self, block: _Block, text: Any, obj: dict[str, Any]) -> ChatChunk | None:
        if not isinstance(text, str) or not text:
            return None
        block.fragments.append(text)
        return self.chunk(delta=text, raw=obj)

    def _on_thinking(self, block: _Block, text: Any, obj: dict[str, Any]) -> ChatChunk | None:
        if not isinstance(text, str) or not text:
            return None
        block.fragments.append(text)
        return self.chunk(reasoning=text, raw=obj)

    def _block_stop(self, obj: dict[str, Any]) -> ChatChunk | None:
        index = self._index(obj)
        block = self._block(obj)
        del self._blocks[index]
        record = block.record
        kind = block.kind
        call: ToolCall | None = None
        if kind == "text":
            record["text"] = "".join(block.fragments)
        elif kind == "thinking":
            record["thinking"] = "".join(block.fragments)
            record["signature"] = block.signature or ""
        elif kind == "tool_use":
            call = tool_call_from_json(str(record.get("id") or ""), str(record.get("name") or ""),
                                       "".join(block.fragments))
            record["input"] = call.arguments
        elif block.fragments:  # a server tool's input (server_tool_use...): only kept in ``raw``
            server_call = tool_call_from_json("", "", "".join(block.fragments))
            if server_call.parse_error is None:
                record["input"] = server_call.arguments
        self._finished[index] = record
        # ``index`` is the block's position in the final content array (WIRE.md §1.4).
        self._message["content"] = [self._finished[i] for i in sorted(self._finished)]
        thought = reasoning_block(record)
        if thought is not None:
            self.reasoning_blocks.append(thought)
        if call is not None:
            return self.chunk(tool_calls=[call], raw=obj)
        return None
