"""A fake Mistral for :class:`~llm_connectors.testing.FakeServer`, and Mistral's wire kit.

:class:`MistralFake` answers ``/v1/chat/completions`` (JSON or SSE), ``/v1/embeddings`` and
``/v1/models`` in Mistral's exact shapes (WIRE.md §3): usage on the final ``finish_reason``
chunk and no separate usage chunk, tool calls whole in one delta without ``type``, 9-character
tool-call ids. Like the real API it rejects unknown body fields with 422 ``extra_forbidden``
and foreign tool-call ids with 400 code 3280, so a connector that sends OpenAI-only fields
fails against it the way it would in production.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ..types import ToolCall
from .kit import Finish, WireKit
from .openai_wire import fake_embedding, sse
from .server import Reply, Request

__all__ = ["MistralFake", "MistralWireKit", "mistral_chat_json", "mistral_sse_events"]

_CHAT_ID = "6f0e3c1b2a9d4e8f8b7a6c5d4e3f2a1b"  # Mistral ids are 32 hex characters
_CREATED = 1_767_225_600
# Top-level fields of the spec's ChatCompletionRequest / EmbeddingRequest; anything else is a 422.
_CHAT_FIELDS = frozenset({
    "model", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "metadata", "messages",
    "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "n", "prediction",
    "parallel_tool_calls", "reasoning_effort", "prompt_mode", "guardrails", "prompt_cache_key",
    "service_tier", "safe_prompt",
})
# Message roles and content chunks (with their keys) of the spec; anything else is a 422.
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_CHUNK_KEYS: dict[str, frozenset[str]] = {
    "text": frozenset({"type", "text"}),
    "image_url": frozenset({"type", "image_url"}),
    "document_url": frozenset({"type", "document_url", "document_name"}),
    "file": frozenset({"type", "file_id"}),
    "thinking": frozenset({"type", "thinking", "signature", "closed"}),
}
_EMBEDDING_FIELDS = frozenset({"model", "input", "metadata", "output_dimension", "output_dtype",
                               "encoding_format"})
_MAX_EMBEDDING_INPUTS = 512


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": input_tokens, "total_tokens": input_tokens + output_tokens,
            "completion_tokens": output_tokens}


def _wire_calls(tool_calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    # Mistral omits `type` and numbers every call's `index` (WIRE.md §3.3).
    return [{"id": c.id, "function": {"name": c.name, "arguments": c.arguments_json()}, "index": i}
            for i, c in enumerate(tool_calls)]


def mistral_chat_json(text: str, *, model: str = "mistral-small-latest", finish_reason: str = "stop",
                      tool_calls: Sequence[dict[str, Any]] | None = None,
                      usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A non-streaming chat answer in Mistral's shape."""
    return {
        "id": _CHAT_ID,
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": text, "tool_calls": list(tool_calls or ())
                                 or None, "prefix": False}}],
        "usage": usage or _usage(7, max(1, len(text.split()))),
    }


def mistral_sse_events(deltas: Iterable[str], *, model: str = "mistral-small-latest",
                       finish_reason: str = "stop", usage: dict[str, int] | None = None,
                       tool_calls: Sequence[dict[str, Any]] = (), done: bool = True) -> list[bytes]:
    """The SSE events of a streamed answer whose text is the concatenation of ``deltas``.

    The last chunk carries ``finish_reason`` and ``usage`` together (and the tool calls, if
    any, whole), then ``data: [DONE]``.
    """
    base = {"id": _CHAT_ID, "object": "chat.completion.chunk", "created": _CREATED, "model": model}
    deltas = list(deltas)

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
        return sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": d}) for d in deltas]
    last: dict[str, Any] = {"content": ""}
    if tool_calls:
        last["tool_calls"] = list(tool_calls)
    count = max(1, len("".join(deltas).split()))
    events.append(chunk(last, finish_reason, usage=usage or _usage(7, count)))
    if done:
        events.append(sse("[DONE]"))
    return events


def _call_id(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:9]


