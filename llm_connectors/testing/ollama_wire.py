"""A fake Ollama server (native API) for :class:`~llm_connectors.testing.FakeServer`.

:class:`OllamaFake` answers ``/api/chat`` (one JSON object, or NDJSON when ``stream`` is true
or absent, as the real server defaults to streaming), ``/api/embed``, ``/api/tags`` and
``/api/version`` in Ollama's wire format (WIRE.md §4) with deterministic content, and replays
scripted replies first. :class:`OllamaWireKit` is the conformance-suite kit.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..types import ToolCall
from .kit import Finish, WireKit
from .openai_wire import fake_embedding
from .server import Reply, Request

__all__ = ["OllamaFake", "OllamaWireKit", "ndjson", "ollama_chat_json", "ollama_chat_lines"]

CREATED_AT = "2024-07-22T20:33:28.123456789Z"
BUSY = "server busy, please try again.  maximum pending requests exceeded"
_DONE_REASON = {"stop": "stop", "tool_calls": "stop", "length": "length"}  # no "tool_calls" on the wire


def ndjson(obj: Any) -> bytes:
    """One NDJSON line."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _metrics(input_tokens: int, output_tokens: int) -> dict[str, int]:
    # Durations are nanoseconds (WIRE.md §4.3).
    return {"total_duration": 4_883_583_458, "load_duration": 1_334_875, "prompt_eval_count": input_tokens,
            "prompt_eval_duration": 342_546_000, "eval_count": output_tokens, "eval_duration": 4_535_599_000}


def _wire_calls(tool_calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "function": {"index": i, "name": c.name, "arguments": dict(c.arguments)}}
            for i, c in enumerate(tool_calls)]


