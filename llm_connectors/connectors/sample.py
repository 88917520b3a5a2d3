"""MegaChat (``sample``): the commented template to copy when adding a provider.

MegaChat is a fictional service with a JSON dialect of its own, so that every step of a
connector is visible (an OpenAI-compatible service needs none of this: use
``lc.register_openai_compatible``). The walkthrough is ``docs/adding-a-provider.md``; the
wire format, all invented, is:

- ``POST /v2/generate`` ``{"model", "turns": [{"speaker", "text", ...}], "settings": {...}}``
  answers ``{"id", "model", "output": {"text", "calls": [...]}, "stop", "tokens": {...}}``.
- The same with ``"stream": true`` answers SSE with named events: ``start``, ``text``,
  ``call``, ``end`` (the end marker) and ``error`` (a failure inside a 200 stream).
- ``POST /v2/embed`` ``{"model", "texts"}`` answers ``{"vectors": [{"position", "values"}]}``.
- ``GET /v2/models?cursor=...`` answers ``{"models": [...], "next_cursor": str | null}``.
- Errors: ``{"failure": {"reason", "detail"}}``; the request id is in ``megachat-trace-id``.
- Auth: the key in an ``x-megachat-key`` header.

A connector is a pure translator: it builds requests and parses answers, and never does I/O.
``BaseConnector`` sends, frames streams, classifies errors and accumulates stream chunks.
Answers are untrusted input: each is checked against its declared shape before it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta

# The helpers below live in underscore modules; they are what every built-in connector uses.
from llm_connectors import ErrorInfo, SSEEvent, decode_json, parse_error_body
from llm_connectors.base import BaseConnector
from llm_connectors.definition import (
    AuthSpec,
    Capability,
    ParameterDefinition,
    ServiceDefinition,
    common_parameters,
)
from llm_connectors.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextWindowExceededError,
    LLMConnectorError,
    NotFoundError,
    OverloadedError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
)
from llm_connectors.requests import ChatRequest, EmbeddingRequest, HTTPRequest
from llm_connectors.stream import StreamDecoder
from llm_connectors.types import (
    ChatChunk,
    ChatResponse,
    EmbeddingResponse,
    Message,
    ModelInfo,
    ToolCall,
    Usage,
)
from llm_connectors.wire.shapes import Count, Shape, conform

__all__ = ["MEGACHAT", "MegaChatStreamDecoder", "SampleConnector"]

# -- Step 1: the definition --------------------------------------------------------------------
# Plain data: who the provider is, how it authenticates, what it can do and which options it
# takes with their ranges. Every call is validated against it *before* any I/O, so a typo
# (`temprature=`) or `temperature=1.5` fails fast with a message naming the allowed range.

MEGACHAT = ServiceDefinition(
    id="sample",
    name="MegaChat (sample)",
    # Fictional, so the default is a local address where a MegaChat fake can listen.
    base_url="http://127.0.0.1:8765",
    base_url_env="MEGACHAT_BASE_URL",
    auth=AuthSpec(kind="header", header="x-megachat-key", env_var="MEGACHAT_API_KEY"),
    capabilities=frozenset({
        Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.VISION,
        Capability.JSON_MODE, Capability.JSON_SCHEMA, Capability.EMBEDDINGS, Capability.LIST_MODELS,
    }),
    parameters=(
        # The normalised options (temperature, top_p, max_tokens, stop, seed, tools,
        # tool_choice, response_format) with MegaChat's ranges...
        *common_parameters(temperature_max=1.0, max_stop=8),
        # ...plus an option only MegaChat has. Declared options are validated like the rest.
        ParameterDefinition("safety", "string", "MegaChat's content filter level.",
                            choices=("strict", "relaxed")),
    ),
    default_model="megachat-large",
    default_embedding_model="megachat-embed",
    model_patterns=("megachat-",),
    docs_url="https://github.com/llm-connectors/llm-connectors/blob/main/docs/providers/sample.md",
)

# -- Step 2: small translation tables ----------------------------------------------------------
# Normalised finish reasons use OpenAI's vocabulary (WIRE.md §5.1); the native value is kept
# on the response as `native_finish_reason`.
_FINISH = {"done": "stop", "stop_word": "stop", "max_output": "length", "tool": "tool_calls",
           "blocked": "content_filter"}
_SPEAKER = {"system": "system", "user": "user", "assistant": "bot", "tool": "tool"}
_TOOL_MODE = {"auto": "auto", "none": "off", "required": "must"}
# Option name -> field inside MegaChat's "settings" object.
_SETTINGS = {"temperature": "temperature", "top_p": "top_p", "max_tokens": "max_output",
             "stop": "stop_words", "seed": "seed", "safety": "safety"}

# -- Step 2 (continued): the shapes of the answers ---------------------------------------------
# Provider answers are untrusted input: a proxy, a bug or a new API version can send anything.
# Declare each answer as a `Shape` (a msgspec Struct) holding the fields you read, with their
# types, and call `conform(data, TheShape, provider=..., what=...)` before reading anything.
# A wrong type, a missing required field or a negative count is then a ProtocolError naming the
# field path (`$.output.calls[0].tool`) and what was expected: never an AttributeError from deep
# inside the parser, and never a made-up answer (str() of an object as the text, "" with finish
# "stop"). ProtocolError is retryable and moves a fallback chain on, like any broken answer.
# - Declare only what you read. Other fields are ignored, so the provider may add new ones.
# - Required fields first, then optional ones with a default (msgspec and mypy need that order).
#   `X | None = None` is for what the provider may leave out; `Count` is an int >= 0 (so `true`,
#   `3.0`, `"3"` and `-1` are refused as token counts).
# - No `Literal` or enum types: their error message would quote the value received, and an
#   answer can echo what was sent (a key, a prompt). Map open vocabularies with a dict instead.
# - `conform` returns the typed object; read its attributes, and keep the dict as `raw`.

class _Tokens(Shape):
    prompt: Count | None = None
    generated: Count | None = None


class _Call(Shape):
    """A complete tool call: an entry of ``output.calls``, or a stream's ``call`` event."""

    tool: Annotated[str, Meta(min_length=1)]  # a call of "" is no call
    id: str | None = None
    args: dict[str, Any] | None = None  # an object: 3 or "x" is not "no arguments"


