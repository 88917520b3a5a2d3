"""Ollama (``ollama``): the native API — ``/api/chat``, ``/api/embed``, ``/api/tags``.

Wire facts: WIRE.md §4 and §5. What differs from the OpenAI dialect, and why this is not an
``OpenAICompatibleConnector``:

* Streams are NDJSON, one complete JSON object per line; the ``done: true`` line is the end
  marker and carries ``done_reason`` and the eval counts. ``stream`` defaults to *true* on the
  server, so it is always sent explicitly.
* Sampling options live in an ``options`` object (``max_tokens`` becomes ``num_predict``).
* JSON mode is ``format: "json"``; a JSON schema is passed as the ``format`` object itself.
* Images are bare base64 strings in ``message.images``; remote image URLs are not accepted.
* Tool-call arguments are JSON *objects* both ways; ids may be missing on older servers.
  A tool result names its tool (``tool_name``), looked up from the assistant call it answers.
* Errors are ``{"error": "text"}``, with no code, also as a line inside a 200 stream.
* ``tool_choice`` does not exist: ``"auto"`` (the server's behaviour) is accepted and not
  sent; anything else raises :class:`UnsupportedCapabilityError` before any I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote_to_bytes

from .._env import settings_from_env
from ..base import BaseConnector
from ..definition import (
    AuthSpec,
    Capability,
    ParameterDefinition,
    ServiceDefinition,
    common_parameters,
    unknown_option_error,
)
from ..errors import (
    ConfigurationError,
    InvalidRequestError,
    LLMConnectorError,
    NotFoundError,
    OverloadedError,
    ProtocolError,
    UnsupportedCapabilityError,
)
from ..requests import ChatRequest, EmbeddingRequest, HTTPRequest
from ..stream import StreamDecoder
from ..types import (
    ChatChunk,
    ChatResponse,
    EmbeddingResponse,
    Message,
    MessageInput,
    ModelInfo,
    ToolCall,
    Usage,
)
from ..wire.classify import ErrorInfo, parse_error_body
from ..wire.messages import text_of, tool_result_text

__all__ = ["OLLAMA", "OllamaConnector", "OllamaStreamDecoder", "parse_ollama_host"]

C = TypeVar("C", bound="OllamaConnector")

DEFAULT_PORT = 11434
DEFAULT_HOST = "localhost"

OLLAMA = ServiceDefinition(
    id="ollama",
    name="Ollama",
    base_url=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
    base_url_env="OLLAMA_HOST",
    # Local servers need no key; ollama.com takes `Authorization: Bearer $OLLAMA_API_KEY`.
    auth=AuthSpec(kind="bearer", env_var="OLLAMA_API_KEY", required=False),
    capabilities=frozenset({
        Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.VISION, Capability.JSON_MODE,
        Capability.JSON_SCHEMA, Capability.EMBEDDINGS, Capability.LIST_MODELS, Capability.REASONING,
    }),
    parameters=(
        *common_parameters(temperature_max=2.0),
        ParameterDefinition("top_k", "integer", "Sample only from the K most likely tokens (default 40).",
                            minimum=0),
        ParameterDefinition("min_p", "number", "Drop tokens below this share of the top token's probability.",
                            minimum=0.0, maximum=1.0),
        ParameterDefinition("typical_p", "number", "Locally typical sampling mass.", minimum=0.0,
                            maximum=1.0),
        ParameterDefinition("num_ctx", "integer", "Context window size in tokens (default 2048 or the "
                            "model's setting).", minimum=1),
        ParameterDefinition("repeat_penalty", "number", "Penalise repetitions (default 1.1).", minimum=0.0),
        ParameterDefinition("repeat_last_n", "integer",
                            "How far back to look for repetitions (-1 = num_ctx).", minimum=-1),
        ParameterDefinition("presence_penalty", "number", "Penalise tokens already present.", minimum=-2.0,
                            maximum=2.0),
        ParameterDefinition("frequency_penalty", "number", "Penalise frequent tokens.", minimum=-2.0,
                            maximum=2.0),
    ),
    default_model="llama3.2",
    default_embedding_model="nomic-embed-text",
    model_patterns=(),
    docs_url="https://github.com/ollama/ollama/blob/main/docs/api.md",
)

# Normalised option -> key in the native `options` object; declared extras keep their own name.
_OPTION_KEYS = {"max_tokens": "num_predict"}
_THINK_LEVELS = ("low", "medium", "high", "max")
_EMBEDDING_OPTIONS = ("dimensions", "truncate")

# Ollama errors carry no code, only text (WIRE.md §4.6); these messages name a precise error.
# The derived codes are namespaced so nobody mistakes them for codes the server sent.
_MESSAGE_CODES = (
    # `model 'x' not found` and `model "x" not found, try pulling it first`
    (re.compile(r"\bmodel ['\"][^'\"]+['\"] not found\b", re.IGNORECASE), "ollama:model_not_found"),
    (re.compile(r"\bdoes not support\b", re.IGNORECASE), "ollama:unsupported"),
    (re.compile(r"\bserver busy\b", re.IGNORECASE), "ollama:server_busy"),
)
_ERROR_CODES: dict[str, type[LLMConnectorError]] = {
    "ollama:model_not_found": NotFoundError,
    "ollama:unsupported": UnsupportedCapabilityError,
    "ollama:server_busy": OverloadedError,
}
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def parse_ollama_host(value: str) -> str:
    """Turn an ``OLLAMA_HOST`` value into a base URL, as the official Python client does.

    A bare host gets ``http://`` and port 11434; an explicit ``http://`` or ``https://``
    without a port gets 80 or 443; a path is kept without its trailing slash. One deliberate
    difference: a missing host (``":8080"``) means ``localhost``, our default, where the
    client uses ``127.0.0.1``.

    Raises:
        ConfigurationError: for a scheme other than http/https, credentials, or a bad port.
    """
    text = re.split(r"[?#]", value.strip(), maxsplit=1)[0]
    scheme, sep, rest = text.partition("://")
    if sep:
        scheme = scheme.lower()
        ports = {"http": 80, "https": 443}
        if scheme not in ports:
            raise ConfigurationError(f"OLLAMA_HOST {value!r}: the scheme must be http or https",
                                     provider="ollama")
        default_port = ports[scheme]
    else:
        scheme, rest, default_port = "http", text, DEFAULT_PORT
    hostport, _, path = rest.partition("/")
    if "@" in hostport:
        raise ConfigurationError("OLLAMA_HOST must not contain a user name or password; set OLLAMA_API_KEY",
                                 provider="ollama")
    if hostport.startswith("["):  # an IPv6 literal, maybe with a port after the bracket
        host, bracket, port_text = hostport[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise ConfigurationError(f"OLLAMA_HOST {value!r} has a malformed IPv6 address", provider="ollama")
        host, port_text = f"[{host}]", port_text[1:]
    elif hostport.count(":") > 1:  # a bare IPv6 address cannot carry a port
        host, port_text = f"[{hostport}]", ""
    else:
        host, _, port_text = hostport.partition(":")
    port = default_port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigurationError(f"OLLAMA_HOST {value!r} has an invalid port", provider="ollama")
        port = int(port_text)
    base = f"{scheme}://{host.lower() or DEFAULT_HOST}:{port}"
    path = path.strip("/")
    return f"{base}/{path}" if path else base


def normalize_done_reason(native: Any, has_tool_calls: bool) -> str:
    """Ollama's ``done_reason`` in our vocabulary (WIRE.md §5.1).

    A turn that called tools ends with ``stop`` (there is no ``tool_calls`` reason), and an
    empty or absent reason with tool calls is read the same way.
    """
    if native in ("stop", "", None) and has_tool_calls:
        return "tool_calls"
    if native in ("stop", "length"):
        return str(native)
    return "other"  # load, unload, "", and whatever a newer server invents


def ollama_usage(data: Mapping[str, Any]) -> Usage:
    """Eval counts as usage; the counts are ``omitempty`` on the wire, so absent means 0."""
    return Usage.of(_count(data.get("prompt_eval_count")), _count(data.get("eval_count")))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class OllamaStreamDecoder(StreamDecoder):
    """Parsed NDJSON lines of ``/api/chat`` in, chunks out.

    Text, thinking and (complete) tool calls are emitted as their lines arrive; the
    ``done: true`` line ends the stream and brings the finish reason and usage together.
    A ``{"error": ...}`` line raises the typed error.
    """

    def __init__(self, connector: OllamaConnector, request: ChatRequest) -> None:
        super().__init__(connector.provider, request.model)
        self._connector = connector

    def feed(self, event: Any) -> ChatChunk | None:
        if self.done:
            return None  # the answer is complete; nothing is defined after the end marker
        if not isinstance(event, dict):
            raise ProtocolError("stream line is not a JSON object", provider=self.provider)
        if event.get("error") not in (None, ""):
            raise self._connector.error_from_payload(event)
        model = event.get("model")
        if isinstance(model, str) and model:
            self.model = model
        message = event.get("message")
        if not isinstance(message, Mapping):
            message = {}
        calls = [self._connector.parse_tool_call(raw, len(self.tool_calls) + i)
                 for i, raw in enumerate(message.get("tool_calls") or ())]
        text, thinking = _text(message.get("content")), _text(message.get("thinking"))
        if event.get("done") is not True:
            return self.chunk(text, thinking, calls, raw=event)
        self.done = True
        self.raw = event
        native = event.get("done_reason")
        self.native_finish_reason = native if isinstance(native, str) else None
        finish = normalize_done_reason(native, bool(self.tool_calls or calls))
        return self.chunk(text, thinking, calls, finish_reason=finish, usage=ollama_usage(event), raw=event)


class OllamaConnector(BaseConnector):
    """Ollama's native API, local (``http://localhost:11434``) or ollama.com.

    ``OLLAMA_HOST`` is read by :meth:`from_env` with the official client's host rules
    (:func:`parse_ollama_host`); ``OLLAMA_API_KEY``, when set, is sent as a bearer token.
    Top-level body fields such as ``keep_alive`` and ``think`` go in
    ``provider_options={"ollama": {...}}``.
    """

    definition: ClassVar[ServiceDefinition] = OLLAMA
    stream_format = "ndjson"
    error_codes: ClassVar[Mapping[str, type[LLMConnectorError]]] = _ERROR_CODES
    chat_path: ClassVar[str] = "/api/chat"
    embed_path: ClassVar[str] = "/api/embed"
    tags_path: ClassVar[str] = "/api/tags"
    version_path: ClassVar[str] = "/api/version"

    @classmethod
    def from_env(cls: type[C], environ: Mapping[str, str] | None = None, **kwargs: Any) -> C:
        """Construct with ``OLLAMA_HOST`` (host rules applied) and ``OLLAMA_API_KEY`` when not given."""
        explicit_url = kwargs.get("base_url")
        settings = settings_from_env(cls.definition, kwargs, environ)
        if explicit_url is None and settings.get("base_url") is not None:
            settings["base_url"] = parse_ollama_host(settings["base_url"])
        return cls(**settings)

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        info = parse_error_body(status, body)
        derived = tuple(code for pattern, code in _MESSAGE_CODES if pattern.search(info.message))
        return ErrorInfo(info.message, info.codes + derived) if derived else info

    # -- chat ---------------------------------------------------------------------------------

    def prepare_chat(self, model: str | None, messages: Iterable[MessageInput] | str,
                     options: Mapping[str, Any], *, stream: bool) -> ChatRequest:
        """Validate as the base does, plus what only Ollama rejects (before any I/O)."""
        request = super().prepare_chat(model, messages, options, stream=stream)
        choice = request.params.get("tool_choice")
        if choice is not None and choice != "auto":
            raise self._no_tool_choice(choice)
        self.wire_messages(request.messages)  # remote images, unknown tool results
        _check_top_level(request.extra, self.provider)
        return request

    def prepare_embedding(self, model: str | None, input: str | Sequence[str],
                          options: Mapping[str, Any]) -> EmbeddingRequest:
        request = super().prepare_embedding(model, input, options)
        _check_top_level(request.extra, self.provider)
        return request

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": self.wire_messages(request.messages),
            "stream": request.stream,  # always explicit: the server streams when it is absent
        }
        options: dict[str, Any] = {}
        for name, value in request.params.items():
            if name == "tools":
                body["tools"] = [_wire_tool(tool) for tool in value]
            elif name == "tool_choice":
                if value != "auto":  # prepare_chat refuses these; a hand-built request must too
                    raise self._no_tool_choice(value)
            elif name == "response_format":
                if value["type"] == "json_object":
                    body["format"] = "json"
                elif value["type"] == "json_schema":
                    body["format"] = value["json_schema"]["schema"]
            else:
                options[_OPTION_KEYS.get(name, name)] = value
        if options:
            body["options"] = options
        return HTTPRequest("POST", self.chat_path, json=body)

    def wire_messages(self, messages: Sequence[Message]) -> list[dict[str, Any]]:
        """The conversation in Ollama's shape; tool results get the name of the call they answer."""
        names: dict[str, str] = {}
        out = []
        for index, message in enumerate(messages):
            for call in message.tool_calls:
                names[call.id] = call.name  # a later turn reusing an id wins, as it answers that one
            out.append(self._wire_message(message, index, names))
        return out

    def _wire_message(self, message: Message, index: int, names: Mapping[str, str]) -> dict[str, Any]:
        content = message.content
        if message.role == "tool":
            call_id = message.tool_call_id or ""
            tool_name = names.get(call_id) or message.name
            if not tool_name:
                raise InvalidRequestError(
                    f"messages[{index}]: the tool result answers tool_call_id {call_id!r}, but no earlier "
                    "assistant message has a call with that id; Ollama needs the tool's name "
                    "(pass name='<tool name>' on the tool message)", provider=self.provider)
            return {"role": "tool", "content": tool_result_text(content), "tool_name": tool_name,
                    "tool_call_id": call_id}
        # `content` is required by the spec's ChatMessage, so it is sent even when empty.
        out: dict[str, Any] = {"role": message.role, "content": text_of(content)}
        if isinstance(content, list):
            images = [self._wire_image(part["image_url"]["url"], index)
                      for part in content if part.get("type") == "image_url"]
            if images:
                out["images"] = images
        if message.tool_calls:
            out["tool_calls"] = [{"id": c.id, "function": {"name": c.name, "arguments": dict(c.arguments)}}
                                 for c in message.tool_calls]
        thinking = "".join(block.text for block in message.reasoning)
        if thinking and message.role == "assistant":
            out["thinking"] = thinking
        return out

    def _wire_image(self, url: str, index: int) -> str:
        """A data: URL as the bare base64 Ollama wants; remote URLs are refused (no I/O here)."""
        where = f"messages[{index}]"
        if not url.startswith("data:"):
            host = url.split("://", 1)[-1].split("/", 1)[0]
            raise UnsupportedCapabilityError(
                f"{where}: Ollama's native API takes images only as base64 data, not URLs "
                f"(got an image URL on {host}); download it and pass a data URL such as "
                "'data:image/png;base64,...'", provider=self.provider)
        header, comma, payload = url[5:].partition(",")
        media_type, *params = header.split(";")
        if not comma or not payload.strip():
            raise InvalidRequestError(f"{where}: the image data URL has no data", provider=self.provider)
        if media_type and not media_type.lower().startswith("image/"):
            raise InvalidRequestError(f"{where}: data URL of type {media_type!r} is not an image",
                                      provider=self.provider)
        if any(p.strip().lower() == "base64" for p in params):
            data = "".join(payload.split())
            try:
                base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidRequestError(f"{where}: the image data URL is not valid base64",
                                          provider=self.provider) from None
            return data
        return base64.b64encode(unquote_to_bytes(payload)).decode("ascii")

    def _no_tool_choice(self, choice: Any) -> UnsupportedCapabilityError:
        shown = choice if isinstance(choice, str) else f"function {choice['function']['name']!r}"
        hint = " (to forbid tool calls, leave out tools)" if choice == "none" else ""
        return UnsupportedCapabilityError(
            f"Ollama has no tool_choice: the model always decides itself ('auto'); cannot honour "
            f"tool_choice {shown}{hint}", provider=self.provider)

    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        # The non-streaming answer is one `done: true` line: one decoder gives stream parity.
        decoder = OllamaStreamDecoder(self, request)
        decoder.feed(data)
        if not decoder.done:
            raise ProtocolError("chat response has no 'done: true'", provider=self.provider)
        return decoder.response()

    def parse_tool_call(self, raw: Any, index: int) -> ToolCall:
        """One complete tool call; arguments are an object, the id is synthesised when missing.

        ``index`` counts the calls of the whole answer, so the same answer gives the same ids
        whether streamed or not.
        """
        function = raw.get("function") if isinstance(raw, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(name, str) or not name:
            raise ProtocolError("tool call without a function name", provider=self.provider)
        arguments = function.get("arguments")
        call_id = raw.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = _synthetic_id(index, name, arguments)
        if isinstance(arguments, Mapping):
            return ToolCall(id=call_id, name=name, arguments=dict(arguments))
        if isinstance(arguments, str):  # not Ollama's shape, but proxies re-encode
            return ToolCall.from_json_text(call_id, name, arguments)
        return ToolCall(id=call_id, name=name, arguments={})

    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return OllamaStreamDecoder(self, request)

    # -- embeddings ---------------------------------------------------------------------------

    def validate_embedding_options(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``dimensions`` (a positive int) and ``truncate`` (bool; the server's default is true)."""
        out: dict[str, Any] = {}
        for name, value in params.items():
            if name not in _EMBEDDING_OPTIONS:
                raise unknown_option_error(name, _EMBEDDING_OPTIONS, self.provider)
            if value is None:
                continue
            if name == "dimensions":
                out.update(super().validate_embedding_options({name: value}))
            elif not isinstance(value, bool):
                raise InvalidRequestError(f"option 'truncate' must be True or False, got {value!r}",
                                          provider=self.provider)
            else:
                out[name] = value
        return out

    def build_embedding_request(self, request: EmbeddingRequest) -> HTTPRequest:
        body: dict[str, Any] = {"model": request.model, "input": list(request.inputs)}
        body.update(request.params)
        return HTTPRequest("POST", self.embed_path, json=body)

    def parse_embedding_response(self, data: Any, request: EmbeddingRequest) -> EmbeddingResponse:
        if isinstance(data, dict) and data.get("error") not in (None, ""):
            raise self.error_from_payload(data)
        vectors = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(vectors, list) or len(vectors) != len(request.inputs):
            raise ProtocolError(
                f"embedding response has {len(vectors) if isinstance(vectors, list) else 'no'} vectors "
                f"for {len(request.inputs)} inputs", provider=self.provider)
        if not all(isinstance(v, list) for v in vectors):
            raise ProtocolError("an embedding is not a list of numbers", provider=self.provider)
        tokens = _count(data.get("prompt_eval_count"))  # embeddings have input tokens only
        usage = Usage(input_tokens=tokens, total_tokens=tokens)
        return EmbeddingResponse(embeddings=vectors, model=data.get("model") or request.model,
                                 provider=self.provider, usage=usage)

    # -- models and health --------------------------------------------------------------------

    def build_list_models_request(self, cursor: str | None) -> HTTPRequest:
        return HTTPRequest("GET", self.tags_path)

    def parse_list_models(self, data: Any) -> tuple[list[ModelInfo], str | None]:
        items = data.get("models") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProtocolError("model list has no 'models' array", provider=self.provider)
        models = []
        for item in items:
            if not isinstance(item, Mapping):
                continue
            ident = item.get("model") or item.get("name")
            if not isinstance(ident, str) or not ident:
                continue
            details = item.get("details")
            context = details.get("context_length") if isinstance(details, Mapping) else None
            models.append(ModelInfo(
                id=ident, name=item.get("name") or ident, created=_timestamp(item.get("modified_at")),
                context_length=_count(context) or None, raw=item))
        return models, None

    def build_health_request(self) -> HTTPRequest:
        """``/api/version`` locally (cheapest); ``/api/tags`` with a key, which checks the key too."""
        return HTTPRequest("GET", self.tags_path if self._api_key is not None else self.version_path)


def _check_top_level(extra: Mapping[str, Any] | None, provider: str) -> None:
    """Check the documented top-level fields given through ``provider_options``/``extra``."""
    if not extra:
        return
    if "keep_alive" in extra:
        value = extra["keep_alive"]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidRequestError(
                f"keep_alive must be a duration string like '5m' or a number of seconds, got {value!r}",
                provider=provider)
    if "think" in extra:
        value = extra["think"]
        if not isinstance(value, bool) and value not in _THINK_LEVELS:
            raise InvalidRequestError(
                f"think must be True, False or one of {', '.join(map(repr, _THINK_LEVELS))}, got {value!r}",
                provider=provider)


def _wire_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    # Ollama's tool has name, description and parameters only; `strict` has no meaning there.
    function = {k: v for k, v in tool["function"].items() if k != "strict"}
    return {"type": "function", "function": function}


def _synthetic_id(index: int, name: str, arguments: Any) -> str:
    """A stable id for a call the server sent without one (older servers)."""
    try:
        canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        canonical = repr(arguments)
    digest = hashlib.sha256(f"{name}\0{canonical}".encode()).hexdigest()[:8]
    return f"call_{index}_{digest}"


def _timestamp(value: Any) -> int | None:
    """Unix seconds from RFC 3339 with nanoseconds (``2024-05-13T13:38:39.604837432-07:00``)."""
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    base, fraction, zone = match.groups()
    # Python 3.10's fromisoformat takes neither nanoseconds nor "Z".
    text = base + (f".{fraction[:6].ljust(6, '0')}" if fraction else "")
    text += "+00:00" if zone in (None, "Z") else zone
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return None