class MistralFake:
    """Deterministic Mistral-wire handler, strict about requests like the real API.

    Attributes:
        text: The answer to every chat; streamed word by word.
        dimensions: Length of each embedding vector (``output_dimension`` overrides it).
        replies: Scripted replies, used (and removed) before the default behaviour.
        models: Ids listed by ``/v1/models``.
    """

    def __init__(self, text: str = "Bonjour from the fake Mistral.", *, dimensions: int = 8,
                 models: Sequence[str] = ("mistral-small-latest", "mistral-embed")) -> None:
        self.text = text
        self.dimensions = dimensions
        self.models = list(models)
        self.replies: deque[Reply] = deque()

    def __call__(self, request: Request) -> Reply:
        if self.replies:
            return self.replies.popleft()
        if request.path == "/v1/chat/completions" and request.method == "POST":
            return self.chat(request.json())
        if request.path == "/v1/embeddings" and request.method == "POST":
            return self.embeddings(request.json())
        if request.path == "/v1/models" and request.method == "GET":
            return Reply.json({"object": "list", "data": [self.model_card(m) for m in self.models]})
        return Reply.json({"detail": "Not Found"}, 404)

    def words(self) -> list[str]:
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def chat(self, body: dict[str, Any]) -> Reply:
        problem = (_extra_fields(body, _CHAT_FIELDS) or _bad_message(body.get("messages") or ())
                   or _bad_tool_call_id(body.get("messages") or ()))
        if problem is not None:
            return problem
        model = body.get("model", "mistral-small-latest")
        calls = self._forced_calls(body)
        finish = "tool_calls" if calls else "stop"
        text = "" if calls else self.text
        if body.get("stream"):
            return Reply.sse(mistral_sse_events([] if calls else self.words(), model=model,
                                                finish_reason=finish, tool_calls=calls))
        return Reply.json(mistral_chat_json(text, model=model, finish_reason=finish, tool_calls=calls))

    def _forced_calls(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A call of the named (or first) tool when ``tool_choice`` forces one."""
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        messages = body.get("messages") or [{}]
        if not tools or choice in (None, "auto", "none") or messages[-1].get("role") == "tool":
            return []
        name = choice["function"]["name"] if isinstance(choice, dict) else tools[0]["function"]["name"]
        return [{"id": _call_id(json.dumps(messages)), "function": {"name": name, "arguments": "{}"},
                 "index": 0}]

    def embeddings(self, body: dict[str, Any]) -> Reply:
        problem = _extra_fields(body, _EMBEDDING_FIELDS)
        if problem is not None:
            return problem
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if len(inputs) > _MAX_EMBEDDING_INPUTS:
            return _error(400, "Too many inputs in request, split into more batches.",
                          "invalid_request_error", "3210")
        dimensions = body.get("output_dimension") or self.dimensions
        data = [{"object": "embedding", "embedding": fake_embedding(text, dimensions), "index": index}
                for index, text in enumerate(inputs)]
        tokens = sum(len(t.split()) for t in inputs)
        return Reply.json({"id": _CHAT_ID, "object": "list", "data": data, "model": body.get("model"),
                           "usage": _usage(tokens, 0)})

    @staticmethod
    def model_card(model_id: str) -> dict[str, Any]:
        embed = "embed" in model_id
        return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "mistralai",
                "capabilities": {"completion_chat": not embed, "function_calling": not embed,
                                 "completion_fim": False, "fine_tuning": False, "vision": False,
                                 "classification": False},
                "name": model_id, "description": f"Fake {model_id}",
                "max_context_length": 8192 if embed else 131072, "aliases": [], "deprecation": None,
                "default_model_temperature": None if embed else 0.3, "type": "base"}


def _error(status: int, message: Any, error_type: str, code: str | None,
           headers: Mapping[str, str] | None = None) -> Reply:
    return Reply.json({"object": "error", "message": message, "type": error_type, "param": None,
                       "code": code}, status, headers)


def _extra_fields(body: Mapping[str, Any], allowed: frozenset[str]) -> Reply | None:
    extra = sorted(set(body) - allowed)
    if not extra:
        return None
    return Reply.json({"detail": [{"type": "extra_forbidden", "loc": ["body", name],
                                   "msg": "Extra inputs are not permitted", "input": body[name]}
                                  for name in extra]}, 422)


def _bad_message(messages: Iterable[Mapping[str, Any]]) -> Reply | None:
    """A role or content chunk the spec does not have (``developer``, ``cache_control``...): a 422."""
    for index, message in enumerate(messages):
        if message.get("role") not in _ROLES:
            return Reply.json({"detail": [{"type": "union_tag_invalid", "loc": ["body", "messages", index],
                                           "msg": f"Input tag '{message.get('role')}' found using 'role' does "
                                                  "not match any of the expected tags", "input": message}]}, 422)
        content = message.get("content")
        for number, chunk in enumerate(content if isinstance(content, list) else ()):
            keys = _CHUNK_KEYS.get(chunk.get("type"), frozenset())
            extra = sorted(set(chunk) - keys) if keys else ["type"]
            if extra:
                return Reply.json({"detail": [{"type": "extra_forbidden",
                                               "loc": ["body", "messages", index, "content", number, extra[0]],
                                               "msg": "Extra inputs are not permitted", "input": chunk}]}, 422)
    return None


def _bad_tool_call_id(messages: Iterable[Mapping[str, Any]]) -> Reply | None:
    for message in messages:
        ids = [c.get("id") for c in message.get("tool_calls") or ()]
        if message.get("role") == "tool":
            ids.append(message.get("tool_call_id"))
        for call_id in ids:
            if not (isinstance(call_id, str) and len(call_id) == 9 and call_id.isascii()
                    and call_id.isalnum()):
                return _error(400, f"Tool call id was {call_id} but must be a-z, A-Z, 0-9, with a length "
                              "of 9.", "invalid_function_call", "3280")
    return None


class MistralWireKit(WireKit):
    """Mistral's wire format (WIRE.md §3) for the conformance suite."""

    provider_id = "mistral"
    connector_path = "llm_connectors.connectors.mistral:MistralConnector"
    base_path = "/v1"
    model = "mistral-small-latest"
    chat_path = "/v1/chat/completions"

    def chat_reply(self, text: str, *, tool_calls: Sequence[ToolCall] = (), input_tokens: int = 7,
                   output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.json(mistral_chat_json(text, model=self.model, finish_reason=finish,
                                            tool_calls=_wire_calls(tool_calls),
                                            usage=_usage(input_tokens, output_tokens)))

    def stream_reply(self, deltas: Sequence[str], *, tool_calls: Sequence[ToolCall] = (),
                     input_tokens: int = 7, output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.sse(mistral_sse_events(deltas, model=self.model, finish_reason=finish,
                                            usage=_usage(input_tokens, output_tokens),
                                            tool_calls=_wire_calls(tool_calls)))

    def error_reply(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        """The body shape Mistral uses for that status (WIRE.md §3.7)."""
        if status in (401, 404):
            return Reply.json({"detail": message}, status, headers)
        if status == 422:
            return Reply.json({"detail": [{"type": "value_error", "loc": ["body"], "msg": message,
                                           "input": None}]}, status, headers)
        if status == 429:
            return _error(status, message, "rate_limited", "1300", headers)
        return _error(status, message, "invalid_request_error" if status < 500 else "internal_server_error",
                      None, headers)

    def stream_error_reply(self, deltas: Sequence[str], *, kind: Literal["overloaded", "api"] = "overloaded"
                           ) -> Reply:
        events = mistral_sse_events(deltas, model=self.model, done=False)[:-1]
        if kind == "overloaded":
            error = {"object": "error", "message": "Service tier capacity exceeded for this model.",
                     "type": "service_tier_capacity_exceeded", "param": None, "code": "3505"}
        else:
            error = {"object": "error", "message": "Internal server error", "type": "internal_server_error",
                     "param": None, "code": None}
        events.append(sse(error))
        return Reply.sse(events)

    def embedding_reply(self, vectors: Sequence[Sequence[float]], *, input_tokens: int = 5) -> Reply:
        return Reply.json({"id": _CHAT_ID, "object": "list", "model": "mistral-embed",
                           "data": [{"object": "embedding", "embedding": list(v), "index": i}
                                    for i, v in enumerate(vectors)],
                           "usage": _usage(input_tokens, 0)})

    def models_reply(self, ids: Sequence[str]) -> Reply:
        return Reply.json({"object": "list", "data": [MistralFake.model_card(i) for i in ids]})
