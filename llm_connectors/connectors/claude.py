"""Claude (``claude``, alias ``anthropic``): Anthropic's Messages API at api.anthropic.com.

A pure translator between the neutral request/response types and ``POST /v1/messages``
(WIRE.md §1). This module holds the connector (credentials, headers, validation, the model
list) and the service definition; the request body is written by
:mod:`~llm_connectors.connectors.claude_request`, and answers, streamed or not, are read by
:mod:`~llm_connectors.connectors.claude_stream`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from .._env import settings_from_env
from .._secrets import Secret, check_header_value
from ..base import BaseConnector
from ..definition import AuthSpec, Capability, ParameterDefinition, ServiceDefinition, common_parameters
from ..errors import (
    ConfigurationError,
    InvalidRequestError,
    LLMConnectorError,
    OverloadedError,
    QuotaExceededError,
    TimeoutError as ProviderTimeoutError,
)
from ..requests import ChatRequest, HTTPRequest
from ..stream import StreamDecoder
from ..types import ChatResponse, Message, MessageInput, ModelInfo, Usage
from ..wire.shapes import Count, Shape, conform
from .claude_request import DEFAULT_MAX_TOKENS, THINKING_HINT, Blocks, chat_body, check_thinking, translate_messages
from .claude_stream import (
    ClaudeStreamDecoder,
    Name,
    normalize_stop_reason,
    parse_claude_usage,
    read_content_blocks,
    read_message,
    require_answer,
)

__all__ = ["ANTHROPIC_VERSION", "CLAUDE", "DEFAULT_MAX_TOKENS", "ClaudeConnector", "ModelPage"]

#: The API version header value every request carries (WIRE.md §1.1).
ANTHROPIC_VERSION = "2023-06-01"
#: Environment variable for a bearer token used instead of (or with) the API key.
AUTH_TOKEN_ENV = "ANTHROPIC_AUTH_TOKEN"
# The HTTP status each Anthropic error type is documented with (WIRE.md §1.7).
_STATUS_BY_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}
_EFFORT = ("low", "medium", "high", "xhigh", "max")
_C = TypeVar("_C", bound="ClaudeConnector")


def _parameters() -> tuple[ParameterDefinition, ...]:
    common = tuple(
        replace(p, default=DEFAULT_MAX_TOKENS, description="Most tokens to generate (always sent; "
                f"{DEFAULT_MAX_TOKENS} when not given).") if p.name == "max_tokens" else p
        for p in common_parameters(temperature_max=1.0, max_tokens_min=0, seed=False)
    )
    return (
        *common,
        ParameterDefinition("top_k", "integer", "Sample only from the K most likely tokens.", minimum=1),
        ParameterDefinition("thinking", "object", "Extended thinking: " + THINKING_HINT + "."),
        ParameterDefinition("parallel_tool_calls", "boolean",
                            "False lets the model call at most one tool per turn."),
        ParameterDefinition("effort", "string", "How much effort the model spends (output_config.effort).",
                            choices=_EFFORT),
        ParameterDefinition("metadata", "object", "Request metadata, e.g. {'user_id': ...}."),
        ParameterDefinition("service_tier", "string", "Capacity tier.", choices=("auto", "standard_only")),
    )


CLAUDE = ServiceDefinition(
    id="claude",
    name="Anthropic Claude",
    base_url="https://api.anthropic.com",
    base_url_env="ANTHROPIC_BASE_URL",
    auth=AuthSpec(kind="header", header="x-api-key", env_var="ANTHROPIC_API_KEY"),
    capabilities=frozenset({
        Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.VISION, Capability.JSON_SCHEMA,
        Capability.LIST_MODELS, Capability.REASONING,
    }),
    parameters=_parameters(),
    aliases=("anthropic",),
    default_model="claude-sonnet-5-5",  # the current Sonnet; claude-sonnet-4-5 retires 2026-11-30
    model_patterns=("claude-",),
    docs_url="https://docs.claude.com/en/api/messages",
)


class _Model(Shape):
    id: Name
    display_name: str | None = None
    created_at: str | None = None  # RFC 3339; a date we cannot read is left out, not refused
    max_input_tokens: Count | None = None


class ModelPage(Shape):
    """``GET /v1/models``: one page of the model list (WIRE.md §1.5; only the fields we read)."""

    data: list[_Model]
    has_more: bool | None = None
    last_id: str | None = None


class ClaudeConnector(BaseConnector):
    """Anthropic's Messages API.

    Args:
        auth_token: A bearer token sent as ``Authorization: Bearer`` (instead of, or with,
            ``api_key``, which is sent as ``x-api-key``). From ``ANTHROPIC_AUTH_TOKEN`` with
            :meth:`from_env`.
        betas: Beta feature names, sent as one comma-separated ``anthropic-beta`` header.
        headers: Extra headers; an ``anthropic-version`` here replaces the default
            ``2023-06-01``.
        **kwargs: See :class:`~llm_connectors.BaseConnector`.
    """

    definition: ClassVar[ServiceDefinition] = CLAUDE
    request_id_headers: ClassVar[tuple[str, ...]] = ("request-id",)
    #: Anthropic ``error.type`` values that say more than the HTTP status does (the rest, like
    #: ``rate_limit_error``, agree with their status; WIRE.md §1.7).
    error_codes: ClassVar[Mapping[str, type[LLMConnectorError]]] = {
        "billing_error": QuotaExceededError,  # also sent with 400 (spend limits)
        "timeout_error": ProviderTimeoutError,  # 504
        "overloaded_error": OverloadedError,  # 529, or inside a 200 stream
        "request_too_large": InvalidRequestError,  # 413
    }
    chat_path: ClassVar[str] = "/v1/messages"
    models_path: ClassVar[str] = "/v1/models"
    #: Models asked for per page (the API allows 1-1000).
    models_page_size: ClassVar[int] = 1000

    def __init__(self, *, auth_token: str | Secret | None = None, betas: Sequence[str] | str | None = None,
                 headers: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        # Set before BaseConnector.__init__, which asks has_other_credentials() when api_key is missing.
        self._auth_token = Secret(auth_token) if auth_token is not None else None
        if self._auth_token is not None:
            check_header_value("auth_token", self._auth_token.reveal(), secret=True)
        elif kwargs.get("api_key") is None:
            raise ConfigurationError(
                "Anthropic Claude needs credentials: pass api_key=... (sent as x-api-key) or auth_token=... "
                f"(sent as a bearer token), or set {CLAUDE.auth.env_var} or {AUTH_TOKEN_ENV}",
                provider=kwargs.get("provider_id") or CLAUDE.id)
        merged = {"anthropic-version": ANTHROPIC_VERSION}
        if betas:
            merged["anthropic-beta"] = _beta_header(betas)
        for name, value in (headers or {}).items():
            merged.pop(name.lower(), None)  # the caller's own spelling replaces ours, case-insensitively
            merged[name] = value
        super().__init__(headers=merged, **kwargs)

    @classmethod
    def from_env(cls: type[_C], environ: Mapping[str, str] | None = None, **kwargs: Any) -> _C:
        """Like :meth:`BaseConnector.from_env`, plus ``auth_token`` from ``ANTHROPIC_AUTH_TOKEN``."""
        settings = settings_from_env(cls.definition, kwargs, environ)
        if settings.get("auth_token") is None:
            token = (os.environ if environ is None else environ).get(AUTH_TOKEN_ENV, "").strip()
            if token:
                settings["auth_token"] = token
        return cls(**settings)

    # -- credentials and errors ---------------------------------------------------------------

    def has_other_credentials(self) -> bool:
        return getattr(self, "_auth_token", None) is not None

    def credential_headers(self, key: Secret | None) -> dict[str, str]:
        # Both when both are configured, as the official SDK does (WIRE.md §1.1).
        headers: dict[str, str] = {}
        if key is not None:
            headers["x-api-key"] = key.reveal()
        if self._auth_token is not None:
            headers["authorization"] = "Bearer " + self._auth_token.reveal()
        return headers

    def error_from_payload(self, payload: Any, *, status: int | None = None) -> LLMConnectorError:
        """An ``error`` event inside a 200 stream, typed exactly as its HTTP twin would be.

        Each ``error.type`` has one documented status (``overloaded_error`` is 529,
        ``invalid_request_error`` 400, ...; WIRE.md §1.7), so the error is classified with that
        status and then reports none, since the HTTP status really was 200.
        """
        if status is None:
            error = payload.get("error") if isinstance(payload, Mapping) else None
            kind = error.get("type") if isinstance(error, Mapping) else None
            twin = _STATUS_BY_TYPE.get(kind) if isinstance(kind, str) else None
            if twin is not None:
                err = super().error_from_payload(payload, status=twin)
                err.status_code = None
                return err
        return super().error_from_payload(payload, status=status)

    def secrets(self) -> list[Secret]:
        """The API key(s) and the auth token: all are scrubbed from provider messages."""
        held = super().secrets()
        return [*held, self._auth_token] if self._auth_token is not None else held

    # -- validation ---------------------------------------------------------------------------

    def prepare_chat(self, model: str | None, messages: Iterable[MessageInput] | str,
                     options: Mapping[str, Any], *, stream: bool) -> ChatRequest:
        """Validate a chat call: the base checks plus Claude's ``response_format``, ``thinking`` and messages.

        Claude has structured output (a JSON schema) but no schema-less JSON mode, so
        ``response_format`` is checked here rather than against the ``json_mode`` capability:
        ``json_schema`` is accepted, ``text`` means no constraint, ``json_object`` raises
        :class:`UnsupportedCapabilityError` before anything is sent.
        """
        response_format = options.get("response_format")
        if response_format is None:
            request = super().prepare_chat(model, messages, options, stream=stream)
        else:
            rest = {name: value for name, value in options.items() if name != "response_format"}
            request = super().prepare_chat(model, messages, rest, stream=stream)
            params = dict(request.params)
            checked = self._check_response_format(response_format)
            if checked is not None:
                params["response_format"] = checked
            request = replace(request, params=params)
        check_thinking(request.params.get("thinking"), self.provider)
        # Translate the messages once now, so a message Claude cannot take (an image in the
        # system prompt, an SVG data URL...) fails here, before any policy or I/O runs.
        self.wire_messages(request.messages)
        return request

    def _check_response_format(self, value: Any) -> dict[str, Any] | None:
        spec = self.definition.parameter("response_format")
        assert spec is not None  # declared by common_parameters()
        checked: dict[str, Any] = spec.validate(value, self.provider)
        kind = checked["type"]
        if kind == "json_object":
            raise self._unsupported(
                Capability.JSON_MODE,
                "response_format json_object (JSON without a schema); pass {'type': 'json_schema', "
                "'json_schema': {'name': ..., 'schema': {...}}} instead")
        return checked if kind == "json_schema" else None

    # -- chat request -------------------------------------------------------------------------

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        system, messages = self.wire_messages(request.messages)
        body = chat_body(request, system, messages)
        response_format = request.params.get("response_format")
        if response_format is not None and response_format["type"] != "json_schema":
            # prepare_chat refuses it already; a request built by hand may not have been through it.
            raise self._unsupported(Capability.JSON_MODE, f"response_format {response_format['type']}")
        return HTTPRequest("POST", self.chat_path, json=body)

    def wire_messages(self, messages: Sequence[Message]) -> tuple[str | Blocks | None, Blocks]:
        """The system prompt (top-level ``system``) and the Claude turns; see :func:`translate_messages`."""
        return translate_messages(messages, self.provider)

    # -- chat response ------------------------------------------------------------------------

    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        if isinstance(data, dict) and data.get("type") == "error":
            raise self.error_from_payload(data)
        message = read_message(data, self.provider)
        blocks = read_content_blocks(message.content)
        native = message.stop_reason
        require_answer(native, blocks.has_content(), self.provider, "chat response")
        return ChatResponse(
            content="".join(blocks.text),
            finish_reason=normalize_stop_reason(native, bool(blocks.tool_calls)),
            usage=parse_claude_usage(data.get("usage")) or Usage(),
            tool_calls=blocks.tool_calls,
            provider=self.provider,
            model=message.model or request.model,
            raw=data,
            id=message.id,
            reasoning="".join(blocks.reasoning),
            reasoning_blocks=blocks.reasoning_blocks,
            native_finish_reason=native,
        )

    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return ClaudeStreamDecoder(self.provider, request.model, self.error_from_payload)

    # -- models -------------------------------------------------------------------------------

    def build_list_models_request(self, cursor: str | None) -> HTTPRequest:
        params = {"limit": str(self.models_page_size)}
        if cursor:
            params["after_id"] = cursor
        return HTTPRequest("GET", self.models_path, params=params)

    def build_health_request(self) -> HTTPRequest:
        return HTTPRequest("GET", self.models_path, params={"limit": "1"})

    def parse_list_models(self, data: Any) -> tuple[list[ModelInfo], str | None]:
        page = conform(data, ModelPage, provider=self.provider, what="model list")
        models = [
            ModelInfo(id=item.id, name=item.display_name or item.id, created=_unix_time(item.created_at),
                      context_length=item.max_input_tokens, raw=record)
            for item, record in zip(page.data, data["data"], strict=True)
        ]
        cursor = None
        if page.has_more:
            # Next page: after_id = last_id (WIRE.md §1.5); a page without it cannot be continued.
            cursor = page.last_id or (models[-1].id if models else None)
        return models, cursor


def _beta_header(betas: Sequence[str] | str) -> str:
    names = [betas] if isinstance(betas, str) else list(betas)
    for name in names:
        if not isinstance(name, str) or not name.strip() or "," in name:
            raise ConfigurationError(f"betas must be non-empty beta names without commas, got {name!r}",
                                     provider="claude")
    return ",".join(name.strip() for name in names)


def _unix_time(value: str | None) -> int | None:
    """RFC 3339 (``2025-02-19T00:00:00Z``) to Unix seconds; ``None`` when absent or unreadable."""
    if not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    head, dot, rest = text.partition(".")
    if dot:  # Python 3.10 reads at most 6 fractional digits; seconds are all we keep anyway
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + rest[digits:]
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except (ValueError, OverflowError, OSError):  # the last two: a year the platform cannot convert
        return None

