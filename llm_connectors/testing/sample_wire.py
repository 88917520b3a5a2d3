"""MegaChat's wire format from the server side: a fake service and the conformance kit.

:class:`MegaChatFake` is a deterministic MegaChat for :class:`~llm_connectors.testing.FakeServer`
(generate, streaming, embed, paged model list, key check), so the ``sample`` connector and
``examples/custom_provider.py`` run offline against a real socket. :class:`SampleWireKit`
scripts single replies for the conformance suite. Copy both next to your own connector.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..types import ToolCall
from .kit import Finish, WireKit
from .server import Reply, Request

__all__ = ["MegaChatFake", "SampleWireKit", "megachat_answer", "megachat_event", "megachat_failure",
           "megachat_stream"]

_STOP = {"stop": "done", "length": "max_output", "tool_calls": "tool"}
# HTTP status -> the "reason" MegaChat puts in its error body.
_REASONS = {400: "bad_request", 401: "bad_key", 403: "forbidden", 404: "unknown_model", 408: "timeout",
            409: "conflict", 413: "too_large", 422: "bad_request", 429: "rate_limited", 529: "overloaded"}


def megachat_event(name: str, data: Mapping[str, Any]) -> bytes:
    """One named SSE event (UTF-8 as sent, so multi-byte characters can straddle reads)."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


def megachat_failure(reason: str, detail: str) -> dict[str, Any]:
    """MegaChat's error body (also the data of an in-stream ``error`` event)."""
    return {"failure": {"reason": reason, "detail": detail}}


def _calls(tool_calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "tool": c.name, "args": c.arguments} for c in tool_calls]


def megachat_answer(text: str, *, model: str = "megachat-large", tool_calls: Sequence[ToolCall] = (),
                    prompt_tokens: int = 7, generated_tokens: int = 3, stop: str = "done") -> dict[str, Any]:
    """A non-streaming ``/v2/generate`` answer."""
    return {"id": "gen-fake", "model": model, "output": {"text": text, "calls": _calls(tool_calls)},
            "stop": stop, "tokens": {"prompt": prompt_tokens, "generated": generated_tokens}}


def megachat_stream(deltas: Sequence[str], *, model: str = "megachat-large",
                    tool_calls: Sequence[ToolCall] = (), prompt_tokens: int = 7, generated_tokens: int = 3,
                    stop: str = "done", end: bool = True) -> list[bytes]:
    """The events of a streamed answer: start, text per delta, a keep-alive, calls, end."""
    events = [megachat_event("start", {"id": "gen-fake", "model": model})]
    events += [megachat_event("text", {"text": d}) for d in deltas]
    events.append(b": keep-alive\n\n")
    events += [megachat_event("call", call) for call in _calls(tool_calls)]
    if end:
        events.append(megachat_event("end", {"stop": stop, "tokens": {"prompt": prompt_tokens,
                                                                      "generated": generated_tokens}}))
    return events


def fake_vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dimensions)]


