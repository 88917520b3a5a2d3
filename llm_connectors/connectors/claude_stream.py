"""Reading Claude's answers: the Messages API response shape and its SSE event stream.

Both paths share the helpers here (usage, stop reasons, content blocks), so a collected
stream and the non-streaming call on the same content give the same
:class:`~llm_connectors.ChatResponse`, ``raw`` included. Wire facts: WIRE.md §1.3, §1.4, §5.

Answers are untrusted input: a response body and each stream event is checked against the
shape Anthropic documents (the shapes below; only the fields we read) before anything is read,
and the stream's events against their documented order. A wrong type, a missing field, an event
out of order or an answer with nothing in it is a ``ProtocolError`` naming the field path —
never a raw exception, and never text made up from what was sent. Blocks, deltas and events of
types we do not read are tolerated, as the API asks.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import msgspec

from ..errors import LLMConnectorError, ProtocolError
from ..stream import StreamDecoder
from ..types import ChatChunk, ReasoningBlock, ToolCall, Usage
from ..wire import jsonio as _json
from ..wire.framing import SSEEvent
from ..wire.shapes import Count, Shape, conform

__all__ = [
    "Block",
    "ClaudeMessage",
    "ClaudeStreamDecoder",
    "ContentSummary",
    "Name",
    "normalize_stop_reason",
    "parse_claude_usage",
    "read_content_blocks",
    "read_message",
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
_S = TypeVar("_S", bound=Shape)
#: An identifier or a name: non-empty text (a tool call without a name is no call).
Name = Annotated[str, msgspec.Meta(min_length=1)]


# -- the documented shapes (only the fields we read) -------------------------------------------------
# Content blocks and deltas are tagged unions on ``type``. One of a type we do not read (a server
# tool's block, a type added later) is checked only for being an object with a string ``type``;
# it is then read as the stand-in ``_Unread`` (see ``_conform_tolerant``).

class _OutputDetails(Shape):
    thinking_tokens: Count | None = None


class _Usage(Shape):
    """A message's ``usage``, or a ``message_delta``'s (cumulative; null means unchanged)."""

    input_tokens: Count | None = None
    output_tokens: Count | None = None
    cache_creation_input_tokens: Count | None = None
    cache_read_input_tokens: Count | None = None
    output_tokens_details: _OutputDetails | None = None


class _Unread(Shape, tag=""):
    """Stands in for a block or delta of a type we do not read (it stays in ``raw``)."""


class TextBlock(Shape, tag="text"):
    text: str
    citations: list[Any] | None = None  # streamed: citations_delta adds to it


class ThinkingBlock(Shape, tag="thinking"):
    thinking: str
    signature: str | None = None  # a streamed block starts without it (signature_delta brings it)


class RedactedThinkingBlock(Shape, tag="redacted_thinking"):
    data: str


class ToolUseBlock(Shape, tag="tool_use"):
    id: Name
    name: Name
    input: dict[str, Any]  # an object; streamed, ``{}`` and then input_json_delta fragments


Block = TextBlock | ThinkingBlock | RedactedThinkingBlock | ToolUseBlock | _Unread


class _MessageHead(Shape):
    """What ``message_start``'s message carries that we read."""

    id: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    usage: _Usage | None = None


class ClaudeMessage(_MessageHead, kw_only=True):
    """``POST /v1/messages`` without streaming."""

    content: list[Block]


class _TextDelta(Shape, tag="text_delta"):
    text: str


class _ThinkingDelta(Shape, tag="thinking_delta"):
    thinking: str


class _SignatureDelta(Shape, tag="signature_delta"):
    signature: str


class _InputJSONDelta(Shape, tag="input_json_delta"):
    partial_json: str


class _CitationsDelta(Shape, tag="citations_delta"):
    citation: dict[str, Any]


_Delta = _TextDelta | _ThinkingDelta | _SignatureDelta | _InputJSONDelta | _CitationsDelta | _Unread


class _StopDelta(Shape):
    stop_reason: str | None = None


class _ErrorDetail(Shape):
    type: str
    message: str


class _Typed(Shape):
    """Any stream event: an object with a ``type``."""

    type: str


class _EventShape(Shape, tag_field="type"):
    """A stream event: its ``type`` names it (and equals the SSE ``event:`` name)."""


