"""OpenAI (``openai``): Chat Completions, embeddings and models at api.openai.com.

Differences from the generic dialect (WIRE.md §2): ``max_completion_tokens`` instead of the
deprecated ``max_tokens`` (which reasoning models reject), at most 4 stop sequences, base64
embeddings (half the bytes, decoded locally, as the official SDK does), 2,048 inputs per
embedding request, and the optional organization/project headers. Also (openai 3.63.0): the
``developer`` role is sent as such, PDF documents go as ``file`` parts (``file_data`` or
``file_id``; Chat Completions takes no URL and no other type), and models the catalog marks
``api: "responses"`` are refused before any I/O, since this connector speaks Chat Completions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from .. import catalog
from .._secrets import check_headers
from ..definition import AuthSpec, Capability, ParameterDefinition, ServiceDefinition, common_parameters
from ..errors import InvalidRequestError, UnsupportedCapabilityError
from ..requests import ChatRequest
from ..types import MessageInput
from ..wire.data_urls import parse_data_url
from .openai_compat import OpenAICompatibleConnector

__all__ = ["OpenAIConnector"]

# The literals of openai 3.63.0 (types/shared/reasoning_effort.py, chat/completion_create_params.py).
_EFFORT = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority", "fast")
_CACHE_MODES = ("implicit", "explicit")
_CACHE_TTLS = ("30m",)

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
        **kwargs: See :class:`~llm_connectors.BaseConnector`.
    """

    definition: ClassVar[ServiceDefinition] = OPENAI
    #: OpenAI has the ``developer`` role; the base turns it into ``system`` for everyone else.
    message_roles: ClassVar[frozenset[str]] = frozenset({"system", "developer", "user", "assistant", "tool"})
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id",)
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    embedding_encoding = "base64"
    embedding_batch_size: ClassVar[int | None] = 2048

    def __init__(self, *, organization: str | None = None, project: str | None = None,
                 headers: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        merged = dict(headers or {})
        if organization:
            merged["openai-organization"] = organization
        if project:
            merged["openai-project"] = project
        check_headers(merged)
        super().__init__(headers=merged, **kwargs)

    def prepare_chat(self, model: str | None, messages: Iterable[MessageInput] | str,
                     options: Mapping[str, Any], *, stream: bool) -> ChatRequest:
        """Validate as the base does, plus what only OpenAI's Chat Completions refuses (before any I/O)."""
        request = super().prepare_chat(model, messages, options, stream=stream)
        info = catalog.entry(self.definition.id, request.model)
        if info is not None and info.api == "responses":
            raise UnsupportedCapabilityError(
                f"model {request.model!r} needs OpenAI's Responses API (/v1/responses), which this "
                "connector does not speak yet (it uses Chat Completions; Responses support is coming "
                "later); choose a Chat Completions model such as "
                f"{self.definition.default_model!r}", provider=self.provider)
        cache = request.params.get("prompt_cache_options")
        if cache is not None:
            _check_cache_options(cache, self.provider)
        for index, message in enumerate(request.messages):
            if isinstance(message.content, list):
                for number, part in enumerate(message.content):
                    if part["type"] == "file":
                        _check_document(part["file"], f"messages[{index}].content[{number}]", self.provider)
        return request


def _check_cache_options(value: Mapping[str, Any], provider: str) -> None:
    unknown = set(value) - {"mode", "ttl"}
    if unknown or value.get("mode", "implicit") not in _CACHE_MODES or value.get("ttl", "30m") not in _CACHE_TTLS:
        raise InvalidRequestError(
            "option 'prompt_cache_options' must look like {'mode': 'implicit' or 'explicit', 'ttl': '30m'} "
            f"(both keys optional; openai 3.63.0), got keys {sorted(map(str, value))} with mode "
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
