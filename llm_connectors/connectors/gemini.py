"""Google Gemini (``gemini``): the Gemini API's native ``generateContent`` (not the OpenAI shim).

What differs from the OpenAI dialect:

* The model is in the path: ``POST /v1beta/models/{model}:generateContent``, and streams are
  ``:streamGenerateContent?alt=sse`` (SSE of whole ``GenerateContentResponse`` objects, no
  end marker: the event with a ``finishReason`` is the last).
* The key goes in ``x-goog-api-key``, read from ``GEMINI_API_KEY`` then ``GOOGLE_API_KEY``
  (the google-genai SDK's order).
* Errors are ``{"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT"}}``; the
  ``status`` text is the code we map (RESOURCE_EXHAUSTED is a rate limit).
* Safety blocks arrive as HTTP 200 with ``promptFeedback.blockReason`` or a ``SAFETY`` finish:
  both raise :class:`~.gemini_stream.SafetyBlockError` (a ContentFilterError with categories).

Request bodies: :mod:`.gemini_request`; answers: :mod:`.gemini_stream`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar

from msgspec import Meta

from .._env import settings_from_env
from ..base import BaseConnector
from ..definition import AuthSpec, Capability, ParameterDefinition, ServiceDefinition, common_parameters
from ..errors import (
    AuthenticationError,
    InvalidRequestError,
    LLMConnectorError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    ProviderError,
    RateLimitError,
    TimeoutError,
)
from ..requests import ChatRequest, EmbeddingRequest, HTTPRequest
from ..stream import StreamDecoder
from ..types import ChatResponse, EmbeddingResponse, ModelInfo, Usage
from ..wire.classify import ErrorInfo, parse_error_body
from ..wire.shapes import Count, Shape, conform
from .gemini_request import THINKING_BUDGETS, chat_body
from .gemini_stream import GeminiStreamDecoder, UsageMetadata

__all__ = ["GEMINI", "GeminiConnector"]

C = TypeVar("C", bound="GeminiConnector")
KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

GEMINI = ServiceDefinition(
    id="gemini",
    name="Google Gemini",
    base_url="https://generativelanguage.googleapis.com/v1beta",
    base_url_env="GOOGLE_GEMINI_BASE_URL",
    auth=AuthSpec(kind="header", header="x-goog-api-key", env_var="GEMINI_API_KEY"),
    capabilities=frozenset({
        Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.VISION, Capability.JSON_MODE,
        Capability.JSON_SCHEMA, Capability.EMBEDDINGS, Capability.LIST_MODELS, Capability.REASONING,
        Capability.DOCUMENTS,
    }),
    parameters=(
        *common_parameters(temperature_max=2.0, max_stop=5),
        ParameterDefinition("top_k", "integer", "Sample only from the K most likely tokens.", minimum=1),
        ParameterDefinition("presence_penalty", "number", "Penalise tokens already present.", minimum=-2.0,
                            maximum=2.0),
        ParameterDefinition("frequency_penalty", "number", "Penalise frequent tokens.", minimum=-2.0,
                            maximum=2.0),
        ParameterDefinition("reasoning_effort", "string", "Thinking: a budget on Gemini 2.x, a thinkingLevel "
                            "later ('none': off, or MINIMAL where it cannot be off).",
                            choices=tuple(THINKING_BUDGETS)),
    ),
    default_model="gemini-2.5-flash",
    default_embedding_model="gemini-embedding-001",
    model_patterns=("gemini-", "models/gemini-", "gemma-"),
    docs_url="https://ai.google.dev/api",
)

#: google.rpc status names (the `status` of an error body) -> our classes.
_ERROR_CODES: dict[str, type[LLMConnectorError]] = {
    "INVALID_ARGUMENT": InvalidRequestError,
    "FAILED_PRECONDITION": InvalidRequestError,
    "OUT_OF_RANGE": InvalidRequestError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "NOT_FOUND": NotFoundError,
    "RESOURCE_EXHAUSTED": RateLimitError,
    "INTERNAL": ProviderError,
    "UNAVAILABLE": ProviderError,
    "DEADLINE_EXCEEDED": TimeoutError,
}


class _Embedding(Shape):
    values: list[float]


class _Embedded(Shape, rename="camel"):
    embeddings: list[_Embedding]
    usage_metadata: UsageMetadata | None = None  # in google-genai 3.6.1's EmbedContentResponse


class _Model(Shape, rename="camel"):
    name: str
    display_name: str | None = None
    input_token_limit: Count | None = None
    output_token_limit: Count | None = None
    supported_generation_methods: list[str] | None = None


class _Models(Shape, rename="camel"):
    models: list[_Model] | None = None
    next_page_token: Annotated[str, Meta(max_length=4096)] | None = None


def _model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


class GeminiConnector(BaseConnector):
    """The Gemini API (Google AI Studio keys). Extra body fields (``safetySettings``,
    ``cachedContent``) go in ``provider_options={"gemini": {...}}``."""

    definition: ClassVar[ServiceDefinition] = GEMINI
    stream_format = "sse"
    error_codes: ClassVar[Mapping[str, type[LLMConnectorError]]] = _ERROR_CODES
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id", "x-goog-request-id")

    @classmethod
    def from_env(cls: type[C], environ: Mapping[str, str] | None = None, **kwargs: Any) -> C:
        """``GEMINI_API_KEY``, else ``GOOGLE_API_KEY`` (the SDK's order), when no key is given."""
        settings = settings_from_env(cls.definition, kwargs, environ)
        if settings.get("api_key") is None:
            import os

            env = os.environ if environ is None else environ
            value = next((env[v].strip() for v in KEY_VARS if env.get(v, "").strip()), None)
            if value:
                settings["api_key"] = value
        return cls(**settings)

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        info = parse_error_body(status, body)
        from ..wire import jsonio

        try:
            data = jsonio.loads(body)
        except ProtocolError:
            return info
        error = data.get("error") if isinstance(data, dict) else None
        code = error.get("status") if isinstance(error, dict) else None
        return ErrorInfo(info.message, (code, *info.codes), info.request_id) if isinstance(code, str) else info

    # -- chat ---------------------------------------------------------------------------------

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        body = chat_body(request, self.provider)
        method = "streamGenerateContent" if request.stream else "generateContent"
        return HTTPRequest("POST", f"/{_model_path(request.model)}:{method}", json=body,
                           params={"alt": "sse"} if request.stream else None)

    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        decoder = GeminiStreamDecoder(self, request, what="chat response")
        decoder.feed(data)
        if not decoder.done:
            raise ProtocolError("chat response has no candidate with a finishReason", provider=self.provider)
        return decoder.response()

    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return GeminiStreamDecoder(self, request)

    # -- embeddings ---------------------------------------------------------------------------

    def build_embedding_request(self, request: EmbeddingRequest) -> HTTPRequest:
        model = _model_path(request.model)
        extra: dict[str, Any] = {}
        if request.params.get("dimensions"):
            extra["outputDimensionality"] = request.params["dimensions"]
        items = [{"model": model, "content": {"parts": [{"text": text}], "role": "user"}, **extra}
                 for text in request.inputs]  # the shape google-genai 3.6.1 sends
        return HTTPRequest("POST", f"/{model}:batchEmbedContents", json={"requests": items})

    def parse_embedding_response(self, data: Any, request: EmbeddingRequest) -> EmbeddingResponse:
        answer = conform(data, _Embedded, provider=self.provider, what="embedding response")
        if len(answer.embeddings) != len(request.inputs):
            raise ProtocolError(f"embedding response has {len(answer.embeddings)} vectors for "
                                f"{len(request.inputs)} inputs (`$.embeddings`)", provider=self.provider)
        meta = answer.usage_metadata
        tokens = (meta.prompt_token_count or 0) if meta else 0
        return EmbeddingResponse(embeddings=[e.values for e in answer.embeddings], model=request.model,
                                 provider=self.provider, usage=Usage(input_tokens=tokens, total_tokens=tokens))

    # -- models -------------------------------------------------------------------------------

    def build_list_models_request(self, cursor: str | None) -> HTTPRequest:
        params = {"pageSize": "1000"}
        if cursor:
            params["pageToken"] = cursor
        return HTTPRequest("GET", "/models", params=params)

    def parse_list_models(self, data: Any) -> tuple[list[ModelInfo], str | None]:
        page = conform(data, _Models, provider=self.provider, what="model list")
        models = [ModelInfo(id=m.name.removeprefix("models/"), name=m.display_name or m.name,
                            context_length=m.input_token_limit or None, raw=raw)
                  for m, raw in zip(page.models or [], data.get("models") or [], strict=True)]
        return models, page.next_page_token or None

    def build_health_request(self) -> HTTPRequest:
        return HTTPRequest("GET", "/models", params={"pageSize": "1"})