class _MessageStart(_EventShape, tag="message_start"):
    message: _MessageHead


class _BlockStart(_EventShape, tag="content_block_start"):
    index: Count
    content_block: Block


class _BlockDelta(_EventShape, tag="content_block_delta"):
    index: Count
    delta: _Delta


class _BlockStop(_EventShape, tag="content_block_stop"):
    index: Count


class _MessageDelta(_EventShape, tag="message_delta"):
    delta: _StopDelta
    usage: _Usage | None = None


class _MessageStop(_EventShape, tag="message_stop"):
    """The end of the stream."""


class _Ping(_EventShape, tag="ping"):
    """A keep-alive, anywhere in the stream."""


class _ErrorEvent(_EventShape, tag="error"):
    error: _ErrorDetail


_StreamEvent = (_MessageStart | _BlockStart | _BlockDelta | _BlockStop | _MessageDelta | _MessageStop | _Ping
                | _ErrorEvent)
#: Decodes an event and checks it against its shape in one pass (in C). What it refuses is read
#: again, slowly, to tolerate unknown types or to say exactly what is wrong (``_recheck``).
_decode_event = msgspec.json.Decoder(_StreamEvent).decode


def _tags(union: Any) -> frozenset[str]:
    return frozenset(str(member.__struct_config__.tag) for member in typing.get_args(union)) - {""}


_BLOCK_TYPES = _tags(Block)
_DELTA_TYPES = _tags(_Delta)
_EVENT_SHAPES: dict[str, type[Shape]] = {str(e.__struct_config__.tag): e for e in typing.get_args(_StreamEvent)}
#: Per event type, the field that may hold a block or delta of a type we do not read.
_TOLERATED = {"content_block_start": ("content_block", _BLOCK_TYPES), "content_block_delta": ("delta", _DELTA_TYPES)}
_UNREAD = {"type": ""}


def _stand_in(record: Any, known: frozenset[str]) -> Any:
    """``record``, or the stand-in if it is an object whose ``type`` is text not in ``known``."""
    if isinstance(record, dict) and isinstance(record.get("type"), str) and record["type"] not in known:
        return _UNREAD
    return record


def _conform_tolerant(data: Any, shape: type[_S], key: str, known: frozenset[str], *,
                      provider: str, what: str) -> _S:
    """:func:`conform`, with records of types we do not read in ``data[key]`` tolerated.

    The first conversion is all a well-formed answer of known types costs. Only when it fails are
    unknown records replaced by the stand-in (a tagged union would refuse them and quote their
    ``type``) and the data checked again, raising with the field path if still wrong.
    """
    try:
        return msgspec.convert(data, shape)
    except msgspec.ValidationError:
        if isinstance(data, dict) and key in data:
            value = data[key]  # one block or delta, or a list of blocks
            value = [_stand_in(r, known) for r in value] if isinstance(value, list) else _stand_in(value, known)
            data = {**data, key: value}
        return conform(data, shape, provider=provider, what=what)


def read_message(data: Any, provider: str) -> ClaudeMessage:
    """A non-streaming answer, checked against its documented shape."""
    return _conform_tolerant(data, ClaudeMessage, "content", _BLOCK_TYPES, provider=provider,
                             what="chat response")


def require_answer(stop_reason: str | None, has_content: bool, provider: str, where: str) -> None:
    """An answer with no content, no tool call and no stop reason is no answer (it would read as ``''``, ``stop``).

    The documented empty answers (``max_tokens``, ``refusal``, ``end_turn`` with no content) all
    carry a stop reason.
    """
    if stop_reason is None and not has_content:
        raise ProtocolError(f"the {where} has no content, no tool call and no stop_reason", provider=provider)


# -- reading ---------------------------------------------------------------------------------------

def normalize_stop_reason(value: str | None, has_tool_calls: bool) -> str:
    """Claude's ``stop_reason`` in the normalised vocabulary (``pause_turn`` etc. -> ``other``)."""
    if value is None or value == "":
        return "tool_calls" if has_tool_calls else "stop"
    return _STOP_REASONS.get(value, "other")