class MegaChatFake:
    """A deterministic MegaChat service.

    Attributes:
        text: The answer to every chat, streamed word by word.
        key: The only API key accepted (``None`` accepts any non-empty key).
        models: Ids listed by ``/v2/models``, ``page_size`` per page.
        replies: Scripted replies, used (and removed) before the default behaviour.
    """

    def __init__(self, text: str = "Hello from MegaChat.", *, key: str | None = None, dimensions: int = 8,
                 models: Sequence[str] = ("megachat-large", "megachat-small", "megachat-embed"),
                 page_size: int = 2) -> None:
        self.text = text
        self.key = key
        self.dimensions = dimensions
        self.models = list(models)
        self.page_size = page_size
        self.replies: deque[Reply] = deque()

    def __call__(self, request: Request) -> Reply:
        if self.replies:
            return self.replies.popleft()
        given = request.headers.get("x-megachat-key", "")
        if not given or (self.key is not None and given != self.key):
            return _error(401, "bad_key", "MegaChat key missing or wrong")
        route = (request.method, request.path)
        if route == ("POST", "/v2/generate"):
            return self.generate(request.json())
        if route == ("POST", "/v2/embed"):
            body = request.json()
            vectors = [{"position": i, "values": fake_vector(t, body.get("dimensions", self.dimensions))}
                       for i, t in enumerate(body["texts"])]
            tokens = sum(len(t.split()) for t in body["texts"])
            return Reply.json({"model": body["model"], "vectors": vectors, "tokens": {"prompt": tokens}})
        if route == ("GET", "/v2/models"):
            start = int(request.query.get("cursor", "0"))
            size = min(self.page_size, int(request.query.get("limit", "100")))
            page = self.models[start:start + size]
            more = start + size < len(self.models)
            return Reply.json({"models": [{"name": m, "label": m.replace("-", " ").title(), "context": 32768}
                                          for m in page],
                               "next_cursor": str(start + size) if more else None})
        return _error(404, "no_route", f"no route {request.method} {request.path}")

    def generate(self, body: dict[str, Any]) -> Reply:
        model = body.get("model", "megachat-large")
        calls: list[ToolCall] = []
        mode = body.get("tool_mode")
        if body.get("tools") and (mode == "must" or isinstance(mode, dict)):
            name = mode["only"] if isinstance(mode, dict) else body["tools"][0]["name"]
            calls.append(ToolCall(id="call_fake1", name=name, arguments={}))
        text = "" if calls else self.text
        stop = "tool" if calls else "done"
        words = text.split(" ") if text else []
        deltas = [w if i == 0 else " " + w for i, w in enumerate(words)]
        if body.get("stream"):
            return Reply.sse(megachat_stream(deltas, model=model, tool_calls=calls, stop=stop,
                                             generated_tokens=len(words)))
        return Reply.json(megachat_answer(text, model=model, tool_calls=calls, stop=stop,
                                          generated_tokens=len(words)))


def _error(status: int, reason: str, detail: str) -> Reply:
    return Reply.json(megachat_failure(reason, detail), status, {"megachat-trace-id": "trace-fake"})


class SampleWireKit(WireKit):
    """MegaChat's wire format for the conformance suite."""

    provider_id = "sample"
    connector_path = "llm_connectors.connectors.sample:SampleConnector"
    model = "megachat-large"
    chat_path = "/v2/generate"

    def chat_reply(self, text: str, *, tool_calls: Sequence[ToolCall] = (), input_tokens: int = 7,
                   output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.json(megachat_answer(text, model=self.model, tool_calls=tool_calls,
                                          prompt_tokens=input_tokens, generated_tokens=output_tokens,
                                          stop=_STOP[finish]))

    def stream_reply(self, deltas: Sequence[str], *, tool_calls: Sequence[ToolCall] = (),
                     input_tokens: int = 7, output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.sse(megachat_stream(deltas, model=self.model, tool_calls=tool_calls,
                                         prompt_tokens=input_tokens, generated_tokens=output_tokens,
                                         stop=_STOP[finish]))

    def error_reply(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        reason = _REASONS.get(status, "internal" if status >= 500 else "bad_request")
        return Reply.json(megachat_failure(reason, message), status, headers)

    def stream_error_reply(self, deltas: Sequence[str], *, kind: Literal["overloaded", "api"] = "overloaded"
                           ) -> Reply:
        events = megachat_stream(deltas, model=self.model, end=False)
        failure = megachat_failure("overloaded", "MegaChat is busy") if kind == "overloaded" \
            else megachat_failure("internal", "MegaChat failed")
        events.append(megachat_event("error", failure))
        return Reply.sse(events)

    def embedding_reply(self, vectors: Sequence[Sequence[float]], *, input_tokens: int = 5) -> Reply:
        return Reply.json({"model": "megachat-embed", "tokens": {"prompt": input_tokens},
                           "vectors": [{"position": i, "values": list(v)} for i, v in enumerate(vectors)]})

    def models_reply(self, ids: Sequence[str]) -> Reply:
        return Reply.json({"models": [{"name": i} for i in ids], "next_cursor": None})
