"""The provider-neutral values every connector takes and returns."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    "OptionRule",
    "Price",
    "TokenCount",
    "ReasoningBlock",
    "Role",
    "ToolCall",
    "Usage",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]
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
        provider: The provider that produced the block (set by ``ChatResponse.message``). A
            signature is valid only where it was made, so connectors send a block back only to
            its own provider (or when this is ``None``: a block the caller built).
    """

    text: str = ""
    signature: str | None = None
    redacted_data: str | None = None
    provider: str | None = None


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
        role: ``system``, ``developer``, ``user``, ``assistant`` or ``tool``. ``developer`` is sent as
            such to providers that have the role (OpenAI) and as ``system`` to the others.
        content: A string, a list of content parts (``text``, ``image_url``, ``file`` for documents;
            any part may carry ``cache_control``), or ``None``.
        name: Optional participant or tool name.
        tool_calls: Calls made by the assistant in this turn.
        tool_call_id: For ``tool`` turns: the id of the call this result answers.
        reasoning: The assistant's reasoning blocks, sent back to providers that need them.
        is_error: For ``tool`` turns: the result reports a failed call (Claude's ``is_error``;
            providers without the flag get the content alone).
    """

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    reasoning: tuple[ReasoningBlock, ...] = ()
    is_error: bool = False

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
        if self.is_error:
            out["is_error"] = True
        if self.reasoning:
            out["reasoning"] = [
                {k: v for k, v in (("text", b.text), ("signature", b.signature),
                                   ("redacted_data", b.redacted_data), ("provider", b.provider)) if v is not None}
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
        provider = self.provider or None
        return Message(
            role="assistant",
            content=self.content or None,
            tool_calls=tuple(self.tool_calls),
            reasoning=tuple(b if b.provider or not provider else replace(b, provider=provider)
                            for b in self.reasoning_blocks),
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
        refusal: New refusal text (OpenAI ``delta.refusal``); it is in ``delta`` too, so text-only
            readers see it, and the stream ends with ``finish_reason="content_filter"``.
    """

    delta: str = ""
    reasoning: str = ""
    tool_calls: Sequence[ToolCall] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: Any = None
    refusal: str = ""


@dataclass(slots=True)
class EmbeddingResponse:
    """Embedding vectors, one per input, in input order."""

    embeddings: list[list[float]]
    model: str
    provider: str
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. Cache and batch prices default to the input/output price when not given."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    batch_input: float | None = None
    batch_output: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cache_read", "cache_write", "batch_input", "batch_output"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                from .errors import ConfigurationError

                raise ConfigurationError(f"Price.{name} must be a number >= 0 (USD per million tokens), got {value!r}")


@dataclass(frozen=True, slots=True)
class TokenCount:
    """How many input tokens a request would count.

    Attributes:
        input_tokens: The count.
        exact: ``True`` when the provider counted (Claude's ``count_tokens``); ``False`` for the
            local estimate (characters per token from the model catalog, 4 when it does not say).
        model: The model the count is for.
    """

    input_tokens: int
    exact: bool
    model: str


@dataclass(frozen=True, slots=True)
class OptionRule:
    """What one model does with one option, beyond the provider's generic range.

    Exactly one of ``rejected``, ``allowed``, ``minimum``/``maximum`` says the rule; ``unless``
    lifts it when another option has one of the given values (GPT-6 takes ``temperature`` only
    with ``reasoning_effort="none"``). ``why`` is shown in the error.

    Attributes:
        option: The normalised option name (``temperature``, ``tool_choice``, ``reasoning_effort``...).
        rejected: The model refuses the option whatever its value.
        allowed: The values (for ``tool_choice``: the forms ``auto``, ``none``, ``required``, ``named``) it takes.
        minimum: The smallest value it takes.
        maximum: The largest value it takes.
        unless: ``{other_option: values}``: the rule does not apply when the other option is one of these.
        why: The provider's reason, as its documentation gives it.
    """

    option: str
    rejected: bool = False
    allowed: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    unless: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    why: str = ""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model a provider offers.

    Attributes:
        id: The id to pass as ``model``.
        name: A display name (the id when the provider gives none).
        created: Creation time as a Unix timestamp, when known.
        context_length: Maximum input tokens, when the provider says.
        raw: The provider's record.
        max_output_tokens: The most tokens one answer may have (reasoning included), from the catalog.
        default_max_tokens: The ``max_tokens`` sent when the caller gives none (room for default thinking).
        input_modalities: What a request may carry: ``text``, ``image``, ``document``, ``audio``.
        reasoning_efforts: The ``reasoning_effort`` values the model takes (empty: unknown or none).
        chars_per_token: Characters per token of the model's tokenizer, for local estimates.
        api: The API the model needs (``chat`` or ``responses`` for OpenAI; ``messages`` for Claude).
        price: USD per million tokens, from the catalog.
        deprecated: The provider has deprecated the model (it still answers until ``retires_on``).
        deprecated_on: ISO date of the deprecation, when known.
        retires_on: ISO date from which the provider refuses the model.
        successor: The model the provider names as its replacement.
        aliases: Other ids for the same model.
        rules: Options the model treats differently from the provider's generic rules.
        source: Where the catalog entry comes from (documentation page, SDK version).

    Fields after ``raw`` come from the model catalog (``lc.models(provider)``); a model the provider
    lists but the catalog does not know has them empty.
    """

    id: str
    name: str
    created: int | None = None
    context_length: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    max_output_tokens: int | None = None
    default_max_tokens: int | None = None
    input_modalities: tuple[str, ...] = ()
    reasoning_efforts: tuple[str, ...] = ()
    chars_per_token: float | None = None
    api: str | None = None
    price: Price | None = None
    deprecated: bool = False
    deprecated_on: str | None = None
    retires_on: str | None = None
    successor: str | None = None
    aliases: tuple[str, ...] = ()
    rules: tuple[OptionRule, ...] = ()
    source: str | None = None