class _Output(Shape):
    text: str | None = None
    calls: list[_Call] | None = None


class _Answer(Shape):
    """``POST /v2/generate`` without streaming."""

    output: _Output
    id: str | None = None
    model: str | None = None
    stop: str | None = None
    tokens: _Tokens | None = None


# The stream's events, one shape each (`call` is _Call). An event type not listed is skipped.
class _Start(Shape):
    id: str | None = None
    model: str | None = None


class _Text(Shape):
    text: str


class _End(Shape):
    stop: str | None = None
    tokens: _Tokens | None = None


class _Vector(Shape):
    values: Annotated[list[float], Meta(min_length=1)]  # ints are read as floats; `true` is refused
    position: Count = 0


class _Embedded(Shape):
    """``POST /v2/embed``."""

    vectors: list[_Vector]
    model: str | None = None
    tokens: _Tokens | None = None


class _Model(Shape):
    name: Annotated[str, Meta(min_length=1)]
    label: str | None = None
    context: Count | None = None


class _ModelPage(Shape):
    """``GET /v2/models``."""

    models: list[_Model]
    next_cursor: str | None = None


def _finish(native: str | None, has_calls: bool) -> str:
    if native:
        return _FINISH.get(native, "other")
    return "tool_calls" if has_calls else "stop"


def _usage(tokens: _Tokens | None) -> Usage:
    # Usage.of computes the total; unknown counts stay None rather than a made-up 0.
    return Usage.of(tokens.prompt, tokens.generated) if tokens else Usage()


