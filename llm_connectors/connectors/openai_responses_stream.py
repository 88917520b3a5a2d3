"""Reading OpenAI Responses answers (``POST /v1/responses``): the JSON response and its SSE event stream.

Pure translation. The answer is checked against the shapes below (the fields we read, per the API
reference and openai 3.63.0 ``types/responses``) before anything is read; a wrong type is a
``ProtocolError``. Output items: ``message`` (``output_text`` and ``refusal`` parts), ``function_call``
and ``reasoning`` (summary text, encrypted content) are read; every other item (the built-in
tools' ``web_search_call``, ``file_search_call``, ``code_interpreter_call``, ``mcp_call``...) stays in
``ChatResponse.raw``, which is the final response object in both modes.

Streaming reads ``response.created``, output text / refusal / reasoning summary deltas,
function-call argument deltas, ``response.output_item.done`` (complete calls and reasoning items),
and ends at ``response.completed`` or ``response.incomplete``; ``response.failed`` and ``error``
events raise typed errors; other events are ignored. The collected stream and the plain answer
give the same :class:`ChatResponse` (tests/providers/test_openai_responses_stream.py).
"""

from __future__ import annotations

from typing import Any

from ..errors import LLMConnectorError, ProtocolError
from ..requests import ChatRequest
from ..stream import StreamDecoder
from ..types import ChatChunk, ChatResponse, ReasoningBlock, ToolCall, Usage
from ..wire import jsonio as _json
from ..wire.framing import SSEEvent
from ..wire.shapes import Count, Shape, conform
from .openai_parse import StreamErrors
from .openai_responses import reasoning_signature

__all__ = ["ResponseObject", "ResponsesStreamDecoder", "parse_response"]

_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}
_SEPARATOR = "\n\n"  # between reasoning summary parts, in both modes


# -- the documented shapes (only the fields we read) -------------------------------------------------

class _Part(Shape):
    type: str
    text: str | None = None
    refusal: str | None = None


class _Message(Shape):
    content: list[_Part]


class _FunctionCall(Shape):
    call_id: str
    name: str
    arguments: str = ""
    id: str | None = None


class _Summary(Shape):
    text: str


class _Reasoning(Shape):
    summary: list[_Summary]
    id: str | None = None
    encrypted_content: str | None = None


class _Item(Shape):
    type: str


class _InputDetails(Shape):
    cached_tokens: Count | None = None
    cache_write_tokens: Count | None = None


class _OutputDetails(Shape):
    reasoning_tokens: Count | None = None


class _Usage(Shape):
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    total_tokens: Count | None = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _Incomplete(Shape):
    reason: str | None = None


class _Error(Shape):
    message: str | None = None
    code: str | None = None


class ResponseObject(Shape):
    """A response (``POST /responses``, and the ``response`` of the stream's lifecycle events)."""

    output: list[_Item]
    id: str | None = None
    model: str | None = None
    status: str | None = None
    usage: _Usage | None = None
    incomplete_details: _Incomplete | None = None
    error: _Error | None = None


class _Event(Shape):
    type: str


class _Delta(Shape):
    delta: str
    item_id: str | None = None
    summary_index: Count | None = None


class _ItemEvent(Shape):
    item: dict[str, Any]


class _Lifecycle(Shape):
    response: dict[str, Any]


class _ErrorEvent(Shape):
    message: str | None = None
    code: str | None = None
    param: str | None = None


# -- reading --------------------------------------------------------------------------------------------


def parse_usage(usage: _Usage | None) -> Usage:
    if usage is None:
        return Usage()
    cached = usage.input_tokens_details
    details = usage.output_tokens_details
    return Usage.of(usage.input_tokens, usage.output_tokens, usage.total_tokens,
                    cache_read_tokens=cached.cached_tokens if cached else None,
                    cache_write_tokens=cached.cache_write_tokens if cached else None,
                    reasoning_tokens=details.reasoning_tokens if details else None)


