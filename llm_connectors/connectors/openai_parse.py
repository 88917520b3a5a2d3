"""Reading answers in the OpenAI Chat Completions dialect: the JSON response's parts and the SSE stream.

Pure translation, shared by OpenAI, Mistral and every compatible server: the documented shapes of
the answers (checked before anything is read: a wrong type is a ``ProtocolError`` naming the field,
never text made up from it), finish reasons, usage, content parts (text and reasoning), and
:class:`OpenAIStreamDecoder` for ``data:`` chunks. Wire facts: WIRE.md §2.4 (streaming) and §5
(normalisation); the shapes follow the OpenAPI document in ``shared/specs``, keeping only the
fields we read, and allow what compatible servers (Mistral, vLLM, llama.cpp) send besides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from msgspec import Meta

from ..errors import InvalidRequestError, LLMConnectorError, ProtocolError
from ..requests import ChatRequest
from ..stream import StreamDecoder
from ..types import ChatChunk, ReasoningBlock, ToolCall, Usage
from ..wire import jsonio as _json
from ..wire.framing import SSEEvent
from ..wire.shapes import Count, Shape, conform

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "EmbeddingList",
    "ModelList",
    "OpenAIStreamDecoder",
    "check_one_choice",
    "first_choice",
    "normalize_finish_reason",
    "parse_openai_usage",
    "reasoning_field",
    "split_content",
    "thinking_blocks",
    "thinking_text",
]

_FINISH = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}


# -- the documented shapes (only the fields we read) -------------------------------------------------

class _TextPart(Shape):
    type: str | None = None
    text: str | None = None


class _ContentPart(Shape):
    """A content chunk: ``text``, or ``thinking`` (Mistral's reasoning models) as text or text parts,
    with the ``signature`` that lets the block be sent back in a later turn."""

    type: str | None = None
    text: str | None = None
    thinking: str | list[_TextPart] | None = None
    signature: str | None = None


#: Message content: text, or a list of content chunks.
Content = str | list[_ContentPart] | None


class _Function(Shape):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None  # JSON text; some servers send the object itself


class _ToolCall(Shape):
    function: _Function
    id: str | None = None


class _ToolCallFragment(Shape):
    index: Count | None = None
    id: str | None = None
    function: _Function | None = None


class _Message(Shape):
    content: Content = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(Shape):
    message: _Message
    finish_reason: str | None = None
    index: Count | None = None


class _PromptDetails(Shape):
    cached_tokens: Count | None = None
    cache_write_tokens: Count | None = None


class _CompletionDetails(Shape):
    reasoning_tokens: Count | None = None


class _Usage(Shape):
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    total_tokens: Count | None = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class ChatCompletion(Shape):
    """``POST /chat/completions`` without streaming; at least one choice."""

    choices: Annotated[list[_Choice], Meta(min_length=1)]
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None


class _Delta(Shape):
    content: Content = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCallFragment] | None = None


class _ChunkChoice(Shape):
    delta: _Delta | None = None
    finish_reason: str | None = None
    index: Count | None = None


class ChatCompletionChunk(Shape):
    """One ``data:`` event of a stream (``choices`` may be empty: the usage-only last chunk)."""

    id: str | None = None
    model: str | None = None
    choices: list[_ChunkChoice] | None = None
    usage: _Usage | None = None


class _Embedding(Shape):
    embedding: Any  # floats or base64 text; checked by the connector, which knows both forms
    index: Count | None = None


class EmbeddingList(Shape):
    """``POST /embeddings``."""

    data: list[_Embedding]
    model: str | None = None
    usage: _Usage | None = None


class _Model(Shape):
    id: str
    name: str | None = None
    created: Count | None = None
    max_context_length: Count | None = None
    context_length: Count | None = None


class ModelList(Shape):
    """``GET /models``."""

    data: list[_Model]


class StreamErrors(Protocol):
    """What a decoder needs from its connector: the provider id and how an in-stream error reads."""

    provider: str

    def error_from_payload(self, payload: Any, *, status: int | None = None) -> LLMConnectorError: ...


def check_one_choice(extra: Mapping[str, Any] | None, provider: str) -> None:
    """Refuse ``n`` > 1 in ``extra`` / ``provider_options`` before any I/O.

    A call returns one answer; with several choices a stream's chunks would belong to different
    answers (and a plain answer would drop all but one, at the price of all).
    """
    n = extra.get("n") if extra else None
    if n is None or (type(n) is int and n == 1):
        return
    raise InvalidRequestError(
        f"option 'n' (in extra/provider_options) asks for {str(n)[:20]} choices; llm-connectors returns one "
        "answer per call. Drop 'n' and make that many calls (asyncio.gather / anyio task group) instead",
        provider=provider, code="n")


def first_choice(choices: list[Any]) -> Any:
    """The choice with ``index`` 0 (or none given), the only one asked for; ``None`` if absent.

    Routing by ``index`` keeps another choice's chunks (a server that ignored ``n``) out of the answer.
    """
    for choice in choices:
        if choice.get("index") in (0, None):
            return choice
    return None


def normalize_finish_reason(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _FINISH.get(value, "other")


def parse_openai_usage(usage: Any) -> Usage | None:
    """OpenAI-shaped usage (``prompt_tokens`` includes cached tokens, WIRE.md §5.2)."""
    if not isinstance(usage, Mapping):
        return None
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    return Usage.of(
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        usage.get("total_tokens"),
        cache_read_tokens=prompt.get("cached_tokens") if isinstance(prompt, Mapping) else None,
        cache_write_tokens=prompt.get("cache_write_tokens") if isinstance(prompt, Mapping) else None,
        reasoning_tokens=completion.get("reasoning_tokens") if isinstance(completion, Mapping) else None,
    )


def split_content(content: Any) -> tuple[str, str]:
    """(text, reasoning) from a string or a list of content chunks (Mistral's reasoning models)."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    if not isinstance(content, list):
        return str(content), ""
    text: list[str] = []
    thinking: list[str] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text":
            text.append(str(part.get("text") or ""))
        elif kind == "thinking":
            thinking.append(thinking_text(part))
    return "".join(text), "".join(thinking)


def thinking_text(part: Mapping[str, Any]) -> str:
    """The text of one ``thinking`` chunk (its text parts joined; reference chunks carry none)."""
    inner = part.get("thinking")
    if isinstance(inner, list):
        return "".join(str(p.get("text") or "") for p in inner if isinstance(p, Mapping))
    return inner if isinstance(inner, str) else ""


def thinking_blocks(content: Any) -> list[ReasoningBlock]:
    """One :class:`ReasoningBlock` per ``thinking`` chunk, with its ``signature`` (Mistral's ThinkChunk),
    so the blocks can be sent back as they came."""
    if not isinstance(content, list):
        return []
    blocks = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "thinking":
            signature = part.get("signature")
            blocks.append(ReasoningBlock(text=thinking_text(part),
                                         signature=signature if isinstance(signature, str) and signature else None))
    return blocks


def reasoning_field(message: Mapping[str, Any]) -> str:
    value = message.get("reasoning_content") or message.get("reasoning")
    return value if isinstance(value, str) else ""


class OpenAIStreamDecoder(StreamDecoder):
    """``data:``-only SSE chunks ending in ``data: [DONE]`` (WIRE.md §2.4).

    Tool-call fragments are keyed by ``index`` and parsed once at the end; finish reason and
    usage (which may come in a later ``choices: []`` chunk) are delivered together on the last
    chunk, at ``[DONE]``. A streamed ``delta.refusal`` is text like the non-streaming
    ``message.refusal``: it is delivered as ``delta`` and, when the answer has no other text, the
    finish reason is ``content_filter`` (a refusal must not look like an empty ``stop``).
    """

    def __init__(self, connector: StreamErrors, request: ChatRequest) -> None:
        super().__init__(connector.provider, request.model)
        self._connector = connector
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, [fragments] | dict]
        self._finish: Any = None
        self._usage: Usage | None = None
        self._refused = False  # a `delta.refusal` came
        self._answered = False  # some `delta.content` text came

    def feed(self, event: SSEEvent) -> ChatChunk | None:
        data = event.data
        if data.startswith("[DONE]"):
            self.done = True
            return self._final()
        if self.done:
            return None
        obj = _json.loads(data, provider=self.provider, what="stream event")
        if not isinstance(obj, dict):
            raise ProtocolError("stream event is not a JSON object", provider=self.provider)
        if obj.get("error"):
            raise self._connector.error_from_payload(obj)
        conform(obj, ChatCompletionChunk, provider=self.provider, what="stream event")
        if self.id is None:
            self.id = obj.get("id")
            self.model = obj.get("model") or self.model
        self.raw = obj
        usage = obj.get("usage")
        if usage:
            self._usage = parse_openai_usage(usage)
        choices = obj.get("choices")
        if not choices:
            return None
        choice = choices[0]
        if len(choices) > 1 or choice.get("index") not in (0, None):  # route by index (rare: n was ignored)
            choice = first_choice(choices)
            if choice is None:
                return None
        delta = choice.get("delta") or {}
        content = delta.get("content")
        text = ""
        reasoning = ""
        if content:
            if isinstance(content, str):
                text = content
            else:
                text, reasoning = split_content(content)
        more = delta.get("reasoning_content") or delta.get("reasoning")
        if more and isinstance(more, str):
            reasoning += more
        if text:
            self._answered = True
        refusal = delta.get("refusal")
        if refusal:
            self._refused = True
            text += refusal
        self.on_content(content)
        calls = delta.get("tool_calls")
        if calls:
            self._add_call_fragments(calls)
        finish = choice.get("finish_reason")
        if finish:
            self._finish = finish
        if text or reasoning:
            chunk = self.chunk(text, reasoning, raw=obj)
            if chunk is not None and refusal and isinstance(refusal, str):
                chunk.refusal = refusal  # shown apart too, for a UI that renders refusals differently
            return chunk
        return None

    def on_content(self, content: Any) -> None:
        """Hook: the raw ``delta.content`` of each event (Mistral keeps its thinking blocks from it)."""

    def _add_call_fragments(self, calls: list[Any]) -> None:
        for position, fragment in enumerate(calls):
            index = fragment.get("index", position)
            entry = self._calls.get(index)
            if entry is None:
                entry = self._calls[index] = [None, "", []]
            if fragment.get("id"):
                entry[0] = fragment["id"]
            function = fragment.get("function") or {}
            if function.get("name") and not entry[1]:
                entry[1] = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                entry[2].append(arguments)
            elif isinstance(arguments, Mapping):  # servers that send complete objects
                entry[2] = dict(arguments)

    def _built_calls(self) -> list[ToolCall]:
        calls = []
        for index in sorted(self._calls):
            call_id, name, arguments = self._calls[index]
            call_id = call_id or f"call_{index}"
            if isinstance(arguments, dict):
                calls.append(ToolCall(id=call_id, name=name, arguments=arguments))
            else:
                calls.append(ToolCall.from_json_text(call_id, name, "".join(arguments)))
        return calls

    def pending_tool_calls(self) -> list[ToolCall]:
        """The calls gathered so far: none is delivered before ``[DONE]``."""
        return [] if self.done else self._built_calls()

    def _final(self) -> ChatChunk | None:
        calls = self._built_calls()
        if self._finish is None and not (calls or self._text or self._reasoning):
            raise ProtocolError("the stream ended (data: [DONE]) with no text, no tool call and no finish reason",
                                provider=self.provider)
        self.native_finish_reason = self._finish
        finish = normalize_finish_reason(self._finish) or ("tool_calls" if calls else "stop")
        if self._refused and not self._answered:
            finish = "content_filter"  # as parse_chat_response does with `message.refusal`
        return self.chunk(tool_calls=calls, finish_reason=finish, usage=self._usage or Usage())


