""":class:`LocalTransport`: OpenAI's routes, answered in process from a :class:`~.models.LocalRuntime`.

An ``httpx.AsyncBaseTransport`` that serves ``/chat/completions`` (with or without SSE),
``/embeddings`` and ``/models`` with no socket. It translates an OpenAI request body into
llama-cpp-python arguments, starts the request's :class:`~.jobs.Job`, and answers the way an
OpenAI-compatible server does, errors included (status and an ``error`` object).

Stopping: closing or cancelling the response (or dropping it unread) sets the job's stop flag;
the model checks it before each token, so generation ends within one token and the model is
free for the next request. A reader that neither reads nor closes for the read timeout is
treated as gone.
"""

from __future__ import annotations

import json
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from .jobs import END, Failure, Job
from .models import MODEL_ENV, LocalRuntime, ModelLoadError, Stopped, model_id, padded_context

__all__ = ["IN_PROCESS_URL", "LocalTransport"]

#: The connector's base URL. ``.invalid`` never resolves: nothing here ever reaches a network.
IN_PROCESS_URL = "https://in-process.invalid/v1"

# Keyword arguments of ``Llama.create_chat_completion`` a request body may carry as they are.
_CHAT_FIELDS = frozenset({
    "messages", "tools", "tool_choice", "temperature", "top_p", "top_k", "min_p", "typical_p", "stop",
    "seed", "response_format", "max_tokens", "presence_penalty", "frequency_penalty", "repeat_penalty",
    "tfs_z", "mirostat_mode", "mirostat_tau", "mirostat_eta", "logit_bias", "logprobs", "top_logprobs",
})


class LocalTransport(httpx.AsyncBaseTransport):
    """Answers OpenAI-shaped requests from a :class:`LocalRuntime`, without a socket.

    Errors come back the way an OpenAI-compatible server sends them (status and an ``error``
    object), so the connector classifies them like any provider's: an unknown model is a 404,
    a prompt over the context window a 400 ``context_length_exceeded``, a failure inside the
    model a 500.
    """

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        method = request.method
        if method == "GET" and path.endswith("/models"):
            return self._models()
        if method == "POST" and path.endswith(("/chat/completions", "/embeddings")):
            try:
                body = json.loads(await request.aread())
            except ValueError:
                return _error(400, "the request body is not JSON")
            if not isinstance(body, dict):
                return _error(400, "the request body must be a JSON object")
            idle = _read_timeout(request)
            if path.endswith("/embeddings"):
                return await self._embeddings(body, idle)
            return await self._chat(body, idle)
        return _error(404, f"no route {method} {request.url.path}", code="not_found")

    def _models(self) -> httpx.Response:
        data = []
        for name, path in self.runtime.models().items():
            try:
                size = path.stat().st_size
            except OSError:
                continue  # deleted since it was listed
            context = padded_context(self.runtime.settings.context_length)
            data.append({"id": name, "object": "model", "owned_by": "local", "path": str(path), "size_bytes": size,
                         "context_length": context or None})
        return _json_response(200, {"object": "list", "data": data})

    def _model_path(self, body: Mapping[str, Any]) -> tuple[str, Path] | httpx.Response:
        name = body.get("model")
        if not isinstance(name, str) or not name:
            return _error(400, "model is required")
        path = self.runtime.resolve(name)
        if path is None:
            available = ", ".join(self.runtime.models())
            return _error(404, f"model {name!r} is not a local model file; available: {available}. Pass a "
                               f"model id, a path to a .gguf file, or set {MODEL_ENV}", code="model_not_found")
        return model_id(path) if name == str(path) or name.lower().endswith(".gguf") else name, path

    async def _chat(self, body: dict[str, Any], idle: float) -> httpx.Response:
        found = self._model_path(body)
        if isinstance(found, httpx.Response):
            return found
        name, path = found
        stream = bool(body.get("stream"))
        try:
            kwargs = _chat_arguments(body)
        except ValueError as exc:
            return _error(400, str(exc))
        job = Job(idle_timeout=idle)
        job.start(self.runtime.chat_worker(path, kwargs, stream=stream, name=name), "llm-connectors-local-chat")
        try:
            first = await job.get()
        except BaseException:
            job.cancel()  # cancelled or timed out while waiting: stop the model at once
            raise
        if first is END:
            return _error(500, "the model produced no answer", code="server_error")
        if isinstance(first, Failure):
            return _failure_response(first.error)
        if not stream:
            job.cancel()  # nothing more will come; let the worker go
            return _json_response(200, first)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_EventStream(job, first))

    async def _embeddings(self, body: dict[str, Any], idle: float) -> httpx.Response:
        found = self._model_path(body)
        if isinstance(found, httpx.Response):
            return found
        name, path = found
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            return _error(400, "input must be a string or a non-empty list of strings")
        unknown = sorted(set(body) - {"model", "input", "encoding_format"})
        if unknown:
            return _error(400, f"local embeddings take no {', '.join(unknown)}; the model's own size is used")
        job = Job(idle_timeout=idle)
        job.start(self.runtime.embedding_worker(path, inputs, name=name), "llm-connectors-local-embed")
        try:
            result = await job.get()
        finally:
            job.cancel()
        if isinstance(result, Failure):
            return _failure_response(result.error)
        if result is END:
            return _error(500, "the model produced no embeddings", code="server_error")
        return _json_response(200, result)