def parse_claude_usage(usage: Mapping[str, Any] | None) -> Usage | None:
    """Claude usage, checked already (a message's, or a stream's merged one), normalised.

    ``input_tokens`` on the wire excludes cached tokens, so the normalised input is
    ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens`` (WIRE.md §1.3).
    """
    if usage is None:
        return None
    fresh = usage.get("input_tokens")
    cache_write = usage.get("cache_creation_input_tokens")
    cache_read = usage.get("cache_read_input_tokens")
    total_input = None
    if fresh is not None or cache_write is not None or cache_read is not None:
        total_input = (fresh or 0) + (cache_write or 0) + (cache_read or 0)
    details = usage.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if details else None
    return Usage.of(total_input, usage.get("output_tokens"), cache_read_tokens=cache_read,
                    cache_write_tokens=cache_write, reasoning_tokens=thinking)


def merge_usage(current: dict[str, Any], update: Mapping[str, Any] | None) -> None:
    """Fold a checked ``message_delta`` usage into the running one.

    The counts are cumulative: a value present in the update *replaces* the earlier one
    (never adds to it); absent or null values leave it alone (WIRE.md §1.4).
    """
    if update:
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

    def has_content(self) -> bool:
        return bool(self.tool_calls or self.reasoning_blocks or any(self.text))


def reasoning_block(block: Block) -> ReasoningBlock | None:
    """A ``thinking`` / ``redacted_thinking`` block, kept whole so it can be sent back."""
    if isinstance(block, ThinkingBlock):
        return ReasoningBlock(text=block.thinking, signature=block.signature or None)
    if isinstance(block, RedactedThinkingBlock):
        return ReasoningBlock(redacted_data=block.data)
    return None


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


def read_content_blocks(content: list[Block]) -> ContentSummary:
    """Text, thinking and tool calls of a checked ``content`` array; blocks of other types are skipped."""
    out = ContentSummary()
    for block in content:
        if isinstance(block, TextBlock):
            out.text.append(block.text)
        elif isinstance(block, ToolUseBlock):
            out.tool_calls.append(ToolCall(id=block.id, name=block.name, arguments=block.input))
        else:
            thought = reasoning_block(block)
            if thought is not None:
                out.reasoning_blocks.append(thought)
                out.reasoning.append(thought.text)
    return out


#: The blocks each delta type may extend (input_json_delta: tool_use, and server tools' blocks).
_TAKES: dict[type[Any], tuple[type[Any], ...]] = {
    _TextDelta: (TextBlock,),
    _CitationsDelta: (TextBlock,),
    _ThinkingDelta: (ThinkingBlock,),
    _SignatureDelta: (ThinkingBlock,),
    _InputJSONDelta: (ToolUseBlock, _Unread),
}


class _Block:
    """One content block being streamed: its start record (raw and checked) and the fragments so far."""

    __slots__ = ("fragments", "record", "shape", "signature")

    def __init__(self, record: dict[str, Any], shape: Block) -> None:
        self.record = record
        self.shape = shape
        self.fragments: list[str] = []
        self.signature: str | None = None


