"""A fake Gemini API server for :class:`~llm_connectors.testing.FakeServer`, and its wire kit.

:class:`GeminiFake` answers ``models/{model}:generateContent``, ``:streamGenerateContent``
(SSE, ``?alt=sse``), ``:batchEmbedContents`` and ``GET /models`` (paged) in the shapes of the
Gemini API reference. :class:`GeminiWireKit` is the conformance-suite kit.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from ..types import ToolCall
from .kit import Finish, WireKit
from .openai_wire import fake_embedding
from .server import Reply, Request

__all__ = ["GeminiFake", "GeminiWireKit", "gemini_error", "gemini_response", "gemini_sse"]

_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           408: "DEADLINE_EXCEEDED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
           504: "DEADLINE_EXCEEDED"}


def gemini_response(text: str = "", *, tool_calls: Sequence[ToolCall] = (), finish: str | None = "STOP",
                    input_tokens: int = 7, output_tokens: int = 3, thought: str = "",
                    model: str = "fake-model", usage: bool = True) -> dict[str, Any]:
    """One ``GenerateContentResponse`` (a whole answer, or one stream event)."""
    parts: list[dict[str, Any]] = []
    if thought:
        parts.append({"text": thought, "thought": True})
    if text:
        parts.append({"text": text})
    parts += [{"functionCall": {"id": c.id, "name": c.name, "args": dict(c.arguments)}} for c in tool_calls]
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "fake-response-1"}
    if usage:
        out["usageMetadata"] = {"promptTokenCount": input_tokens, "candidatesTokenCount": output_tokens,
                                "totalTokenCount": input_tokens + output_tokens}
    return out


def gemini_sse(events: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """SSE events as ``?alt=sse`` sends them: ``data: {json}`` and a blank line each."""
    return [b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\r\n\r\n" for e in events]


def gemini_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def _stream_events(deltas: Sequence[str], tool_calls: Sequence[ToolCall], finish: str, input_tokens: int,
                   output_tokens: int, model: str) -> list[dict[str, Any]]:
    events = [gemini_response(d, finish=None, model=model, usage=False) for d in deltas]
    last = gemini_response("", tool_calls=tool_calls, finish=finish, input_tokens=input_tokens,
                           output_tokens=output_tokens, model=model)
    return [*events, last]


class GeminiFake:
    """Deterministic Gemini handler: scripted replies first, then a word-by-word answer.

    A request offering tools whose last turn is not a function response gets a call of the
    first function; ``models`` are listed ``page_size`` at a time with ``nextPageToken``.
    """

    def __init__(self, text: str = "Hello from the fake provider.", *, dimensions: int = 8,
                 models: Sequence[str] = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"),
                 page_size: int = 2) -> None:
        self.text = text
        self.dimensions = dimensions
        self.models = list(models)
        self.page_size = page_size
        self.replies: deque[Reply] = deque()

    def __call__(self, request: Request) -> Reply:
        if self.replies:
            return self.replies.popleft()
        if request.method == "GET" and request.path == "/v1beta/models":
            start = int(request.query.get("pageToken") or 0)
            page = self.models[start:start + self.page_size]
            body: dict[str, Any] = {"models": [{"name": f"models/{m}", "displayName": m,
                                                "inputTokenLimit": 1_048_576} for m in page]}
            if start + self.page_size < len(self.models):
                body["nextPageToken"] = str(start + self.page_size)
            return Reply.json(body)
        path, _, method = request.path.partition(":")
        if request.method != "POST" or not path.startswith("/v1beta/models/"):
            return Reply.json(gemini_error(404, "not found"), 404)
        model = path.removeprefix("/v1beta/models/")
        body = request.json()
        if method == "batchEmbedContents":
            vectors = [{"values": fake_embedding(r["content"]["parts"][0]["text"], self.dimensions)}
                       for r in body["requests"]]
            return Reply.json({"embeddings": vectors})
        contents = body.get("contents") or []
        tools = body.get("tools") or []
        answered = bool(contents) and any("functionResponse" in p for p in contents[-1]["parts"])
        calls = [ToolCall(id="call_fake_0", name=tools[0]["functionDeclarations"][0]["name"])] \
            if tools and not answered else []
        text = "" if calls else self.text
        if method == "streamGenerateContent":
            words = text.split(" ") if text else []
            deltas = [w if i == 0 else " " + w for i, w in enumerate(words)]
            return Reply.sse(gemini_sse(_stream_events(deltas, calls, "STOP", 7, 3, model)))
        return Reply.json(gemini_response(text, tool_calls=calls, model=model))


class GeminiWireKit(WireKit):
    """The Gemini API's native wire format for the conformance suite."""

    provider_id = "gemini"
    connector_path = "llm_connectors.connectors.gemini:GeminiConnector"
    base_path = "/v1beta"
    # The model is in Gemini's path; this is the path of the suite's request-shape call.
    chat_path = "/v1beta/models/conformance-model-1:generateContent"
    stream_suffix: ClassVar[str] = ":streamGenerateContent"

    def same_endpoint(self, chat_path: str, stream_path: str) -> bool:
        return stream_path == chat_path.replace(":generateContent", self.stream_suffix)

    def chat_reply(self, text: str, *, tool_calls: Sequence[ToolCall] = (), input_tokens: int = 7,
                   output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.json(gemini_response(text, tool_calls=tool_calls, finish=_FINISH[finish],
                                          input_tokens=input_tokens, output_tokens=output_tokens))

    def stream_reply(self, deltas: Sequence[str], *, tool_calls: Sequence[ToolCall] = (),
                     input_tokens: int = 7, output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.sse(gemini_sse(_stream_events(deltas, tool_calls, _FINISH[finish], input_tokens,
                                                   output_tokens, self.model)))

    def error_reply(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        return Reply.json(gemini_error(status, message), status, headers)

    def stream_error_reply(self, deltas: Sequence[str], *, kind: Literal["overloaded", "api"] = "overloaded"
                           ) -> Reply:
        events: list[dict[str, Any]] = [gemini_response(d, finish=None, usage=False) for d in deltas]
        status = 503 if kind == "overloaded" else 500
        message = "The model is overloaded. Please try again later." if kind == "overloaded" else "Internal error"
        return Reply.sse(gemini_sse([*events, gemini_error(status, message)]))

    def embedding_reply(self, vectors: Sequence[Sequence[float]], *, input_tokens: int = 5) -> Reply:
        return Reply.json({"embeddings": [{"values": list(v)} for v in vectors],
                           "usageMetadata": {"promptTokenCount": input_tokens}})

    def models_reply(self, ids: Sequence[str]) -> Reply:
        return Reply.json({"models": [{"name": f"models/{i}", "displayName": i} for i in ids]})