def _tool_call(call: _Call, index: int) -> ToolCall:
    # MegaChat sends arguments as an object. A provider that sends JSON text (or streams it in
    # fragments) should use ToolCall.from_json_text, which never raises on bad JSON. A missing
    # id is made up from the position, the same way in both modes, so the result can be sent back.
    return ToolCall(id=call.id or f"call_{index}", name=call.tool, arguments=call.args or {})


def _empty(what: str, provider: str) -> ProtocolError:
    # Each field of an answer may be optional, yet one with no text, no call and no stop reason
    # says nothing at all: returning "" with finish "stop" would make an answer up.
    return ProtocolError(f"the {what} has no text, no tool call and no `stop` reason", provider=provider)


class SampleConnector(BaseConnector):
    """MegaChat, the fictional provider behind the ``sample`` id: the template to copy.

    Args:
        **kwargs: See :class:`~llm_connectors.BaseConnector` (``api_key``, ``base_url``,
            ``timeout``...). ``MEGACHAT_API_KEY`` / ``MEGACHAT_BASE_URL`` are read by
            ``get_connector("sample")``, never by the constructor.
    """

    definition: ClassVar[ServiceDefinition] = MEGACHAT
    stream_format: ClassVar[Literal["sse", "ndjson"]] = "sse"  # or "ndjson" (Ollama-style lines)
    request_id_headers: ClassVar[tuple[str, ...]] = ("megachat-trace-id",)
    # Error reasons that say more than the HTTP status (Step 6). A reason listed neither here nor
    # among the codes shared by every provider keeps the status's class (429 -> RateLimitError).
    error_codes: ClassVar[Mapping[str, type[LLMConnectorError]]] = {
        "bad_key": AuthenticationError,
        "rate_limited": RateLimitError,
        "quota_exhausted": QuotaExceededError,
        "context_too_long": ContextWindowExceededError,
        "unknown_model": NotFoundError,
        "blocked": ContentFilterError,
        "overloaded": OverloadedError,
    }
    # Larger embedding calls are split into requests of this size and run concurrently.
    embedding_batch_size: ClassVar[int | None] = 64

    # -- Step 3: the request -------------------------------------------------------------------
    # `request` is already validated: model resolved, messages normalised to Message objects
    # (content is a str or text/image_url parts), options checked and normalised (`stop` is a
    # list, `tool_choice` is auto/none/required or {"type": "function", ...}). Map; don't check.
    # `extra=` and provider_options={"sample": {...}} are merged into the body by the base.

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        body: dict[str, Any] = {"model": request.model, "turns": [self._turn(m) for m in request.messages]}
        settings: dict[str, Any] = {}
        for name, value in request.params.items():
            if name in _SETTINGS:
                settings[_SETTINGS[name]] = value
            elif name == "tools":
                body["tools"] = [{"name": t["function"]["name"],
                                  "description": t["function"].get("description", ""),
                                  "schema": t["function"]["parameters"]} for t in value]
            elif name == "tool_choice":
                body["tool_mode"] = _TOOL_MODE[value] if isinstance(value, str) else \
                    {"only": value["function"]["name"]}
            elif name == "response_format" and value["type"] != "text":
                body["format"] = "json" if value["type"] == "json_object" else \
                    {"name": value["json_schema"]["name"], "schema": value["json_schema"]["schema"]}
        if settings:
            body["settings"] = settings
        if request.stream:
            body["stream"] = True
        return HTTPRequest("POST", "/v2/generate", json=body)

    def _turn(self, message: Message) -> dict[str, Any]:
        turn: dict[str, Any] = {"speaker": _SPEAKER[message.role], "text": message.text}
        if isinstance(message.content, list):  # vision: MegaChat takes http(s) and data: URLs alike
            images = [p["image_url"]["url"] for p in message.content if p["type"] == "image_url"]
            if images:
                turn["images"] = images
        if message.tool_calls:  # the assistant's earlier calls, sent back in the conversation
            turn["calls"] = [{"id": c.id, "tool": c.name, "args": c.arguments} for c in message.tool_calls]
        if message.tool_call_id:  # a tool result names the call it answers
            turn["answers"] = message.tool_call_id
        return turn

    # -- Step 4: the response ------------------------------------------------------------------
    # `data` is the decoded JSON of a 2xx answer (errors never get here: see Step 6). Check it
    # against its shape (Step 2) first, then read the typed result. Be strict about what you
    # need and lenient about what you don't: a missing "output" is a ProtocolError, a missing
    # "tokens" is unknown usage.

    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        if isinstance(data, dict) and "failure" in data:  # an error that came back with a 200
            raise self.error_from_payload(data)
        answer = conform(data, _Answer, provider=self.provider, what="generate answer")
        output = answer.output
        calls = [_tool_call(c, i) for i, c in enumerate(output.calls or ())]
        text = output.text or ""
        if not (text or calls or answer.stop):
            raise _empty("generate answer", self.provider)
        return ChatResponse(
            content=text,
            finish_reason=_finish(answer.stop, bool(calls)),
            usage=_usage(answer.tokens),
            tool_calls=calls,
            provider=self.provider,
            model=answer.model or request.model,
            raw=data,
            id=answer.id,
            native_finish_reason=answer.stop,
        )

    # -- Step 5: streaming ---------------------------------------------------------------------
    # The same build_chat_request serves streams (request.stream is True). What differs is the
    # answer: a fresh decoder per stream turns its events into chunks (the class below).

    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return MegaChatStreamDecoder(self, request)

    # -- Step 6: errors ------------------------------------------------------------------------
    # The base class maps every non-2xx answer: status first, then the codes this method
    # extracts (looked up in `error_codes`, then in the codes shared by all providers), then
    # message patterns (context window). It also reads `retry-after` and the request id.
    # Only the body shape is provider-specific. Fall back to the generic parser for bodies
    # MegaChat did not write (a proxy's HTML page, an empty 502). This is the one reader that
    # takes any shape without a `conform`: whatever the body holds, the answer is an error.

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        try:
            data = decode_json(body, provider=self.provider, what="error body")
        except ProtocolError:
            data = None
        failure = data.get("failure") if isinstance(data, dict) else None
        if not isinstance(failure, dict):
            return parse_error_body(status, body)
        reason = failure.get("reason")
        detail = failure.get("detail")
        message = detail if isinstance(detail, str) and detail else f"MegaChat failed ({reason or status})"
        return ErrorInfo(message, (reason,) if isinstance(reason, str) and reason else ())

    # -- Step 7: embeddings --------------------------------------------------------------------
    # Only with Capability.EMBEDDINGS declared; without it the base raises
    # UnsupportedCapabilityError before any I/O. Vectors must come back in input order.

    def build_embedding_request(self, request: EmbeddingRequest) -> HTTPRequest:
        body: dict[str, Any] = {"model": request.model, "texts": list(request.inputs)}
        if "dimensions" in request.params:
            body["dimensions"] = request.params["dimensions"]
        return HTTPRequest("POST", "/v2/embed", json=body)

    def parse_embedding_response(self, data: Any, request: EmbeddingRequest) -> EmbeddingResponse:
        answer = conform(data, _Embedded, provider=self.provider, what="embed answer")
        if len(answer.vectors) != len(request.inputs):
            raise ProtocolError(f"embed answer holds {len(answer.vectors)} vectors for {len(request.inputs)} texts "
                                f"(`$.vectors`)", provider=self.provider)
        ordered = sorted(answer.vectors, key=lambda vector: vector.position)
        prompt = _usage(answer.tokens).input_tokens  # embeddings generate nothing
        return EmbeddingResponse(
            embeddings=[vector.values for vector in ordered],
            model=answer.model or request.model,
            provider=self.provider,
            usage=Usage(input_tokens=prompt, total_tokens=prompt),
        )

    # -- Step 8: the model list ----------------------------------------------------------------
    # Called page by page until the cursor is None (bounded by the base class). The first page
    # doubles as the health check (`build_health_request`), since it needs a valid key.

    def build_list_models_request(self, cursor: str | None) -> HTTPRequest:
        params = {"limit": "100"}
        if cursor:
            params["cursor"] = cursor
        return HTTPRequest("GET", "/v2/models", params=params)

    def parse_list_models(self, data: Any) -> tuple[list[ModelInfo], str | None]:
        page = conform(data, _ModelPage, provider=self.provider, what="model list")
        models = [ModelInfo(id=m.name, name=m.label or m.name, context_length=m.context, raw=raw)
                  for m, raw in zip(page.models, data["models"], strict=True)]
        return models, page.next_cursor or None


