"""OpenAI (``openai``): Chat Completions or Responses, embeddings and models at api.openai.com.

Differences from the generic dialect (WIRE.md §2): ``max_completion_tokens`` instead of the
deprecated ``max_tokens`` (which reasoning models reject), at most 4 stop sequences, base64
embeddings (half the bytes, decoded locally, as the official SDK does), 2,048 inputs per
embedding request, and the optional organization/project headers. Also (openai 3.63.0): the
``developer`` role is sent as such, PDF documents go as ``file`` parts (``file_data`` or
``file_id``; Chat Completions takes no URL and no other type).

Which API a call uses (docs/providers/openai.md): ``api="auto"`` (the default) sends a call to the
Responses API (``openai_responses.py``, ``openai_responses_stream.py``) when the model catalog marks
the model ``api: "responses"``, when the call has built-in tools (``{"type": "web_search"}``...), or
when a catalog rule lifted by ``api: "responses"`` would refuse the call on Chat Completions (tool
calls on gpt-6-astra); everything else goes to Chat Completions. ``api="responses"`` or ``"chat"`` on
the connector, or ``provider_options={"openai": {"api": ...}}`` on a call, decides instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .. import catalog
from .._secrets import check_headers
from ..catalog import checks as catalog_checks
from ..definition import AuthSpec, Capability, ParameterDefinition, ServiceDefinition, common_parameters
from ..errors import (
    ConfigurationError,
    ContentFilterError,
    InvalidRequestError,
    LLMConnectorError,
    UnsupportedCapabilityError,
)
from ..requests import ChatRequest, HTTPRequest
from ..stream import StreamDecoder
from ..types import ChatResponse, MessageInput, ModelInfo, OptionRule
from ..wire.data_urls import parse_data_url
from .openai_compat import OpenAICompatibleConnector
from .openai_responses import (
    RESPONSES_RULES,
    ResponsesChatRequest,
    build_responses_body,
    builtin_tool,
    check_max_output_tokens,
)
from .openai_responses_stream import ResponsesStreamDecoder, parse_response

if TYPE_CHECKING:
    from .openai_batches import OpenAIBatches

__all__ = ["OpenAIConnector"]

# The literals of openai 3.63.0 (types/shared/reasoning_effort.py, chat/completion_create_params.py).
_EFFORT = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority", "fast")
_CACHE_MODES = ("implicit", "explicit")
_CACHE_TTLS = ("30m",)
_RESPONSES_CACHE_TTLS = ("30m", "12h")  # responses/response_create_params.py PromptCacheOptions
_APIS = ("auto", "chat", "responses")
#: The catalog rule option naming built-in tool types (``allowed`` or ``rejected``), checked per tool.
BUILTIN_TOOL_RULE = "builtin_tool"

OPENAI = ServiceDefinition(
    id="openai",
    name="OpenAI",
    base_url="https://api.openai.com/v1",
    base_url_env="OPENAI_BASE_URL",
    auth=AuthSpec(kind="bearer", env_var="OPENAI_API_KEY"),
    capabilities=frozenset({
        Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.VISION, Capability.JSON_MODE,
        Capability.JSON_SCHEMA, Capability.EMBEDDINGS, Capability.LIST_MODELS, Capability.REASONING,
        Capability.DOCUMENTS,
    }),
    parameters=(
        *common_parameters(temperature_max=2.0, max_stop=4),
        ParameterDefinition("frequency_penalty", "number", "Penalise repeated tokens.", minimum=-2.0,
                            maximum=2.0),
        ParameterDefinition("presence_penalty", "number", "Penalise tokens already present.",
                            minimum=-2.0, maximum=2.0),
        ParameterDefinition("parallel_tool_calls", "boolean", "Allow several tool calls in one turn."),
        ParameterDefinition("reasoning_effort", "string", "Reasoning effort for reasoning models.",
                            choices=_EFFORT),
        ParameterDefinition("reasoning_summary", "string",
                            "A summary of the model's reasoning (Responses API only).",
                            choices=("auto", "concise", "detailed")),
        ParameterDefinition("logprobs", "boolean", "Return log probabilities of output tokens."),
        ParameterDefinition("top_logprobs", "integer", "Most likely tokens per position.", minimum=0,
                            maximum=20),
        ParameterDefinition("logit_bias", "object", "Token id -> bias (-100..100)."),
        ParameterDefinition("service_tier", "string", "Processing tier ('fast' and 'priority' are Fast mode).",
                            choices=_SERVICE_TIERS),
        ParameterDefinition("verbosity", "string", "How long the answer should be.",
                            choices=("low", "medium", "high")),
        ParameterDefinition("store", "boolean", "Store the completion for distillation/evals."),
        ParameterDefinition("metadata", "object", "Up to 16 string key/value pairs."),
        ParameterDefinition("safety_identifier", "string", "A stable id for your end user."),
        ParameterDefinition("prompt_cache_key", "string", "Groups requests for prompt caching."),
        ParameterDefinition("prompt_cache_options", "object",
                            "{'mode': 'implicit'|'explicit', 'ttl': '30m'} (gpt-5.6 and later)."),
        ParameterDefinition("prompt_cache_retention", "string",
                            "Deprecated by OpenAI (use prompt_cache_options): how long cached prefixes live.",
                            choices=("in_memory", "24h")),
        ParameterDefinition("user", "string", "Deprecated end-user id (use safety_identifier)."),
    ),
    default_model="gpt-5.4-mini",
    default_embedding_model="text-embedding-3-small",
    model_patterns=("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "omni-", "codex-",
                    "computer-use-"),
    docs_url="https://platform.openai.com/docs/api-reference/chat",
)


class OpenAIConnector(OpenAICompatibleConnector):
    """OpenAI's API.

    Args:
        organization: Sent as ``OpenAI-Organization`` when given.
        project: Sent as ``OpenAI-Project`` when given.
        api: ``"auto"`` (the default: the model catalog decides, see the module docstring),
            ``"responses"`` or ``"chat"``. A call overrides it with
            ``provider_options={"openai": {"api": ...}}``.
        **kwargs: See :class:`~llm_connectors.BaseConnector`.
    """

    definition: ClassVar[ServiceDefinition] = OPENAI
    #: OpenAI has the ``developer`` role; the base turns it into ``system`` for everyone else.
    message_roles: ClassVar[frozenset[str]] = frozenset({"system", "developer", "user", "assistant", "tool"})
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id",)
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    embedding_encoding = "base64"
    embedding_batch_size: ClassVar[int | None] = 2048
    responses_path: ClassVar[str] = "/responses"
    #: Error codes of failed Responses (openai 3.63.0 ResponseError) that say more than a 500 does.
    error_codes: ClassVar[Mapping[str, type[LLMConnectorError]]] = {
        "invalid_prompt": InvalidRequestError,
        "bio_policy": ContentFilterError,
        "misalignment_policy_violation": ContentFilterError,
        "image_content_policy_violation": ContentFilterError,
        "invalid_image": InvalidRequestError,
        "invalid_image_format": InvalidRequestError,
        "invalid_base64_image": InvalidRequestError,
        "invalid_image_url": InvalidRequestError,
        "image_too_large": InvalidRequestError,
        "image_too_small": InvalidRequestError,
        "unsupported_image_media_type": InvalidRequestError,
        "empty_image_file": InvalidRequestError,
    }

    def __init__(self, *, organization: str | None = None, project: str | None = None,
                 headers: Mapping[str, str] | None = None, api: Literal["auto", "chat", "responses"] = "auto",
                 **kwargs: Any) -> None:
        if api not in _APIS:
            raise ConfigurationError(f"api must be one of {', '.join(map(repr, _APIS))}, got {str(api)[:40]!r}")
        self.api: str = api
        if headers is not None and not isinstance(headers, Mapping):
            raise ConfigurationError(f"headers must be a dict of header names to values, got {type(headers).__name__}",
                                     provider=kwargs.get("provider_id") or OPENAI.id)
        merged = dict(headers or {})
        if organization:
            merged["openai-organization"] = organization
        if project:
            merged["openai-project"] = project
        check_headers(merged)
        super().__init__(headers=merged, **kwargs)

    def model_rules(self, model: str, info: ModelInfo | None) -> tuple[OptionRule, ...]:
        """The base's rules less those that depend on the API (checked in :meth:`prepare_chat`)."""
        return tuple(rule for rule in super().model_rules(model, info)
                     if "api" not in rule.unless and rule.option != BUILTIN_TOOL_RULE)

    def prepare_chat(self, model: str | None, messages: Iterable[MessageInput] | str,
                     options: Mapping[str, Any], *, stream: bool) -> ChatRequest:
        """Validate as the base does, choose the API, and check what only that API refuses (before any I/O)."""
        options, call_api, builtins = self._own_options(options)
        request = super().prepare_chat(model, messages, options, stream=stream)
        info = catalog.entry(self.definition.id, request.model)
        # (per call: kept to a few lookups for the common case of a catalogued chat model without rules)
        api_rules = tuple(rule for rule in info.rules if "api" in rule.unless) if info is not None and info.rules \
            else ()
        api = call_api or self.api
        if api == "auto":
            responses = bool(builtins) or (info is not None and info.api == "responses") or (
                bool(api_rules) and bool(catalog_checks.violations(api_rules, request.params)))
            api = "responses" if responses else "chat"
        params = request.params
        drop = self.drop_params
        if api_rules or api == "responses":
            drop = drop if options.get("drop_params") is None else bool(options["drop_params"])
        if api_rules:  # rules the catalog lifts on the Responses API: `unless` reads the API as an option
            params = catalog_checks.apply_rules(self.provider, request.model, api_rules, {**params, "api": api},
                                                drop=drop)
            params.pop("api")
        if api == "chat":
            self._check_chat(request, params, builtins, info)
        else:
            params = self._check_responses(request, params, builtins, info, drop)
        cache = params.get("prompt_cache_options")
        if cache is not None:
            _check_cache_options(cache, self.provider, _RESPONSES_CACHE_TTLS if api == "responses" else _CACHE_TTLS)
        if api == "responses":
            values = {f.name: getattr(request, f.name) for f in fields(request)}
            return ResponsesChatRequest(**{**values, "params": params})
        return request if params is request.params else replace(request, params=params)

    def _own_options(self, options: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None, list[dict[str, Any]]]:
        """The options without this call's ``api`` choice and built-in tools (neither is a body field as given)."""
        api: str | None = None
        given = options.get("provider_options")
        if isinstance(given, Mapping) and any(isinstance(v, Mapping) and "api" in v for v in given.values()):
            trimmed: dict[str, Any] = {}
            for key, entry in given.items():
                if isinstance(entry, Mapping) and "api" in entry and key in (self.provider, self.definition.id,
                                                                              *self.definition.aliases):
                    api = entry["api"]
                    if api not in _APIS:
                        raise InvalidRequestError(
                            f"provider_options[{key!r}]['api'] must be one of {', '.join(map(repr, _APIS))}, "
                            f"got {str(api)[:40]!r}", provider=self.provider)
                    entry = {k: v for k, v in entry.items() if k != "api"}
                trimmed[key] = entry
            options = {**options, "provider_options": trimmed}
        builtins: list[dict[str, Any]] = []
        tools = options.get("tools")
        if isinstance(tools, (list, tuple)):
            functions = []
            for index, tool in enumerate(tools):
                spec = builtin_tool(tool, f"tools[{index}]", self.provider)
                if spec is None:
                    functions.append(tool)
                else:
                    builtins.append(spec)
            if builtins:
                options = {**options, "tools": functions or None}
        return options, api, builtins

    def _check_chat(self, request: ChatRequest, params: Mapping[str, Any], builtins: list[dict[str, Any]],
                    info: ModelInfo | None) -> None:
        if info is not None and info.api == "responses":
            raise UnsupportedCapabilityError(
                f"model {request.model!r} exists only on OpenAI's Responses API, but this call was sent to Chat "
                "Completions (api='chat'); use api='auto' or 'responses'", provider=self.provider)
        if builtins or "reasoning_summary" in params:
            self._refuse_on_chat(params, builtins)
        for index, message in enumerate(request.messages):
            if isinstance(message.content, list):
                for number, part in enumerate(message.content):
                    if part["type"] == "file":
                        _check_document(part["file"], f"messages[{index}].content[{number}]", self.provider)

    def _refuse_on_chat(self, params: Mapping[str, Any], builtins: list[dict[str, Any]]) -> None:
        if builtins:
            raise UnsupportedCapabilityError(
                f"built-in tools ({', '.join(sorted({t['type'] for t in builtins}))}) exist only on OpenAI's "
                "Responses API, but this call was sent to Chat Completions (api='chat'); use api='auto' or "
                "'responses'", provider=self.provider)
        if "reasoning_summary" in params:
            raise UnsupportedCapabilityError(
                "option 'reasoning_summary' exists only on OpenAI's Responses API, but this call was sent to Chat "
                "Completions; pass provider_options={'openai': {'api': 'responses'}}", provider=self.provider)

    def _check_responses(self, request: ChatRequest, params: dict[str, Any], builtins: list[dict[str, Any]],
                         info: ModelInfo | None, drop: bool) -> dict[str, Any]:
        params = catalog_checks.apply_rules(self.provider, request.model, RESPONSES_RULES, params, drop=drop)
        check_max_output_tokens(params, self.provider)
        if builtins:
            rules = tuple(rule for rule in info.rules if rule.option == BUILTIN_TOOL_RULE) if info else ()
            for tool in builtins:
                found = catalog_checks.violations(rules, {BUILTIN_TOOL_RULE: tool["type"]})
                if found:
                    raise UnsupportedCapabilityError(
                        f"{self.provider} model {request.model!r} {found[0][1]} (built-in tool {tool['type']!r})",
                        provider=self.provider)
            params = {**params, "tools": [*params.get("tools", ()), *builtins]}
        return params

    def batch_translator(self) -> OpenAIBatches:
        """The Batch API (``/v1/files`` + ``/v1/batches``): ``submit_batch`` and friends."""
        from .openai_batches import OpenAIBatches  # loaded on first use: batch jobs are rare

        return OpenAIBatches(self)

    # -- the Responses dialect (the request type says which API a prepared call uses) --------------------

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        if isinstance(request, ResponsesChatRequest):
            return HTTPRequest("POST", self.responses_path, json=build_responses_body(request, self.provider))
        return super().build_chat_request(request)

    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        if isinstance(request, ResponsesChatRequest):
            return parse_response(data, request, self)
        return super().parse_chat_response(data, request)

    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        if isinstance(request, ResponsesChatRequest):
            return ResponsesStreamDecoder(self, request)
        return super().create_stream_decoder(request)