class _EventStream(httpx.AsyncByteStream):
    """The SSE body of a streamed chat answer, read from a job as the model produces it.

    A plain async iterator rather than an async generator: httpx may drop it unfinished when the
    reader stops early, and an abandoned generator would warn on trio. Closing it, or dropping
    it, stops the model.
    """

    def __init__(self, job: Job, first: Any) -> None:
        self._job = job
        self._pending: list[Any] = [first]
        self._finished = False
        weakref.finalize(self, job.cancel)  # dropped without being closed: still stop the model

    def __aiter__(self) -> _EventStream:
        return self

    async def __anext__(self) -> bytes:
        if self._finished:
            raise StopAsyncIteration
        item = self._pending.pop() if self._pending else await self._job.get()
        if item is END:
            self._finish()
            return b"data: [DONE]\n\n"
        if isinstance(item, Failure):
            self._finish()
            return _sse(_error_body(item.error))  # an in-band error, as OpenAI-style servers send it
        return _sse(item)

    def _finish(self) -> None:
        self._finished = True
        self._job.cancel()

    async def aclose(self) -> None:
        self._finish()


# -- OpenAI's chat body as llama-cpp-python arguments ---------------------------------------------

def _chat_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """``create_chat_completion`` keyword arguments from an OpenAI chat body."""
    unknown = sorted(set(body) - _CHAT_FIELDS - {"model", "stream", "stream_options", "n", "user"})
    if unknown:
        raise ValueError(f"local models do not take {', '.join(repr(u) for u in unknown)}; accepted fields: "
                         f"{', '.join(sorted(_CHAT_FIELDS))}")
    if body.get("n") not in (None, 1):
        raise ValueError("local models give one answer per request (n=1)")
    kwargs = {k: v for k, v in body.items() if k in _CHAT_FIELDS}
    messages = kwargs.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    kwargs["messages"] = [_flatten(m) for m in messages]
    tools = kwargs.get("tools")
    choice = kwargs.get("tool_choice")
    if choice == "required" and isinstance(tools, list):
        # llama-cpp-python forces a call only for a named tool; with one tool, that is the same.
        if len(tools) != 1:
            raise ValueError("local models support tool_choice='required' with exactly one tool; name the tool "
                             "to call instead: tool_choice={'type': 'function', 'function': {'name': ...}}")
        kwargs["tool_choice"] = {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
    response_format = kwargs.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        # llama-cpp-python's dialect: a json_object with the schema beside it, enforced by a grammar.
        schema = (response_format.get("json_schema") or {}).get("schema")
        kwargs["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
    return kwargs


def _flatten(message: Any) -> Any:
    """String content, as the chat templates inside GGUF files expect: text parts joined, and ""
    for an assistant turn that only called tools (templates concatenate ``content``)."""
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if content is None:
        return {**message, "content": ""}
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return {**message, "content": "".join(str(p.get("text") or "") for p in content)}
    return message


def _read_timeout(request: httpx.Request) -> float:
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return float(read) if isinstance(read, (int, float)) and read > 0 else 300.0


# -- responses, as an OpenAI-compatible server sends them -----------------------------------------

def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _json_response(status: int, data: Any) -> httpx.Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    # A stream, as a network transport returns it: ``content=`` would mark the body as already read.
    return httpx.Response(status, stream=httpx.ByteStream(body), headers={
        "content-type": "application/json", "content-length": str(len(body)), "x-request-id": _request_id()})


def _request_id() -> str:
    return "local-" + uuid.uuid4().hex[:16]


def _error(status: int, message: str, *, code: str | None = None) -> httpx.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return _json_response(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})


def _error_body(error: BaseException) -> dict[str, Any]:
    status, message, code = _describe(error)
    return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "param": None, "code": code}}


def _failure_response(error: BaseException) -> httpx.Response:
    status, message, code = _describe(error)
    return _error(status, message, code=code)


def _describe(error: BaseException) -> tuple[int, str, str | None]:
    """(status, message, code) for an exception raised by llama-cpp-python on a worker."""
    text = str(error) or type(error).__name__
    if isinstance(error, ModelLoadError):
        return 400, text, "model_load_failed"  # the file is wrong; retrying will not help
    if isinstance(error, ValueError):
        if "context window" in text or "exceed context" in text:
            return 400, text, "context_length_exceeded"
        return 400, text, None
    if isinstance(error, Stopped):
        return 499, "the request was cancelled", "cancelled"
    if isinstance(error, ImportError):
        return 500, f"llama-cpp-python is not usable: {text}; pip install 'llm-connectors-sdk[local]'", "server_error"
    return 500, f"{type(error).__name__}: {text}", "server_error"