class ClaudeStreamDecoder(StreamDecoder):
    """Claude's named SSE events (WIRE.md §1.4), one stream's state.

    Text and thinking deltas are delivered as they arrive. A tool call's ``partial_json``
    fragments are collected per block ``index`` and parsed once, at ``content_block_stop``,
    where the call is delivered. Finish reason and usage (cumulative, replacing) come
    together on the last chunk, at ``message_stop``. ``ping`` and unknown events are ignored;
    an ``error`` event is raised as the typed error (``overloaded_error`` -> ``OverloadedError``).
    ``raw`` accumulates the complete message, equal to the non-streaming response body.

    Each event is decoded straight into its documented shape, which checks it in the same pass;
    the plain JSON object is decoded besides only where it is kept (``raw``). Events are also
    checked against the documented order: ``message_start`` first and once, each block index
    started once, deltas and stops only for an open block and of a kind that block takes, no
    block left open at ``message_stop``.

    Args:
        provider: The provider id chunks are reported under.
        model: The requested model (replaced by the one ``message_start`` names).
        error_from_payload: Builds the typed error for an in-band ``error`` event.
    """

    def __init__(self, provider: str, model: str, error_from_payload: ErrorFactory) -> None:
        super().__init__(provider, model)
        self._error_from_payload = error_from_payload
        self._started = False
        self._blocks: dict[int, _Block] = {}
        self._finished: dict[int, dict[str, Any]] = {}  # index -> complete block record
        self._message: dict[str, Any] = {}
        self._usage: dict[str, Any] = {}
        self._handlers: dict[type[Shape], Callable[[Any, str], ChatChunk | None]] = {
            _MessageStart: self._message_start,
            _BlockStart: self._block_start,
            _BlockDelta: self._block_delta,
            _BlockStop: self._block_stop,
            _MessageDelta: self._message_delta,
            _MessageStop: self._message_stop,
            _Ping: _skip,
            _ErrorEvent: self._error,
        }

    def feed(self, event: SSEEvent) -> ChatChunk | None:
        """Consume one SSE event; return the chunk it produced, if any."""
        data = event.data
        if self.done or not data.strip():
            return None  # after message_stop nothing counts; a blank ``data:`` is no event (WHATWG)
        try:
            checked: Shape = _decode_event(data)
        except (msgspec.DecodeError, RecursionError):
            rechecked = self._recheck(data)
            if rechecked is None:
                return None  # an event type added after this was written: skipped, as the API asks
            checked = rechecked
        return self._handlers[type(checked)](checked, data)

    def _recheck(self, data: str) -> Shape | None:
        """An event the one-pass decode refused: the checked event, ``None`` for an unknown type, or the error."""
        obj = _json.loads(data, provider=self.provider, what="stream event")
        if not isinstance(obj, dict):
            raise ProtocolError("stream event is not a JSON object", provider=self.provider)
        kind = obj.get("type")
        if not isinstance(kind, str):
            kind = conform(obj, _Typed, provider=self.provider, what="stream event").type  # raises
        shape = _EVENT_SHAPES.get(kind)
        if shape is None:
            return None
        key, known = _TOLERATED.get(kind, ("", frozenset()))
        return _conform_tolerant(obj, shape, key, known, provider=self.provider, what=f"{kind} event")

    def _object(self, data: str) -> dict[str, Any]:
        """The event as plain JSON, decoded only for what is kept whole (``raw``); it was checked already."""
        obj: dict[str, Any] = _json.loads(data, provider=self.provider, what="stream event")
        return obj

    def _fail(self, problem: str) -> ProtocolError:
        return ProtocolError(f"stream events out of order: {problem}", provider=self.provider)

    # -- message-level events -----------------------------------------------------------------

    def _message_start(self, event: _MessageStart, data: str) -> ChatChunk | None:
        if self._started:
            raise self._fail("a second message_start")
        self._started = True
        message = self._object(data)["message"]
        self._message = {**message, "content": []}
        self.id = event.message.id or self.id
        self.model = event.message.model or self.model
        merge_usage(self._usage, message.get("usage"))
        self._message["usage"] = self._usage
        self.raw = self._message
        return None

    def _require_start(self, kind: str) -> None:
        if not self._started:
            raise self._fail(f"{kind} before message_start")

    def _message_delta(self, event: _MessageDelta, data: str) -> ChatChunk | None:
        self._require_start("message_delta")
        obj = self._object(data)
        self._message.update(obj["delta"])  # stop_reason, stop_sequence, stop_details, container
        merge_usage(self._usage, obj.get("usage"))
        self._message["usage"] = self._usage
        return None

    def _message_stop(self, event: _MessageStop, data: str) -> ChatChunk | None:
        self._require_start("message_stop")
        if self._blocks:
            raise self._fail(f"message_stop with content block {min(self._blocks)} not stopped")
        native = self._message.get("stop_reason")  # checked by message_start / message_delta
        has_content = bool(self.tool_calls or self.reasoning_blocks or self._text or self._reasoning)
        require_answer(native, has_content, self.provider, "stream (ended by message_stop)")
        self.done = True
        self.raw = self._message
        self.native_finish_reason = native
        finish = normalize_stop_reason(native, bool(self.tool_calls))
        usage = parse_claude_usage(self._usage) or Usage()
        return self.chunk(finish_reason=finish, usage=usage, raw=self._object(data))

    def pending_tool_calls(self) -> list[ToolCall]:
        """The ``tool_use`` blocks still open (a stopped block's call was delivered already)."""
        return [ToolCall.from_json_text(block.shape.id, block.shape.name, "".join(block.fragments))
                for _, block in sorted(self._blocks.items()) if isinstance(block.shape, ToolUseBlock)]

    def _error(self, event: _ErrorEvent, data: str) -> ChatChunk | None:
        raise self._error_from_payload(self._object(data))

    # -- content blocks -----------------------------------------------------------------------

    def _not_open(self, kind: str, index: int) -> ProtocolError:
        return self._fail(f"{kind} for content block {index}, which is not open")

    def _block_start(self, event: _BlockStart, data: str) -> ChatChunk | None:
        self._require_start("content_block_start")
        index, shape = event.index, event.content_block
        if index in self._blocks or index in self._finished:
            raise self._fail(f"a second content_block_start for index {index}")
        block = self._blocks[index] = _Block(self._object(data)["content_block"], shape)
        if isinstance(shape, TextBlock):
            return self._on_text(block, shape.text, data)
        if isinstance(shape, ThinkingBlock):
            block.signature = shape.signature or None
            return self._on_thinking(block, shape.thinking, data)
        return None

    def _block_delta(self, event: _BlockDelta, data: str) -> ChatChunk | None:
        block = self._blocks.get(event.index)
        if block is None:
            raise self._not_open("content_block_delta", event.index)
        delta = event.delta
        if type(delta) is _TextDelta and type(block.shape) is TextBlock:  # most events: first, and quick
            return self._on_text(block, delta.text, data)
        if isinstance(delta, _Unread):
            return None  # a delta type added after this was written
        if type(block.shape) not in _TAKES[type(delta)]:
            raise self._fail(f"a {delta.__struct_config__.tag} for content block {event.index}, "
                             f"a block of type {block.shape.__struct_config__.tag or '(another)'}")
        if isinstance(delta, _ThinkingDelta):
            return self._on_thinking(block, delta.thinking, data)
        if isinstance(delta, _InputJSONDelta):
            block.fragments.append(delta.partial_json)
        elif isinstance(delta, _SignatureDelta):
            block.signature = delta.signature or None  # the whole signature: replace
        elif isinstance(delta, _CitationsDelta):
            citations = block.record.get("citations") or []
            block.record["citations"] = [*citations, delta.citation]
        return None

    def _on_text(self, block: _Block, text: str, data: str) -> ChatChunk | None:
        if not text:
            return None
        block.fragments.append(text)
        return self.chunk(delta=text, raw=self._object(data))

    def _on_thinking(self, block: _Block, text: str, data: str) -> ChatChunk | None:
        if not text:
            return None
        block.fragments.append(text)
        return self.chunk(reasoning=text, raw=self._object(data))

    def _block_stop(self, event: _BlockStop, data: str) -> ChatChunk | None:
        index = event.index
        block = self._blocks.pop(index, None)
        if block is None:
            raise self._not_open("content_block_stop", index)
        record, shape = block.record, block.shape
        call: ToolCall | None = None
        thought: ReasoningBlock | None = None
        if isinstance(shape, TextBlock):
            record["text"] = "".join(block.fragments)
        elif isinstance(shape, ThinkingBlock):
            record["thinking"] = "".join(block.fragments)
            record["signature"] = block.signature or ""
            thought = ReasoningBlock(text=record["thinking"], signature=block.signature)
        elif isinstance(shape, ToolUseBlock):
            call = tool_call_from_json(shape.id, shape.name, "".join(block.fragments))
            record["input"] = call.arguments
        elif isinstance(shape, RedactedThinkingBlock):
            thought = reasoning_block(shape)
        elif block.fragments:  # a server tool's input (server_tool_use...): only kept in ``raw``
            server_call = tool_call_from_json("", "", "".join(block.fragments))
            if server_call.parse_error is None:
                record["input"] = server_call.arguments
        self._finished[index] = record
        # ``index`` is the block's position in the final content array (WIRE.md §1.4).
        self._message["content"] = [self._finished[i] for i in sorted(self._finished)]
        if thought is not None:
            self.reasoning_blocks.append(thought)
        if call is not None:
            return self.chunk(tool_calls=[call], raw=self._object(data))
        return None


def _skip(event: Any, data: str) -> None:
    """``ping``: a keep-alive, anywhere in the stream."""