# -- Step 5 (continued): the stream decoder ---------------------------------------------------
# The base class reads the bytes, splits them into SSE events (any network split, CRLF, UTF-8
# across reads are handled) and calls `feed` once per event. The decoder checks each event
# against its shape (Step 2) and returns a chunk via `self.chunk(...)`, which also accumulates
# the final ChatResponse, so a collected stream equals the non-streaming answer. It must set
# `done` on the end marker: a stream that stops without one was cut, and the base class raises
# instead of returning half an answer.

class MegaChatStreamDecoder(StreamDecoder):
    """MegaChat's named SSE events: start, text, call, end, error (others ignored)."""

    def __init__(self, connector: SampleConnector, request: ChatRequest) -> None:
        super().__init__(connector.provider, request.model)
        self._connector = connector

    def feed(self, event: SSEEvent) -> ChatChunk | None:
        if self.done:
            return None  # nothing after the end marker counts
        kind = event.event
        if kind not in ("start", "text", "call", "end", "error"):
            return None  # new event types must not break old clients
        what = f"{kind} event"
        data = decode_json(event.data, provider=self.provider, what=what)
        if kind == "error":
            # A failure inside a 200 stream: raise the typed error (parse_error reads any shape).
            # Before the first chunk, retries and fallbacks still apply; after it, the caller
            # gets StreamInterruptedError with the text delivered so far (ChatStream does that).
            raise self._connector.error_from_payload(data)
        self.raw = data
        if kind == "start":
            start = conform(data, _Start, provider=self.provider, what=what)
            self.id = start.id
            self.model = start.model or self.model
            return None
        if kind == "text":
            return self.chunk(conform(data, _Text, provider=self.provider, what=what).text, raw=data)
        if kind == "call":  # complete calls go out on the chunk where they finished
            call = conform(data, _Call, provider=self.provider, what=what)
            return self.chunk(tool_calls=[_tool_call(call, len(self.tool_calls))], raw=data)
        end = conform(data, _End, provider=self.provider, what=what)  # the end marker
        if not (self.text or self.tool_calls or end.stop):
            raise _empty("stream", self.provider)
        self.done = True  # finish reason and usage ride on the last chunk
        self.native_finish_reason = end.stop
        return self.chunk(finish_reason=_finish(end.stop, bool(self.tool_calls)), usage=_usage(end.tokens),
                          raw=data)


# -- Step 9: register --------------------------------------------------------------------------
# Built-ins are listed in llm_connectors/registry.py. Your own connector registers with
#     lc.register_connector("megachat", SampleConnector)
# or, from a separate package, through the `llm_connectors.providers` entry-point group:
#     [project.entry-points."llm_connectors.providers"]
#     megachat = "my_package.megachat:MegaChatConnector"
# Step 10, testing it with the conformance suite and FakeServer: docs/adding-a-provider.md.
