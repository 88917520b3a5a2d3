"""A fake OpenAI-compatible provider for :class:`~llm_connectors.testing.FakeServer`.

It answers ``/chat/completions`` and ``/responses`` (JSON or SSE), ``/embeddings`` and ``/models`` in OpenAI's
wire format (WIRE.md §2) with deterministic content, and replays scripted replies first, so a
test can inject a 429 or a broken stream and then see the normal answer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ..types import ToolCall
from .kit import Finish, WireKit
from .openai_responses_answers import responses_json, responses_sse_events
from .server import Reply, Request

__all__ = ["OpenAIFake", "OpenAIWireKit", "openai_chat_json", "openai_sse_events", "sse"]


def sse(obj: Any) -> bytes:
    """One ``data:`` event."""
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def openai_chat_json(text: str, *, model: str = "fake-model", finish_reason: str = "stop",
                     tool_calls: Sequence[dict[str, Any]] | None = None,
                     usage: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None,
                               "refusal": None}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 7, "completion_tokens": max(1, len(text.split())),
                           "total_tokens": 7 + max(1, len(text.split()))},
    }


def openai_sse_events(deltas: Iterable[str], *, model: str = "fake-model", finish_reason: str = "stop",
                      usage: dict[str, Any] | None = None, include_usage: bool = True,
                      done: bool = True) -> list[bytes]:
    """The SSE events of a streamed answer whose text is the concatenation of ``deltas``."""
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model}
    deltas = list(deltas)
    events = [sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]})]
    events += [sse({**base, "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]})
               for d in deltas]
    events.append(sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]}))
    if include_usage:
        count = max(1, len("".join(deltas).split()))
        events.append(sse({**base, "choices": [], "usage": usage or {
            "prompt_tokens": 7, "completion_tokens": count, "total_tokens": 7 + count}}))
    if done:
        events.append(sse("[DONE]"))
    return events


def fake_embedding(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dimensions)]


class OpenAIFake:
    """Deterministic OpenAI-wire handler.

    Attributes:
        text: The answer to every chat; streamed word by word.
        dimensions: Length of each embedding vector.
        replies: Scripted replies, used (and removed) before the default behaviour.
        models: Ids listed by ``/models``.
    """

    def __init__(self, text: str = "Hello from the fake provider.", *, dimensions: int = 8,
                 models: Sequence[str] = ("fake-model", "fake-embed"), path_prefix: str = "/v1") -> None:
        self.text = text
        self.dimensions = dimensions
        self.models = list(models)
        self.replies: deque[Reply] = deque()
        self.prefix = path_prefix.rstrip("/")

    def __call__(self, request: Request) -> Reply:
        if self.replies:
            return self.replies.popleft()
        path = request.path[len(self.prefix):] if request.path.startswith(self.prefix) else request.path
        if path == "/chat/completions" and request.method == "POST":
            return self.chat(request.json())
        if path == "/responses" and request.method == "POST":
            return self.responses(request.json())
        if path == "/embeddings" and request.method == "POST":
            return self.embeddings(request.json())
        if path == "/models" and request.method == "GET":
            return Reply.json({"object": "list", "data": [
                {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}
                for m in self.models]})
        return Reply.json({"error": {"message": f"no route {request.method} {request.path}",
                                     "type": "invalid_request_error", "param": None, "code": None}}, 404)

    def words(self) -> list[str]:
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def chat(self, body: dict[str, Any]) -> Reply:
        model = body.get("model", "fake-model")
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return Reply.sse(openai_sse_events(self.words(), model=model, include_usage=include))
        return Reply.json(openai_chat_json(self.text, model=model))

    def responses(self, body: dict[str, Any]) -> Reply:
        """The Responses API (``/responses``): the same text, as a response or its event stream."""
        model = body.get("model", "fake-model")
        if body.get("stream"):
            return Reply.sse(responses_sse_events(self.words(), model=model))
        return Reply.json(responses_json(self.text, model=model))

    def embeddings(self, body: dict[str, Any]) -> Reply:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, text in enumerate(inputs):
            vector: Any = fake_embedding(text, self.dimensions)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(t.split()) for t in inputs)
        return Reply.json({"object": "list", "data": data, "model": body.get("model"),
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _wire_calls(tool_calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json()}}
            for c in tool_calls]


class OpenAIWireKit(WireKit):
    """OpenAI's wire format (WIRE.md §2) for the conformance suite."""

    provider_id = "openai"
    connector_path = "llm_connectors.connectors.openai:OpenAIConnector"
    base_path = "/v1"
    chat_path = "/v1/chat/completions"

    def _usage(self, input_tokens: int, output_tokens: int) -> dict[str, int]:
        return {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens}

    def chat_reply(self, text: str, *, tool_calls: Sequence[ToolCall] = (), input_tokens: int = 7,
                   output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.json(openai_chat_json(text, model=self.model, finish_reason=finish,
                                           tool_calls=_wire_calls(tool_calls) or None,
                                           usage=self._usage(input_tokens, output_tokens)))

    def stream_reply(self, deltas: Sequence[str], *, tool_calls: Sequence[ToolCall] = (),
                     input_tokens: int = 7, output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        events = openai_sse_events(deltas, model=self.model, finish_reason=finish,
                                   usage=self._usage(input_tokens, output_tokens))
        if tool_calls:
            base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                    "model": self.model}
            fragments = []
            for index, call in enumerate(tool_calls):
                text = call.arguments_json()
                half = len(text) // 2
                fragments.append(sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": index, "id": call.id, "type": "function",
                     "function": {"name": call.name, "arguments": text[:half]}}]}, "finish_reason": None}]}))
                fragments.append(sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": index, "function": {"arguments": text[half:]}}]}, "finish_reason": None}]}))
            finish_at = len(events) - 3  # before the finish, usage and [DONE] events
            events[finish_at:finish_at] = fragments
        return Reply.sse(events)

    def error_reply(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        kind = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                404: "invalid_request_error", 429: "requests"}.get(status, "server_error")
        return Reply.json({"error": {"message": message, "type": kind, "param": None, "code": None}},
                          status, headers)

    def stream_error_reply(self, deltas: Sequence[str], *, kind: Literal["overloaded", "api"] = "overloaded"
                           ) -> Reply:
        events = openai_sse_events(deltas, model=self.model, done=False, include_usage=False)[:-1]
        error_type = "overloaded_error" if kind == "overloaded" else "server_error"
        events.append(sse({"error": {"message": "The server is overloaded" if kind == "overloaded"
                                     else "internal error", "type": error_type, "param": None,
                                     "code": error_type}}))
        return Reply.sse(events)

    def embedding_reply(self, vectors: Sequence[Sequence[float]], *, input_tokens: int = 5) -> Reply:
        return Reply.json({"object": "list", "model": "fake-embed",
                           "data": [{"object": "embedding", "index": i, "embedding": list(v)}
                                    for i, v in enumerate(vectors)],
                           "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens}})

    def models_reply(self, ids: Sequence[str]) -> Reply:
        return Reply.json({"object": "list", "data": [
            {"id": i, "object": "model", "created": 1, "owned_by": "fake"} for i in ids]})
