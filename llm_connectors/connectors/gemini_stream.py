"""Reading Gemini's answers: ``GenerateContentResponse``, whole or as SSE chunks (``?alt=sse``).

A streamed answer is a series of ``GenerateContentResponse`` objects, one per ``data:`` event,
with no end marker of its own: the chunk whose candidate has a ``finishReason`` is the last.
The non-streamed answer is one such object, so both go through :class:`GeminiStreamDecoder`
and a collected stream equals the non-streamed call. Answers are checked against the shapes
below (the fields we read, from the official API reference and google-genai 3.6.1's types)
before anything is read. A blocked prompt (``promptFeedback.blockReason``) or a candidate
stopped for safety raises :class:`ContentFilterError` naming the categories.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from ..errors import ContentFilterError, LLMConnectorError, ProtocolError
from ..requests import ChatRequest
from ..stream import StreamDecoder
from ..types import ChatChunk, ReasoningBlock, ToolCall, Usage
from ..wire.framing import SSEEvent
from ..wire.jsonio import decode_json
from ..wire.shapes import Count, Shape, conform

__all__ = ["GeminiStreamDecoder", "GenerateContentResponse", "SafetyBlockError", "UsageMetadata",
           "normalize_finish_reason"]


class _FunctionCall(Shape):
    name: str
    args: dict[str, Any] | None = None
    id: str | None = None


class _Part(Shape, rename="camel"):
    text: str | None = None
    thought: bool | None = None
    thought_signature: str | None = None
    function_call: _FunctionCall | None = None


class _Content(Shape):
    parts: list[_Part] | None = None
    role: str | None = None


class _SafetyRating(Shape):
    category: str | None = None
    probability: str | None = None
    blocked: bool | None = None


class _Candidate(Shape, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None
    finish_message: str | None = None
    safety_ratings: list[_SafetyRating] | None = None


class _PromptFeedback(Shape, rename="camel"):
    block_reason: str | None = None
    safety_ratings: list[_SafetyRating] | None = None


class UsageMetadata(Shape, rename="camel"):
    prompt_token_count: Count | None = None
    candidates_token_count: Count | None = None
    cached_content_token_count: Count | None = None
    thoughts_token_count: Count | None = None
    tool_use_prompt_token_count: Count | None = None
    total_token_count: Count | None = None


class GenerateContentResponse(Shape, rename="camel"):
    candidates: list[_Candidate] | None = None
    prompt_feedback: _PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None


class SafetyBlockError(ContentFilterError):
    """A Gemini safety block: a :class:`ContentFilterError` with the harm categories it named."""


class GeminiTranslator(Protocol):
    @property
    def provider(self) -> str: ...

    def error_from_payload(self, payload: Any, *, status: int | None = None) -> LLMConnectorError: ...


#: Our finish reasons; SAFETY and its kin raise ContentFilterError instead (see _FILTERED).
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "RECITATION": "content_filter",
           "MALFORMED_FUNCTION_CALL": "error", "MALFORMED_RESPONSE": "error", "MISSING_THOUGHT_SIGNATURE": "error"}
_FILTERED = frozenset({"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                       "IMAGE_PROHIBITED_CONTENT"})


def normalize_finish_reason(native: str, has_tool_calls: bool) -> str:
    """Gemini's ``finishReason`` in our vocabulary; a turn that called functions ends with STOP."""
    if native == "STOP" and has_tool_calls:
        return "tool_calls"
    return _FINISH.get(native, "other")


def usage_of(meta: UsageMetadata) -> Usage:
    """``usageMetadata``: the prompt count includes the cached part; output counts the thoughts too."""
    thoughts = meta.thoughts_token_count
    output = (meta.candidates_token_count or 0) + (thoughts or 0)
    prompt = (meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0)
    return Usage.of(prompt, output, cache_read_tokens=meta.cached_content_token_count,
                    reasoning_tokens=thoughts)


def _categories(ratings: list[_SafetyRating] | None) -> list[str]:
    """The categories Gemini blocked on, or else rated MEDIUM or HIGH."""
    return [r.category for r in ratings or () if r.category and (r.blocked or r.probability in ("HIGH", "MEDIUM"))]


