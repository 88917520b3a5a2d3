"""Ollama (``ollama``): the native API — ``/api/chat``, ``/api/embed``, ``/api/tags``.

Wire facts: WIRE.md §4 and §5. What differs from the OpenAI dialect, and why this is not an
``OpenAICompatibleConnector``:

* Streams are NDJSON, one complete JSON object per line; the ``done: true`` line is the end
  marker and carries ``done_reason`` and the eval counts. ``stream`` defaults to *true* on the
  server, so it is always sent explicitly.
* Sampling options live in an ``options`` object (``max_tokens`` becomes ``num_predict``).
* JSON mode is ``format: "json"``; a JSON schema is passed as the ``format`` object itself.
* Images are bare base64 strings in ``message.images``; remote image URLs are not accepted.
* Tool-call arguments are JSON *objects* both ways; ids may be missing on older servers and
  are never sent (the official client has none). A tool result names its tool (``tool_name``),
  looked up from the assistant call it answers.
* ``reasoning_effort`` is the top-level ``think`` (``"none"`` -> ``false``, else the level).
* Errors are ``{"error": "text"}``, with no code, also as a line inside a 200 stream.
* ``tool_choice`` does not exist: ``"auto"`` (the server's behaviour) is accepted and not
  sent; anything else raises :class:`UnsupportedCapabilityError` before any I/O.

This module holds the connector, the service definition, ``OLLAMA_HOST`` parsing, error
codes, embeddings and the model list; the chat body is written by
:mod:`~llm_connectors.connectors.ollama_request`, and chat answers, streamed or not, are read
by :mod:`~llm_connectors.connectors.ollama_stream`. Every answer is checked against the shape
Ollama documents before it is read (``wire/shapes.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar

from msgspec import Meta

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
from ..types import ChatResponse, EmbeddingResponse, Message, MessageInput, ModelInfo, ToolCall, Usage
from ..wire.classify import ErrorInfo, parse_error_body
from ..wire.shapes import Count, Shape, conform
from .ollama_request import chat_body, check_top_level, no_tool_choice_error, translate_messages
from .ollama_stream import OllamaStreamDecoder, in_band_error, normalize_done_reason, read_tool_call

# OllamaStreamDecoder and normalize_done_reason were first defined here and are still imported from here.
__all__ = ["OLLAMA", "OllamaConnector", "OllamaStreamDecoder", "normalize_done_reason", "parse_ollama_host"]

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
        # `think`: "none" sends false; a level is sent as itself (models without levels just think).
        ParameterDefinition("reasoning_effort", "string", "Thinking level for thinking models ('none': off).",
                            choices=("none", "low", "medium", "high", "max")),
    ),
    default_model="llama3.2",
    default_embedding_model="nomic-embed-text",
    model_patterns=(),
    docs_url="https://github.com/ollama/ollama/blob/main/docs/api.md",
)

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


# -- the documented shapes of the answers read here (chat: ollama_stream.ChatLine) ---------------

class _Embedded(Shape):
    """``POST /api/embed``: one vector per input, ``[[float]]`` even for one input."""

    embeddings: list[Annotated[list[float], Meta(min_length=1)]]
    model: str | None = None
    prompt_eval_count: Count | None = None  # omitempty


class _Details(Shape):
    context_length: Count | None = None


class _Tag(Shape):
    # Both name the model (the same text on current servers); neither is marked required.
    name: str | None = None
    model: str | None = None
    modified_at: str | None = None  # RFC 3339 with nanoseconds; read by _timestamp
    details: _Details | None = None


class _Tags(Shape):
    """``GET /api/tags``."""

    models: list[_Tag]


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


class OllamaConnector(BaseConnector):
    """Ollama's native API, local (``http://localhost:11434``) or ollama.com.

    ``OLLAMA_HOST`` is read by :meth:`from_env` with the official client's host rules
    (:func:`parse_ollama_host`); ``OLLAMA_API_KEY``, when set, is sent as a bearer token.
    Top-level body fields such as ``keep_alive`` (and ``think: True`` for models without levels)
    go in ``provider_options={"ollama": {...}}``; ``reasoning_effort`` sets ``think``.
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
            raise no_tool_choice_error(choice, self.provider)
        self.wire_messages(request.messages)  # remote images, unknown tool results
        check_top_level(request.extra, self.provider)
        return request

    def prepare_embedding(self, model: str | None, input: str | Sequence[str],
                          options: Mapping[str, Any]) -> EmbeddingRequest:
        request = super().prepare_embedding(model, input, options)
        check_top_level(request.extra, self.provider)
        return request

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        body = chat_body(request, self.wire_messages(request.messages), self.provider)
        return HTTPRequest("POST", self.chat_path, json=body)

    def wire_messages(self, messages: Sequence[Message]) -> list[dict[str, Any]]:
        """The conversation in Ollama's shape; see :func:`translate_messages`."""
        return translate_messages(messages, self.provider)

    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        # The non-streaming answer is one `done: true` line: one decoder gives stream parity.
        decoder = OllamaStreamDecoder(self, request, what="chat response")
        decoder.feed(data)
        if not decoder.done:
            raise ProtocolError("chat response has no 'done: true'", provider=self.provider)
        return decoder.response()

    def parse_tool_call(self, raw: Any, index: int) -> ToolCall:
        """One complete tool call; arguments are an object, the id is synthesised when missing.

        ``index`` counts the calls of the whole answer, so the same answer gives the same ids
        whether streamed or not.
        """
        return read_tool_call(raw, index, self.provider)

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
        error = in_band_error(self, data, "error response")
        if error is not None:
            raise error
        answer = conform(data, _Embedded, provider=self.provider, what="embedding response")
        vectors = answer.embeddings
        if len(vectors) != len(request.inputs):
            raise ProtocolError(f"embedding response has {len(vectors)} vectors for {len(request.inputs)} inputs "
                                f"(`$.embeddings`)", provider=self.provider)
        tokens = answer.prompt_eval_count or 0  # embeddings have input tokens only
        usage = Usage(input_tokens=tokens, total_tokens=tokens)
        return EmbeddingResponse(embeddings=vectors, model=answer.model or request.model,
                                 provider=self.provider, usage=usage)

    # -- models and health --------------------------------------------------------------------

    def build_list_models_request(self, cursor: str | None) -> HTTPRequest:
        return HTTPRequest("GET", self.tags_path)

    def parse_list_models(self, data: Any) -> tuple[list[ModelInfo], str | None]:
        tags = conform(data, _Tags, provider=self.provider, what="model list")
        models = []
        for tag, item in zip(tags.models, data["models"], strict=True):
            ident = tag.model or tag.name
            if not ident:  # nothing to call it by
                continue
            context = tag.details.context_length if tag.details else None
            models.append(ModelInfo(id=ident, name=tag.name or ident, created=_timestamp(tag.modified_at),
                                    context_length=context or None, raw=item))
        return models, None

    def build_health_request(self) -> HTTPRequest:
        """``/api/version`` locally (cheapest); ``/api/tags`` with a key, which checks the key too."""
        return HTTPRequest("GET", self.tags_path if self.has_api_key else self.version_path)


def _timestamp(value: str | None) -> int | None:
    """Unix seconds from RFC 3339 with nanoseconds (``2024-05-13T13:38:39.604837432-07:00``)."""
    match = _TIMESTAMP.fullmatch(value) if value else None
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
