"""Claude (``claude``, alias ``anthropic``): Anthropic's Messages API at api.anthropic.com.

A pure translator between the neutral request/response types and ``POST /v1/messages``
(WIRE.md §1, updated to API version 2026-10-21 as anthropic 2.17.0 sends it). This module holds
the connector (API version, credentials, headers, validation, per-model rules, token counting,
the model list) and the service definition; the request body is written by
:mod:`~llm_connectors.connectors.claude_request` (turns by
:mod:`~llm_connectors.connectors.claude_messages`), and answers, streamed or not, are read by
:mod:`~llm_connectors.connectors.claude_stream`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .. import catalog
from .._env import settings_from_env
from .._secrets import Secret, check_header_value, check_headers
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
from ..types import ChatResponse, Message, MessageInput, ModelInfo, OptionRule, Usage
from ..wire.shapes import conform
from .claude_messages import Blocks, translate_messages
from .claude_models import ModelPage, TokenCount, parse_model_page
from .claude_request import (
    API_VERSION,
    API_VERSIONS,
    DEFAULT_MAX_TOKENS,
    LEGACY_API_VERSION,
    REASONING_EFFORTS,
    SAMPLING_OPTIONS,
    THINKING_HINT,
    ModelFacts,
    chat_body,
    check_reasoning,
    check_thinking,
    count_tokens_body,
)
from .claude_stream import (
    ClaudeStreamDecoder,
    normalize_stop_reason,
    parse_claude_usage,
    read_content_blocks,
    read_message,
    require_answer,
)

if TYPE_CHECKING:
    from .claude_batches import ClaudeBatches

__all__ = ["ANTHROPIC_VERSION", "API_VERSIONS", "CLAUDE", "DEFAULT_MAX_TOKENS", "LEGACY_API_VERSION",
           "ClaudeConnector", "ModelPage"]

#: The ``anthropic-version`` requests carry unless ``api_version=`` pins the older one (anthropic 2.x's).
ANTHROPIC_VERSION = API_VERSION
#: Why every model refuses the sampling options under API version 2026-10-21.
_SAMPLING_WHY = (f"removed in API version {API_VERSION}; pin api_version={LEGACY_API_VERSION!r} for models "
                 "that still take them")
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
        replace(p, default=DEFAULT_MAX_TOKENS, description="Most tokens to generate, thinking included (always "
                f"sent; when not given, the model's catalog default, e.g. 16000 on Claude 5.x, else "
                f"{DEFAULT_MAX_TOKENS}).") if p.name == "max_tokens" else p
        for p in common_parameters(temperature_max=1.0, max_tokens_min=0, seed=False)
    )
    return (
        *common,
        ParameterDefinition("top_k", "integer", "Sample only from the K most likely tokens (API version "
                            f"{LEGACY_API_VERSION} and older models only).", minimum=1),
        ParameterDefinition("thinking", "object", "Thinking: " + THINKING_HINT + "."),
        ParameterDefinition("parallel_tool_calls", "boolean",
                            "False lets the model call at most one tool per turn."),
        ParameterDefinition("reasoning_effort", "string",
                            "How hard the model thinks: output_config.effort with adaptive thinking; 'none' turns "
                            "thinking off ('disabled', or 'between_tools' where the model refuses that), "
                            "'minimal' is 'low'.", choices=REASONING_EFFORTS),
        ParameterDefinition("effort", "string", "Claude's own name for output_config.effort (without the adaptive "
                            "thinking reasoning_effort adds).", choices=_EFFORT),
        ParameterDefinition("metadata", "object", "Request metadata, e.g. {'user_id': ...}."),
        ParameterDefinition("service_tier", "string", "Capacity tier.", choices=("auto", "standard_only")),
    )


CLAUDE = ServiceDefinition(
    id="claude",
    name="Anthropic Claude",
    base_url="https://api.anthropic.com",
    base_url_env="ANTHROPIC_BASE_URL",
    # Bearer, as anthropic 2.x sends the key; api_version="2023-06-01" sends it as x-api-key instead.
    auth=AuthSpec(kind="bearer", env_var="ANTHROPIC_API_KEY"),
    capabilities=frozenset({
        Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.VISION, Capability.JSON_SCHEMA,
        Capability.LIST_MODELS, Capability.REASONING, Capability.DOCUMENTS,
    }),
    parameters=_parameters(),
    aliases=("anthropic",),
    default_model="claude-sonnet-5-5",  # the current Sonnet; claude-sonnet-4-5 retired 2026-11-30
    model_patterns=("claude-",),
    docs_url="https://docs.claude.com/en/api/messages",
)


class ClaudeConnector(BaseConnector):
    """Anthropic's Messages API.

    Args:
        api_version: The ``anthropic-version`` to speak: ``"2026-10-21"`` (default, as anthropic 2.x
            sends it: the API key as ``Authorization: Bearer``; ``temperature``, ``top_p`` and ``top_k``
            refused for every model) or ``"2023-06-01"`` (the key as ``x-api-key``; sampling options
            go to the models that still take them). An ``anthropic-version`` in ``headers`` sets it too.
        auth_token: A bearer token sent as ``Authorization: Bearer``. With ``api_key`` too, 2023-06-01
            sends both (``x-api-key`` and the token), 2026-10-21 the key alone, as the SDK does.
            From ``ANTHROPIC_AUTH_TOKEN`` with :meth:`from_env`.
        betas: Beta feature names, sent as one comma-separated ``anthropic-beta`` header.
        headers: Extra headers.
        **kwargs: See :class:`~llm_connectors.BaseConnector`.

    Raises:
        ConfigurationError: An API version other than the two above, or no credentials.
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
    count_tokens_path: ClassVar[str] = "/v1/messages/count_tokens"
    models_path: ClassVar[str] = "/v1/models"
    #: Models asked for per page (the API allows 1-1000).
    models_page_size: ClassVar[int] = 1000

    def __init__(self, *, api_version: str | None = None, auth_token: str | Secret | None = None,
                 betas: Sequence[str] | str | None = None, headers: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        # Set before BaseConnector.__init__, which asks has_other_credentials() when api_key is missing.
        self._auth_token = Secret(auth_token) if auth_token is not None else None
        provider = kwargs.get("provider_id") or CLAUDE.id
        if self._auth_token is not None:
            check_header_value("auth_token", self._auth_token.reveal(), secret=True)
        elif kwargs.get("api_key") is None:
            raise ConfigurationError(
                "Anthropic Claude needs credentials: pass api_key=... or auth_token=..., "
                f"or set {CLAUDE.auth.env_var} or {AUTH_TOKEN_ENV}", provider=provider)
        if headers is not None and not isinstance(headers, Mapping):
            raise ConfigurationError(f"headers must be a dict of header names to values, got {type(headers).__name__}",
                                     provider=provider)
        extra = dict(headers or {})
        check_headers(extra)
        in_headers = [extra.pop(name) for name in list(extra) if name.lower() == "anthropic-version"]
        self.api_version: str = _api_version(api_version, in_headers, provider)
        self._facts: dict[str, tuple[ModelInfo | None, ModelFacts]] = {}
        merged = {"anthropic-version": self.api_version}
        if betas:
            merged["anthropic-beta"] = _beta_header(betas)
        for name, value in extra.items():
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
        token = self._auth_token
        if self.api_version == LEGACY_API_VERSION:
            # x-api-key, and the token too when both are configured, as anthropic 0.x/1.x sends them.
            headers: dict[str, str] = {}
            if key is not None:
                headers["x-api-key"] = key.reveal()
            if token is not None:
                headers["authorization"] = "Bearer " + token.reveal()
            return headers
        # anthropic 2.x: one Authorization header, the API key's when there is one (_client.py auth_headers).
        chosen = key if key is not None else token
        return {"authorization": "Bearer " + chosen.reveal()} if chosen is not None else {}

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
        check_reasoning(request.params, self.model_facts(request.model), request.model, self.provider)
        # Translate the messages once now, so a message Claude cannot take (an image in the
        # system prompt, an SVG data URL...) fails here, before any policy or I/O runs.
        self.wire_messages(request.messages)
        return request

    def model_rules(self, model: str, info: ModelInfo | None) -> tuple[OptionRule, ...]:
        """The catalog's rules for ``model``, plus those of the API version and the model's limits.

        Under 2026-10-21 ``temperature``, ``top_p`` and ``top_k`` are refused for every model (the
        version removed them); under 2023-06-01 only the catalog's per-model rules apply. ``max_tokens``
        may not pass the model's output limit, and ``reasoning_effort='none'`` needs a model that can
        turn thinking off.
        """
        rules = list(super().model_rules(model, info))
        if self.api_version == API_VERSION:
            rules = [rule for rule in rules if rule.option not in SAMPLING_OPTIONS]
            rules += [OptionRule(option=name, rejected=True, why=_SAMPLING_WHY) for name in SAMPLING_OPTIONS]
        if info is not None and info.max_output_tokens:
            rules.append(OptionRule(option="max_tokens", maximum=info.max_output_tokens,
                                    why=f"the model's output limit, thinking included, is {info.max_output_tokens}"))
        facts = ModelFacts.of(self.api_version, info)
        if facts.thinking_off is None:
            rules.append(OptionRule(option="reasoning_effort", allowed=REASONING_EFFORTS[1:],
                                    why="the model cannot turn thinking off (it takes thinking "
                                        f"{', '.join(facts.thinking_types or ())} only)"))
        return tuple(rules)

    def model_facts(self, model: str) -> ModelFacts:
        """What the request body needs from the catalog for ``model`` (default max_tokens, thinking types);
        kept per model while its catalog entry is the same object (asked twice per call)."""
        info = catalog.entry(self.definition.id, model)
        cached = self._facts.get(model)
        if cached is not None and cached[0] is info:
            return cached[1]
        facts = ModelFacts.of(self.api_version, info)
        if len(self._facts) >= 256:  # any string may name a model: stay bounded
            self._facts.clear()
        self._facts[model] = (info, facts)
        return facts

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
        body = chat_body(request, system, messages, self.model_facts(request.model))
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

    def batch_translator(self) -> ClaudeBatches:
        """Message Batches (``/v1/messages/batches``): ``submit_batch`` and friends."""
        from .claude_batches import ClaudeBatches  # loaded on first use: batch jobs are rare

        return ClaudeBatches(self)

    # -- token counting (BaseConnector.count_tokens sends it) ------------------------------------

    def build_count_tokens_request(self, request: ChatRequest) -> HTTPRequest:
        """``POST /v1/messages/count_tokens`` for a validated chat request, so :meth:`count_tokens` is exact.

        The body is the chat body's fields that endpoint takes, as the SDK sends them: no
        ``max_tokens``, ``stream``, ``stop_sequences``, ``metadata`` or ``service_tier``. The count is
        Claude's own (Claude 5.x has a new tokenizer; local estimates are off by up to a third).
        """
        system, messages = self.wire_messages(request.messages)
        body = count_tokens_body(request, system, messages, self.model_facts(request.model))
        return HTTPRequest("POST", self.count_tokens_path, json=body)

    def parse_count_tokens(self, data: Any) -> int:
        """``{"input_tokens": N}`` as ``N``; anything else is a :class:`ProtocolError`."""
        if isinstance(data, dict) and data.get("type") == "error":
            raise self.error_from_payload(data)
        return conform(data, TokenCount, provider=self.provider, what="token count").input_tokens

    # -- models -------------------------------------------------------------------------------

    def build_list_models_request(self, cursor: str | None) -> HTTPRequest:
        params = {"limit": str(self.models_page_size)}
        if cursor:
            params["after_id"] = cursor
        return HTTPRequest("GET", self.models_path, params=params)

    def build_health_request(self) -> HTTPRequest:
        return HTTPRequest("GET", self.models_path, params={"limit": "1"})

    def parse_list_models(self, data: Any) -> tuple[list[ModelInfo], str | None]:
        return parse_model_page(data, self.provider)


def _beta_header(betas: Sequence[str] | str) -> str:
    names = [betas] if isinstance(betas, str) else list(betas)
    for name in names:
        if not isinstance(name, str) or not name.strip() or "," in name:
            raise ConfigurationError(f"betas must be non-empty beta names without commas, got {name!r}",
                                     provider="claude")
    return ",".join(name.strip() for name in names)


def _api_version(given: str | None, in_headers: list[str], provider: str) -> str:
    """The API version from ``api_version=`` or an ``anthropic-version`` header (which must agree)."""
    values = {v.strip() for v in ([given] if given is not None else []) + in_headers}
    if len(values) > 1:
        raise ConfigurationError(f"api_version and the anthropic-version header disagree ({sorted(values)}); "
                                 "give it once, as api_version=...", provider=provider)
    version = values.pop() if values else API_VERSION
    if version not in API_VERSIONS:
        raise ConfigurationError(f"Claude api_version must be {API_VERSION!r} (the default) or "
                                 f"{LEGACY_API_VERSION!r}, got {version!r}", provider=provider)
    return version
