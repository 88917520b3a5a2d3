"""OpenAI (``openai``): Chat Completions, embeddings and models at api.openai.com.

Differences from the generic dialect (WIRE.md §2): ``max_completion_tokens`` instead of the
deprecated ``max_tokens`` (which reasoning models reject), at most 4 stop sequences, base64
embeddings (half the bytes, decoded locally, as the official SDK does), 2,048 inputs per
embedding request, and the optional organization/project headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .._secrets import check_headers
from ..definition import AuthSpec, Capability, ParameterDefinition, ServiceDefinition, common_parameters
from .openai_compat import OpenAICompatibleConnector

__all__ = ["OpenAIConnector"]

_EFFORT = ("none", "minimal", "low", "medium", "high", "xhigh", "max")

OPENAI = ServiceDefinition(
    id="openai",
    name="OpenAI",
    base_url="https://api.openai.com/v1",
    base_url_env="OPENAI_BASE_URL",
    auth=AuthSpec(kind="bearer", env_var="OPENAI_API_KEY"),
    capabilities=frozenset({
        Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.VISION, Capability.JSON_MODE,
        Capability.JSON_SCHEMA, Capability.EMBEDDINGS, Capability.LIST_MODELS, Capability.REASONING,
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
        ParameterDefinition("service_tier", "string", "Processing tier.",
                            choices=("auto", "default", "flex", "scale", "priority")),
        ParameterDefinition("store", "boolean", "Store the completion for distillation/evals."),
        ParameterDefinition("metadata", "object", "Up to 16 string key/value pairs."),
        ParameterDefinition("safety_identifier", "string", "A stable id for your end user."),
        ParameterDefinition("prompt_cache_key", "string", "Groups requests for prompt caching."),
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