def finish_of(response: ResponseObject, *, calls: bool, refused_only: bool) -> tuple[str, str | None]:
    """``(finish_reason, native)``: incomplete_details.reason (or the status) is the native reason."""
    status = response.status
    if status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        finish = _INCOMPLETE.get(reason or "", "other")
        return finish, reason or status
    if refused_only:
        return "content_filter", status
    if status not in (None, "completed"):
        return "other", status  # cancelled, or a background response still queued / in progress
    return ("tool_calls" if calls else "stop"), status


def reasoning_block(item: dict[str, Any], provider: str) -> ReasoningBlock:
    reasoning = conform(item, _Reasoning, provider=provider, what="reasoning item")
    text = _SEPARATOR.join(s.text for s in reasoning.summary if s.text)
    return ReasoningBlock(text=text, signature=reasoning_signature(reasoning.id, reasoning.encrypted_content))


def function_call(item: dict[str, Any], provider: str, arguments: str | None = None) -> ToolCall:
    call = conform(item, _FunctionCall, provider=provider, what="function_call item")
    return ToolCall.from_json_text(call.call_id, call.name, call.arguments or arguments or "")


def failure(errors: StreamErrors, error: _Error | _ErrorEvent | None, what: str) -> LLMConnectorError:
    """The typed error of a failed response or an ``error`` event (classified by its code)."""
    if error is None:
        return ProtocolError(f"the {what} carries no error object", provider=errors.provider)
    body = {"message": error.message or what, "type": error.code, "code": error.code}
    return errors.error_from_payload({"error": {k: v for k, v in body.items() if v is not None}})


def parse_response(data: Any, request: ChatRequest, errors: StreamErrors) -> ChatResponse:
    """A ``/responses`` answer as a :class:`ChatResponse`."""
    provider = errors.provider
    if isinstance(data, dict) and data.get("error") and "output" not in data:
        raise errors.error_from_payload(data)  # an error body on a 200 (compatible servers)
    response = conform(data, ResponseObject, provider=provider, what="response")
    if response.status == "failed":
        raise failure(errors, response.error, "failed response")
    text: list[str] = []
    refusals: list[str] = []
    calls: list[ToolCall] = []
    blocks: list[ReasoningBlock] = []
    for item, shape in zip(data["output"], response.output, strict=True):
        kind = shape.type
        if kind == "message":
            for part in conform(item, _Message, provider=provider, what="message item").content:
                if part.type == "output_text":
                    text.append(part.text or "")
                elif part.type == "refusal":
                    refusals.append(part.refusal or "")
        elif kind == "function_call":
            calls.append(function_call(item, provider))
        elif kind == "reasoning":
            blocks.append(reasoning_block(item, provider))
    content = "".join(text)
    refused_only = bool(refusals) and not content
    finish, native = finish_of(response, calls=bool(calls), refused_only=refused_only)
    reasoning = _SEPARATOR.join(b.text for b in blocks if b.text)
    return ChatResponse(
        content="".join(refusals) if refused_only else content,
        finish_reason=finish,
        usage=parse_usage(response.usage),
        tool_calls=calls,
        provider=provider,
        model=response.model or request.model,
        raw=data,
        id=response.id,
        reasoning=reasoning,
        reasoning_blocks=blocks,
        native_finish_reason=native,
    )