class GeminiStreamDecoder(StreamDecoder):
    """``GenerateContentResponse`` objects in (SSE events or one parsed body), chunks out.

    Args:
        what: How errors name an object: ``"stream event"`` or ``"chat response"``.
    """

    def __init__(self, connector: GeminiTranslator, request: ChatRequest, *, what: str = "stream event") -> None:
        super().__init__(connector.provider, request.model)
        self._connector = connector
        self._what = what
        self._signatures: list[str] = []
        self._usage: UsageMetadata | None = None

    def feed(self, event: Any) -> ChatChunk | None:
        if self.done:
            return None
        data = decode_json(event.data, provider=self.provider, what=self._what) \
            if isinstance(event, SSEEvent) else event
        if not isinstance(data, dict):
            raise ProtocolError(f"the {self._what} is not a JSON object", provider=self.provider)
        if "error" in data:  # an in-band error event after HTTP 200
            raise self._connector.error_from_payload(data)
        answer = conform(data, GenerateContentResponse, provider=self.provider, what=self._what)
        self.raw = data
        self.id = answer.response_id or self.id
        self.model = answer.model_version or self.model
        if answer.usage_metadata is not None:
            self._usage = answer.usage_metadata  # cumulative: the last one counts
        feedback = answer.prompt_feedback
        if feedback is not None and feedback.block_reason:
            raise self._blocked(f"the prompt was blocked ({feedback.block_reason})", feedback.safety_ratings,
                                feedback.block_reason)
        if not answer.candidates:
            return None  # a usage-only event
        candidate = answer.candidates[0]
        text, thinking, calls = self._read_parts(candidate)
        native = candidate.finish_reason
        if not native or native == "FINISH_REASON_UNSPECIFIED":
            return self.chunk(text, thinking, calls, raw=data)
        if native in _FILTERED:
            detail = f": {candidate.finish_message}" if candidate.finish_message else ""
            raise self._blocked(f"the answer was stopped for {native}{detail}", candidate.safety_ratings, native)
        self.done = True
        self.native_finish_reason = native
        finish = normalize_finish_reason(native, bool(self.tool_calls or calls))
        if not (text or thinking or calls or self._text or self.tool_calls or finish != "stop"):
            raise ProtocolError(f"the {self._what} finished with no text and no function call "
                                "(`candidates[0].content.parts`)", provider=self.provider)
        usage = usage_of(self._usage) if self._usage is not None else Usage.of(0, 0)
        chunk = self.chunk(text, thinking, calls, finish_reason=finish, usage=usage, raw=data)
        reasoning = "".join(self._reasoning)
        self.reasoning_blocks = ([ReasoningBlock(text=reasoning)] if reasoning else []) + \
            [ReasoningBlock(signature=s) for s in self._signatures]
        return chunk

    def _read_parts(self, candidate: Any) -> tuple[str, str, list[ToolCall]]:
        text: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCall] = []
        for part in (candidate.content.parts if candidate.content else None) or ():
            if part.thought_signature and (part.function_call is not None or not self._signatures):
                self._signatures.append(part.thought_signature)
            if part.function_call is not None:
                call = part.function_call
                args = call.args or {}
                call_id = call.id or _synthetic_id(len(self.tool_calls) + len(calls), call.name, args)
                calls.append(ToolCall(id=call_id, name=call.name, arguments=dict(args)))
            elif part.text:
                (thinking if part.thought else text).append(part.text)
        return "".join(text), "".join(thinking), calls

    def _blocked(self, message: str, ratings: list[_SafetyRating] | None, code: str) -> ContentFilterError:
        categories = _categories(ratings)
        shown = f"; categories: {', '.join(categories)}" if categories else ""
        return SafetyBlockError(message + shown, provider=self.provider, code=code, categories=categories)


def _synthetic_id(index: int, name: str, arguments: Any) -> str:
    """A stable id for a call without one: the same answer gives the same ids, streamed or not."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    digest = hashlib.sha256(f"{name}\0{canonical}".encode()).hexdigest()[:8]
    return f"call_{index}_{digest}"