def _check_cache_options(value: Mapping[str, Any], provider: str, ttls: tuple[str, ...]) -> None:
    unknown = set(value) - {"mode", "ttl"}
    if unknown or value.get("mode", "implicit") not in _CACHE_MODES or value.get("ttl", "30m") not in ttls:
        raise InvalidRequestError(
            "option 'prompt_cache_options' must look like {'mode': 'implicit' or 'explicit', 'ttl': "
            f"{' or '.join(map(repr, ttls))}}} (both keys optional; openai 3.63.0), got keys "
            f"{sorted(map(str, value))} with mode "
            f"{str(value.get('mode'))[:20]!r} and ttl {str(value.get('ttl'))[:20]!r}", provider=provider)


def _check_document(file: Mapping[str, Any], where: str, provider: str) -> None:
    """Chat Completions takes PDFs only, as ``file_data`` or ``file_id`` (OpenAI's file-inputs guide)."""
    if "url" in file:
        raise UnsupportedCapabilityError(
            f"{where}: OpenAI Chat Completions takes no document URL (only file_data or an uploaded file_id); "
            "download the PDF and pass it as file_data='data:application/pdf;base64,...'", provider=provider)
    if "file_data" not in file:
        return  # a file_id: the upload's type and name are known to OpenAI
    data = parse_data_url(file["file_data"])
    if data is not None and data.media_type.strip().lower() != "application/pdf":
        raise UnsupportedCapabilityError(
            f"{where}: OpenAI Chat Completions takes PDF documents only, not {data.media_type[:40]!r}; "
            "send the text as a text part", provider=provider)
    if not file.get("filename"):
        # Without it OpenAI answers a misleading 400 ("Missing required parameter: ...file.file_id").
        raise InvalidRequestError(f"{where}: OpenAI needs a filename with file_data, like "
                                  "{'file_data': 'data:application/pdf;base64,...', 'filename': 'report.pdf'}",
                                  provider=provider)