class ResponsesStreamDecoder(StreamDecoder):
    """The Responses event stream (``event:`` + ``data:`` SSE; the JSON's ``type`` names the event)."""

    def __init__(self, errors: StreamErrors, request: ChatRequest) -> None:
        super().__init__(errors.provider, request.model)
        self._errors = errors
        self._arguments: dict[str, list[str]] = {}  # function_call item id -> argument deltas
        self._summary: tuple[str | None, int | None] | None = None  # the summary part being streamed
        self._refused = False
        self._answered = False

    def feed(self, event: SSEEvent) -> ChatChunk | None:
        if self.done:
            return None
        obj = _json.loads(event.data, provider=self.provider, what="stream event")
        kind = conform(obj, _Event, provider=self.provider, what="stream event").type
        if kind == "response.output_text.delta":
            delta = self._delta(obj).delta
            self._answered = self._answered or bool(delta)
            return self.chunk(delta, raw=obj)
        if kind == "response.reasoning_summary_text.delta":
            return self._reasoning_delta(self._delta(obj), obj)
        if kind == "response.function_call_arguments.delta":
            piece = self._delta(obj)
            self._arguments.setdefault(piece.item_id or "", []).append(piece.delta)
            return None
        if kind == "response.refusal.delta":
            delta = self._delta(obj).delta
            self._refused = True
            chunk = self.chunk(delta, raw=obj)
            if chunk is not None:
                chunk.refusal = delta  # shown apart too, as on Chat Completions
            return chunk
        if kind == "response.output_item.done":
            return self._item_done(conform(obj, _ItemEvent, provider=self.provider, what=kind).item, obj)
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._started(conform(obj, _Lifecycle, provider=self.provider, what=kind).response)
            return None
        if kind in ("response.completed", "response.incomplete"):
            return self._final(conform(obj, _Lifecycle, provider=self.provider, what=kind).response)
        if kind == "response.failed":
            data = conform(obj, _Lifecycle, provider=self.provider, what=kind).response
            response = conform(data, ResponseObject, provider=self.provider, what="failed response")
            raise failure(self._errors, response.error, "failed response")
        if kind == "error":
            raise failure(self._errors, conform(obj, _ErrorEvent, provider=self.provider, what="error event"),
                          "error event")
        return None  # content_part, annotations, built-in tool progress, events added later

    def _delta(self, obj: Any) -> _Delta:
        return conform(obj, _Delta, provider=self.provider, what="stream delta")

    def _reasoning_delta(self, piece: _Delta, obj: Any) -> ChatChunk | None:
        if not piece.delta:
            return None
        part = (piece.item_id, piece.summary_index)
        text = piece.delta
        if self._summary is not None and part != self._summary:
            text = _SEPARATOR + text  # a new summary part, joined as the plain answer joins them
        self._summary = part
        return self.chunk(reasoning=text, raw=obj)

    def _item_done(self, item: dict[str, Any], obj: Any) -> ChatChunk | None:
        kind = item.get("type")
        if kind == "function_call":
            streamed = "".join(self._arguments.pop(str(item.get("id") or ""), ()))
            return self.chunk(tool_calls=[function_call(item, self.provider, streamed)], raw=obj)
        if kind == "reasoning":
            self.reasoning_blocks.append(reasoning_block(item, self.provider))
        return None

    def _started(self, data: dict[str, Any]) -> None:
        response = conform(data, ResponseObject, provider=self.provider, what="stream response")
        self.id = response.id or self.id
        self.model = response.model or self.model

    def _final(self, data: dict[str, Any]) -> ChatChunk | None:
        response = conform(data, ResponseObject, provider=self.provider, what="final response")
        self.done = True
        self.raw = data
        self.id = response.id or self.id
        self.model = response.model or self.model
        calls: list[ToolCall] = []
        if not self.tool_calls and not self.reasoning_blocks:
            # a server that sent no output_item.done events: the final output still has everything
            for item in data.get("output") or ():
                if item.get("type") == "function_call":
                    calls.append(function_call(item, self.provider))
                elif item.get("type") == "reasoning":
                    self.reasoning_blocks.append(reasoning_block(item, self.provider))
        refused_only = self._refused and not self._answered
        finish, native = finish_of(response, calls=bool(self.tool_calls or calls), refused_only=refused_only)
        self.native_finish_reason = native
        return self.chunk(tool_calls=calls, finish_reason=finish, usage=parse_usage(response.usage))
