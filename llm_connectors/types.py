"""The provider-neutral values every connector takes and returns."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ChatChunk",
    "ChatResponse",
    "ContentPart",
    "EmbeddingResponse",
    "FinishReason",
    "Message",
    "MessageInput",
    "ModelInfo",
    "ReasoningBlock",
    "Role",
    "ToolCall",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]
#: Normalised stop reasons (OpenAI's vocabulary); the provider's own value is kept on the response.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "other"]
#: A content part: ``{"type": "text", "text": ...}`` or ``{"type": "image_url", "image_url": {"url": ...}}``.
ContentPart = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for.

    Attributes:
        id: The provider's call id; send it back as ``tool_call_id`` with the result.
        name: The function name.
        arguments: The parsed arguments (always a dict).
        raw_arguments: The JSON text as the provider sent it (``None`` when it sent an object).
        parse_error: Set when ``raw_arguments`` was not valid JSON; ``arguments`` is then ``{}``.
    """

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None
    parse_error: str | None = None

    @classmethod
    def from_json_text(cls, id: str, name: str, text: str) -> ToolCall:
        """Build a call from streamed/serialised argument text; empty text means no arguments."""
        if not text.strip():
            return cls(id=id, name=name, arguments={}, raw_arguments=text)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return cls(id=id, name=name, raw_arguments=text, parse_error=f"invalid JSON: {exc}")
        if not isinstance(value, dict):
            return cls(id=id, name=name, raw_arguments=text, parse_error="arguments are not a JSON object")
        return cls(id=id, name=name, arguments=value, raw_arguments=text)

    def arguments_json(self) -> str:
        """The arguments as JSON text, as sent back to providers that want a string."""
        if self.raw_arguments is not None and self.parse_error is None and self.raw_arguments.strip():
            return self.raw_arguments
        return json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ReasoningBlock:
    """A block of model "thinking", kept whole so it can be sent back in a later turn.

    Attributes:
        text: The visible reasoning text ("" for redacted blocks).
        signature: The provider's signature over the block (Claude), needed to send it back.
        redacted_data: Opaque payload of a redacted block (Claude ``redacted_thinking``).
    """

    text: str = ""
    signature: str | None = None
    redacted_data: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts, normalised. A field is ``None`` where the provider did not report it.

    ``input_tokens`` is the *total* input, including cached tokens (for Claude that is
    ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    @classmethod
    def of(
        cls,
        input_tokens: int | None,
        output_tokens: int | None,
        total_tokens: int | None = None,
        **details: int | None,
    ) -> Usage:
        """Build a usage record, computing the total when the provider leaves it out."""
        if total_tokens is None and input_tokens is not None and output_tokens is not None:
            total_tokens = input_tokens + output_tokens
        return cls(input_tokens, output_tokens, total_tokens, **details)

    def __add__(self, other: Usage) -> Usage:
        def add(a: int | None, b: int | None) -> int | None:
            if a is None:
                return b
            return a if b is None else a + b

        return Usage(
            add(self.input_tokens, other.input_tokens),
            add(self.output_tokens, other.output_tokens),
            add(self.total_tokens, other.total_tokens),
            add(self.cache_read_tokens, other.cache_read_tokens),
            add(self.cache_write_tokens, other.cache_write_tokens),
            add(self.reasoning_tokens, other.reasoning_tokens),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation turn. Plain dicts in the OpenAI shape are accepted everywhere too.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        content: A string, a list of content parts (text, ``image_url``), or ``None``.
        name: Optional participant or tool name.
        tool_calls: Calls made by the assistant in this turn.
        tool_call_id: For ``tool`` turns: the id of the call this result answers.
        reasoning: The assistant's reasoning blocks, sent back to providers that need them.
    """

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    reasoning: tuple[ReasoningBlock, ...] = ()

    @property
    def text(self) -> str:
        """The text of the content, with the text parts of a part list joined."""
        content = self.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")

    def to_dict(self) -> dict[str, Any]:
        """The message as a JSON-able dict in the OpenAI shape (plus ``reasoning`` if any)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments_json()}}
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.reasoning:
            out["reasoning"] = [
                {k: v for k, v in (("text", b.text), ("signature", b.signature),
                                   ("redacted_data", b.redacted_data)) if v is not None}
                for b in self.reasoning
            ]
        return out


#: What callers may pass as a message.
MessageInput = Message | Mapping[str, Any]


@dataclass(slots=True)
class ChatResponse:
    """A complete assistant answer.

    Attributes:
        content: The assistant text ("" when the model only called tools).
        finish_reason: ``stop``, ``length``, ``tool_calls``, ``content_filter`` (or ``other``/``error``).
        usage: Token counts; fields are ``None`` where unknown.
        tool_calls: Function calls the model asked for.
        provider: Id of the provider that answered (on a fallback chain: the member).
        model: The model that answered, as the provider reports it.
        raw: The provider's parsed JSON (for streams: the final accumulated state).
        id: The provider's response id.
        reasoning: The model's visible thinking text, where the provider returns it.
        reasoning_blocks: The thinking blocks with signatures, to send back in later turns.
        native_finish_reason: The provider's own stop reason (``end_turn``, ``stop_sequence``...).
    """

    content: str
    finish_reason: str | None
    usage: Usage
    tool_calls: list[ToolCall]
    provider: str
    model: str
    raw: Any = None
    id: str | None = None
    reasoning: str = ""
    reasoning_blocks: list[ReasoningBlock] = field(default_factory=list)
    native_finish_reason: str | None = None

    @property
    def message(self) -> Message:
        """This answer as an assistant :class:`Message`, ready to append to the conversation."""
        return Message(
            role="assistant",
            content=self.content or None,
            tool_calls=tuple(self.tool_calls),
            reasoning=tuple(self.reasoning_blocks),
        )


@dataclass(slots=True)
class ChatChunk:
    """One step of a streamed answer.

    Attributes:
        delta: New assistant text ("" allowed).
        reasoning: New thinking text, where the provider streams it.
        tool_calls: Tool calls that finished with this chunk (complete, arguments parsed).
        finish_reason: ``None`` until the last chunk.
        usage: ``None`` until the last chunk (if the provider reports usage).
        raw: The provider event this chunk came from (parsed JSON), for debugging.
    """

    delta: str = ""
    reasoning: str = ""
    tool_calls: Sequence[ToolCall] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: Any = None


@dataclass(slots=True)
class EmbeddingResponse:
    """Embedding vectors, one per input, in input order."""

    embeddings: list[list[float]]
    model: str
    provider: str
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model a provider offers.

    Attributes:
        id: The id to pass as ``model``.
        name: A display name (the id when the provider gives none).
        created: Creation time as a Unix timestamp, when known.
        context_length: Maximum input tokens, when the provider says.
        raw: The provider's record.
    """

    id: str
    name: str
    created: int | None = None
    context_length: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
