"""Claude (``claude``, alias ``anthropic``): Anthropic's Messages API at api.anthropic.com.

A pure translator between the neutral request/response types and ``POST /v1/messages``
(WIRE.md §1): the system prompt goes to the top-level ``system`` field, ``max_tokens`` is
always sent, tools and tool results become ``tool_use`` / ``tool_result`` blocks, images
become ``image`` blocks, thinking blocks travel with their signatures, and the named SSE
events are decoded by :class:`~llm_connectors.connectors.claude_stream.ClaudeStreamDecoder`.
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
    ProtocolError,
    QuotaExceededError,
)
from ..errors import TimeoutError as ProviderTimeoutError
from ..requests import ChatRequest, HTTPRequest
from ..stream import StreamDecoder
from ..types import ChatResponse, ContentPart, Message, MessageInput, ModelInfo, ReasoningBlock, Usage
from .claude_stream import ClaudeStreamDecoder, normalize_stop_reason, parse_claude_usage, read_content_blocks

__all__ = ["ANTHROPIC_VERSION", "CLAUDE", "DEFAULT_MAX_TOKENS", "ClaudeConnector"]

#: The API version header value every request carries (WIRE.md §1.1).
ANTHROPIC_VERSION = "2023-06-01"
#: ``max_tokens`` is required by the API; this is sent when the caller gives none.
DEFAULT_MAX_TOKENS = 4096
#: Environment variable for a bearer token used instead of (or with) the API key.
AUTH_TOKEN_ENV = "ANTHROPIC_AUTH_TOKEN"
# The HTTP status each Anthropic error type is documented with (WIRE.md §1.7).
_STATUS_BY_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}
_EFFORT = ("low", "medium", "high", "xhigh", "max")
_THINKING_HINT = ("{'type': 'enabled', 'budget_tokens': N} with N >= 1024, {'type': 'adaptive'} "
                  "or {'type': 'disabled'}")
_C = TypeVar("_C", bound="ClaudeConnector")
Blocks = list[dict[str, Any]]


def _parameters() -> tuple[ParameterDefinition, ...]:
    common = tuple(
        replace(p, default=DEFAULT_MAX_TOKENS, description="Most tokens to generate (always sent; "
                f"{DEFAULT_MAX_TOKENS} when not given).") if p.name == "max_tokens" else p
        for p in common_parameters(temperature_max=1.0, max_tokens_min=0, seed=False)
    )
    return (
        *common,
        ParameterDefinition("top_k", "integer", "Sample only from the K most likely tokens.", minimum=1),
        ParameterDefinition("thinking", "object", "Extended thinking: " + _THINKING_HINT + "."),
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
        self._check_thinking(request.params.get("thinking"))
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

    def _check_thinking(self, value: Any) -> None:
        if value is None:
            return
        kind = value.get("type")
        budget = value.get("budget_tokens")
        ok = kind in ("adaptive", "disabled") or (
            kind == "enabled" and isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1024)
        if not ok:
            raise InvalidRequestError(f"option 'thinking' must be {_THINKING_HINT} for {self.provider}, "
                                      f"got {value!r}", provider=self.provider)

    # -- chat request -------------------------------------------------------------------------

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        system, messages = self.wire_messages(request.messages)
        params = request.params
        body: dict[str, Any] = {"model": request.model, "messages": messages,
                                "max_tokens": self._max_tokens(params)}
        if system is not None:
            body["system"] = system
        self._apply_params(body, params)
        if request.stream:
            body["stream"] = True
        return HTTPRequest("POST", self.chat_path, json=body)

    def _max_tokens(self, params: Mapping[str, Any]) -> int:
        value = params.get("max_tokens")
        if value is not None:
            return int(value)
        thinking = params.get("thinking") or {}
        budget = thinking.get("budget_tokens") if thinking.get("type") == "enabled" else None
        if isinstance(budget, int) and budget >= DEFAULT_MAX_TOKENS:
            # The thinking budget counts toward max_tokens and must stay below it (WIRE.md §1.2);
            # leave the default's worth of room for the answer itself.
            return budget + DEFAULT_MAX_TOKENS
        return DEFAULT_MAX_TOKENS

    def _apply_params(self, body: dict[str, Any], params: Mapping[str, Any]) -> None:
        for name in ("temperature", "top_p", "top_k", "thinking", "metadata", "service_tier"):
            if name in params:
                body[name] = params[name]
        if "stop" in params:
            body["stop_sequences"] = list(params["stop"])
        tools = params.get("tools")
        if tools:
            body["tools"] = [_wire_tool(t["function"]) for t in tools]
        choice = _wire_tool_choice(params.get("tool_choice"), params.get("parallel_tool_calls"), bool(tools))
        if choice is not None:
            body["tool_choice"] = choice
        output: dict[str, Any] = {}
        response_format = params.get("response_format")
        if response_format is not None:
            if response_format["type"] != "json_schema":  # prepare_chat rejects it; a direct caller may not
                raise self._unsupported(Capability.JSON_MODE, f"response_format {response_format['type']}")
            output["format"] = {"type": "json_schema", "schema": response_format["json_schema"]["schema"]}
        if "effort" in params:
            output["effort"] = params["effort"]
        if output:
            body["output_config"] = output

    def wire_messages(self, messages: Sequence[Message]) -> tuple[str | Blocks | None, Blocks]:
        """Split off the system prompt and turn the rest into Claude turns.

        System messages (wherever they are) become the top-level ``system``: a plain string
        for one string message, text blocks otherwise. Consecutive tool results become one
        user turn of ``tool_result`` blocks, as the API expects.
        """
        system: list[dict[str, Any]] = []
        turns: list[dict[str, Any]] = []
        results: list[dict[str, Any]] | None = None  # the open user turn of tool results
        for index, message in enumerate(messages):
            where = f"messages[{index}]"
            role = message.role
            if role == "system":
                system.extend(self._system_blocks(message.content, where))
                continue
            if role == "tool":
                block = self._tool_result(message, where)
                if results is None:
                    results = []
                    turns.append({"role": "user", "content": results})
                results.append(block)
                continue
            results = None
            turn = self._assistant_turn(message, where) if role == "assistant" \
                else {"role": "user", "content": self._user_content(message.content, where)}
            if turn is not None:
                turns.append(turn)
        if not turns:
            raise InvalidRequestError("Claude needs at least one user message besides the system prompt",
                                      provider=self.provider)
        return _system_value(system, messages), turns

    def _system_blocks(self, content: str | list[ContentPart] | None, where: str) -> list[dict[str, Any]]:
        if isinstance(content, str) or content is None:
            return [{"type": "text", "text": content}] if content else []
        if any(part["type"] != "text" for part in content):
            raise InvalidRequestError(f"{where}: Claude's system prompt takes text only, not images",
                                      provider=self.provider)
        return [{"type": "text", "text": part["text"]} for part in content if part["text"]]

    def _user_content(self, content: str | list[ContentPart] | None, where: str) -> str | Blocks:
        if content is None or isinstance(content, str):
            return content or ""
        return self._blocks(content, where)

    def _blocks(self, parts: list[ContentPart], where: str) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        for i, part in enumerate(parts):
            if part["type"] == "text":
                if part["text"]:  # the API rejects empty text blocks
                    blocks.append({"type": "text", "text": part["text"]})
            else:
                blocks.append(self._image(part["image_url"]["url"], f"{where}.content[{i}]"))
        return blocks

    def _image(self, url: str, where: str) -> dict[str, Any]:
        """A data URL becomes a base64 source, an http(s) URL a url source (WIRE.md §1.2)."""
        if not url.startswith("data:"):
            return {"type": "image", "source": {"type": "url", "url": url}}
        header, comma, data = url[5:].partition(",")
        media_type, *attributes = header.split(";")
        media_type = media_type.strip().lower()
        if media_type == "image/jpg":  # a common misspelling the API would reject
            media_type = "image/jpeg"
        if not comma or "base64" not in (a.strip().lower() for a in attributes) or not data:
            raise InvalidRequestError(f"{where}: image data URLs must be base64, like "
                                      "data:image/png;base64,...", provider=self.provider)
        if media_type not in _IMAGE_TYPES:
            raise InvalidRequestError(f"{where}: Claude accepts {', '.join(_IMAGE_TYPES)} images, "
                                      f"not {media_type or 'an untyped data URL'}", provider=self.provider)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}

    def _assistant_turn(self, message: Message, where: str) -> dict[str, Any] | None:
        content = message.content
        if not message.reasoning and not message.tool_calls and isinstance(content, str) and content:
            return {"role": "assistant", "content": content}
        # Thinking blocks first: Claude checks their signatures and wants them leading the turn.
        blocks = [b for b in (_thinking_block(r) for r in message.reasoning) if b is not None]
        if isinstance(content, str):
            if content:
                blocks.append({"type": "text", "text": content})
        elif content is not None:
            if any(part["type"] != "text" for part in content):
                raise InvalidRequestError(f"{where}: Claude accepts images in user and tool messages only",
                                          provider=self.provider)
            blocks.extend(self._blocks(content, where))
        blocks.extend({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                      for call in message.tool_calls)
        # A turn with nothing in it carries no information and the API rejects empty content.
        return {"role": "assistant", "content": blocks} if blocks else None

    def _tool_result(self, message: Message, where: str) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        content = message.content
        if isinstance(content, list):
            content = self._blocks(content, where) or None
        if content:
            block["content"] = content
        return block

    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        if not isinstance(data, dict):
            raise ProtocolError("chat response is not a JSON object", provider=self.provider)
        if data.get("type") == "error":
            raise self.error_from_payload(data)
        if not isinstance(data.get("content"), list):
            raise ProtocolError("chat response has no content array", provider=self.provider)
        blocks = read_content_blocks(data["content"])
        native = data.get("stop_reason")
        return ChatResponse(
            content="".join(blocks.text),
            finish_reason=normalize_stop_reason(native, bool(blocks.tool_calls)),
            usage=parse_claude_usage(data.get("usage")) or Usage(),
            tool_calls=blocks.tool_calls,
            provider=self.provider,
            model=data.get("model") or request.model,
            raw=data,
            id=data.get("id"),
            reasoning="".join(blocks.reasoning),
            reasoning_blocks=blocks.reasoning_blocks,
            native_finish_reason=native if isinstance(native, str) else None,
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
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProtocolError("model list has no 'data' array", provider=self.provider)
        models = [
            ModelInfo(id=item["id"], name=item.get("display_name") or item["id"],
                      created=_unix_time(item.get("created_at")),
                      context_length=_int_or_none(item.get("max_input_tokens")), raw=item)
            for item in items if isinstance(item, Mapping) and isinstance(item.get("id"), str)
        ]
        cursor = None
        if data.get("has_more"):
            # Next page: after_id = last_id (WIRE.md §1.5); a page without it cannot be continued.
            last = data.get("last_id") or (models[-1].id if models else None)
            cursor = last if isinstance(last, str) and last else None
        return models, cursor


def _beta_header(betas: Sequence[str] | str) -> str:
    names = [betas] if isinstance(betas, str) else list(betas)
    for name in names:
        if not isinstance(name, str) or not name.strip() or "," in name:
            raise ConfigurationError(f"betas must be non-empty beta names without commas, got {name!r}",
                                     provider="claude")
    return ",".join(name.strip() for name in names)


def _system_value(blocks: Blocks, messages: Sequence[Message]) -> str | Blocks | None:
    if not blocks:
        return None
    system_messages = [m for m in messages if m.role == "system"]
    if len(blocks) == 1 and len(system_messages) == 1 and isinstance(system_messages[0].content, str):
        return str(blocks[0]["text"])  # the plain-string form, as most callers (and the SDK docs) send it
    return blocks


def _thinking_block(block: ReasoningBlock) -> dict[str, Any] | None:
    """A reasoning block as Claude wants it back; ``None`` for blocks Claude cannot verify.

    Reasoning without a signature (from another provider, or hand-written) would be rejected,
    so it is left out.
    """
    if block.redacted_data:
        return {"type": "redacted_thinking", "data": block.redacted_data}
    if block.signature:
        return {"type": "thinking", "thinking": block.text, "signature": block.signature}
    return None


def _wire_tool(function: Mapping[str, Any]) -> dict[str, Any]:
    schema = dict(function["parameters"])
    schema.setdefault("type", "object")  # Claude requires an object schema; OpenAI tolerates its absence
    tool: dict[str, Any] = {"name": function["name"], "input_schema": schema}
    if function.get("description"):
        tool["description"] = function["description"]
    if "strict" in function:
        tool["strict"] = function["strict"]
    return tool


def _wire_tool_choice(choice: Any, parallel: Any, has_tools: bool) -> dict[str, Any] | None:
    """OpenAI's tool_choice (+ ``parallel_tool_calls``) as Claude's ``tool_choice`` object."""
    if choice is None:
        if parallel is False and has_tools:
            return {"type": "auto", "disable_parallel_tool_use": True}
        return None
    if isinstance(choice, dict):
        out: dict[str, Any] = {"type": "tool", "name": choice["function"]["name"]}
    else:
        out = {"type": _TOOL_CHOICE[choice]}
    if parallel is False and out["type"] != "none":  # "none" takes no such flag
        out["disable_parallel_tool_use"] = True
    return out


def _unix_time(value: Any) -> int | None:
    """RFC 3339 (``2025-02-19T00:00:00Z``) to Unix seconds; ``None`` when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    head, dot, rest = text.partition(".")
    if dot:  # Python 3.10 reads at most 6 fractional digits; seconds are all we keep anyway
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + rest[digits:]
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