def ollama_chat_json(text: str, *, model: str = "fake-model", tool_calls: Sequence[ToolCall] = (),
                     thinking: str = "", done_reason: str = "stop", input_tokens: int = 7,
                     output_tokens: int = 3) -> dict[str, Any]:
    """A non-streaming ``/api/chat`` answer (``done: true`` with the metrics)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = _wire_calls(tool_calls)
    return {"model": model, "created_at": CREATED_AT, "message": message, "done": True,
            "done_reason": done_reason, **_metrics(input_tokens, output_tokens)}


def ollama_chat_lines(deltas: Sequence[str], *, model: str = "fake-model",
                      tool_calls: Sequence[ToolCall] = (), thinking: Sequence[str] = (),
                      done_reason: str = "stop", input_tokens: int = 7, output_tokens: int = 3,
                      done: bool = True) -> list[bytes]:
    """The NDJSON lines of a streamed answer: thinking, text, the tool calls, then ``done: true``."""
    def line(**message: Any) -> bytes:
        return ndjson({"model": model, "created_at": CREATED_AT, "message": {"role": "assistant", **message},
                       "done": False})

    lines = [line(content="", thinking=t) for t in thinking]
    lines += [line(content=d) for d in deltas]
    if tool_calls:  # a tool call arrives complete, in one line (WIRE.md §4.3)
        lines.append(line(content="", tool_calls=_wire_calls(tool_calls)))
    if done:
        lines.append(ndjson({"model": model, "created_at": CREATED_AT,
                             "message": {"role": "assistant", "content": ""}, "done": True,
                             "done_reason": done_reason, **_metrics(input_tokens, output_tokens)}))
    return lines


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply.json({"error": message}, status, headers)


class OllamaFake:
    """Deterministic Ollama handler.

    Attributes:
        text: The answer to every chat; streamed word by word.
        dimensions: Length of each embedding vector (unless the request asks for ``dimensions``).
        models: Names listed by ``/api/tags``; other models get Ollama's 404.
        replies: Scripted replies, used (and removed) before the default behaviour.
        call_tools: When a request offers tools and its last message is not a tool result,
            answer with a call of the first tool (arguments ``{}``) instead of text.
        version: What ``/api/version`` reports.
    """

    def __init__(self, text: str = "Hello from the fake provider.", *, dimensions: int = 8,
                 models: Sequence[str] = ("llama3.2:latest", "nomic-embed-text:latest", "fake-model:latest"),
                 call_tools: bool = True, version: str = "0.12.3") -> None:
        self.text = text
        self.dimensions = dimensions
        self.models = list(models)
        self.call_tools = call_tools
        self.version = version
        self.replies: deque[Reply] = deque()

    def __call__(self, request: Request) -> Reply:
        if self.replies:
            return self.replies.popleft()
        route = (request.method, request.path)
        if route == ("POST", "/api/chat"):
            return self.chat(request.json())
        if route == ("POST", "/api/embed"):
            return self.embed(request.json())
        if route == ("GET", "/api/tags"):
            return Reply.json({"models": [self._tag(name) for name in self.models]})
        if route == ("GET", "/api/version"):
            return Reply.json({"version": self.version})
        return Reply(404, {"content-type": "text/plain"}, b"404 page not found")

    def _known(self, model: Any) -> bool:
        return isinstance(model, str) and (model in self.models or f"{model}:latest" in self.models)

    def _check(self, body: Any) -> Reply | None:
        if not isinstance(body, dict) or not body.get("model"):
            return _error(400, "model is required")
        if not self._known(body["model"]):
            return _error(404, f"model '{body['model']}' not found")
        return None

    def words(self) -> list[str]:
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def chat(self, body: Any) -> Reply:
        failed = self._check(body)
        if failed is not None:
            return failed
        model = body["model"]
        messages = body.get("messages") or []
        tools = body.get("tools") or []
        calls: list[ToolCall] = []
        if self.call_tools and tools and (not messages or messages[-1].get("role") != "tool"):
            calls = [ToolCall(id="call_fake_0", name=tools[0]["function"]["name"], arguments={})]
        text = "" if calls else self.text
        if body.get("format") is not None and not calls:
            text = json.dumps({"text": self.text})
        thinking = ["Thinking", " about it."] if body.get("think") else []
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        output_tokens = max(1, len(text.split()))
        if body.get("stream", True):  # the server streams unless told otherwise
            deltas = [text] if body.get("format") is not None or not text else self.words()
            return Reply.ndjson(ollama_chat_lines(deltas, model=model, tool_calls=calls, thinking=thinking,
                                                  input_tokens=prompt_tokens, output_tokens=output_tokens))
        return Reply.json(ollama_chat_json(text, model=model, tool_calls=calls, thinking="".join(thinking),
                                           input_tokens=prompt_tokens, output_tokens=output_tokens))

    def embed(self, body: Any) -> Reply:
        failed = self._check(body)
        if failed is not None:
            return failed
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        size = body.get("dimensions") or self.dimensions
        vectors = [fake_embedding(str(t), size) for t in inputs]
        return Reply.json({"model": body["model"], "embeddings": vectors,
                           "total_duration": 14_143_917, "load_duration": 1_019_500,
                           "prompt_eval_count": sum(len(str(t).split()) for t in inputs)})

    @staticmethod
    def _tag(name: str) -> dict[str, Any]:
        return {"name": name, "model": name, "modified_at": "2024-05-13T13:38:39.604837432-07:00",
                "size": 2_019_393_189,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                            "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}


class OllamaWireKit(WireKit):
    """Ollama's native wire format (WIRE.md §4) for the conformance suite."""

    provider_id = "ollama"
    connector_path = "llm_connectors.connectors.ollama:OllamaConnector"
    needs_key = False  # a local Ollama takes no key (pass api_key= for ollama.com)
    chat_path = "/api/chat"

    def chat_reply(self, text: str, *, tool_calls: Sequence[ToolCall] = (), input_tokens: int = 7,
                   output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.json(ollama_chat_json(text, model=self.model, tool_calls=tool_calls,
                                           done_reason=_DONE_REASON[finish], input_tokens=input_tokens,
                                           output_tokens=output_tokens))

    def stream_reply(self, deltas: Sequence[str], *, tool_calls: Sequence[ToolCall] = (),
                     input_tokens: int = 7, output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.ndjson(ollama_chat_lines(deltas, model=self.model, tool_calls=tool_calls,
                                              done_reason=_DONE_REASON[finish], input_tokens=input_tokens,
                                              output_tokens=output_tokens))

    def error_reply(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        return _error(status, message, headers)

    def stream_error_reply(self, deltas: Sequence[str], *, kind: Literal["overloaded", "api"] = "overloaded"
                           ) -> Reply:
        # Ollama's in-band error is a bare {"error": text} line after HTTP 200 (WIRE.md §4.6).
        message = BUSY if kind == "overloaded" else "an error was encountered while running the model"
        lines = ollama_chat_lines(deltas, model=self.model, done=False)
        return Reply.ndjson([*lines, ndjson({"error": message})])

    def embedding_reply(self, vectors: Sequence[Sequence[float]], *, input_tokens: int = 5) -> Reply:
        return Reply.json({"model": "fake-embed", "embeddings": [list(v) for v in vectors],
                           "total_duration": 14_143_917, "load_duration": 1_019_500,
                           "prompt_eval_count": input_tokens})

    def models_reply(self, ids: Sequence[str]) -> Reply:
        return Reply.json({"models": [OllamaFake._tag(i) for i in ids]})
