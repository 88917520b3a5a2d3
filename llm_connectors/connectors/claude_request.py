"""Writing Claude's requests: the ``POST /v1/messages`` and ``/v1/messages/count_tokens`` bodies, as pure
functions (WIRE.md §1.2, as anthropic 2.17.0 sends them).

What goes into a body depends on the request, the API version the connector speaks and a few catalog
facts about the model (:class:`ModelFacts`): ``max_tokens`` is always sent (the model's default when the
caller gives none), ``reasoning_effort`` becomes ``output_config.effort`` with adaptive thinking, and under
API version 2026-10-21 the sampling options, which that version removed, are never written. The turns
are written by :mod:`~llm_connectors.connectors.claude_messages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequestError
from ..requests import ChatRequest
from ..types import ModelInfo
from .claude_messages import Blocks

__all__ = [
    "API_VERSION",
    "API_VERSIONS",
    "DEFAULT_MAX_TOKENS",
    "LEGACY_API_VERSION",
    "REASONING_EFFORTS",
    "SAMPLING_OPTIONS",
    "THINKING_HINT",
    "ModelFacts",
    "chat_body",
    "check_reasoning",
    "check_thinking",
    "count_tokens_body",
]

#: The API version anthropic 2.x sends, and ours by default.
API_VERSION = "2026-10-21"
#: The version before it, for models that still take sampling options (``api_version=`` pins it).
LEGACY_API_VERSION = "2023-06-01"
API_VERSIONS = (API_VERSION, LEGACY_API_VERSION)
#: Options API version 2026-10-21 removed from the Messages API (a 400 on every model).
SAMPLING_OPTIONS = ("temperature", "top_p", "top_k")
#: ``max_tokens`` is required by the API; this is sent when the caller gives none and the catalog has
#: no default for the model.
DEFAULT_MAX_TOKENS = 4096
#: The shapes the ``thinking`` option takes, as said in its description and its error.
THINKING_HINT = ("{'type': 'adaptive'} (optionally with 'display': 'summarized' | 'omitted'), "
                 "{'type': 'between_tools'}, {'type': 'enabled', 'budget_tokens': N} with N >= 1024, "
                 "or {'type': 'disabled'} (which types a model takes depends on the model)")
#: The neutral ``reasoning_effort`` values Claude takes; ``xhigh`` is Claude's (and OpenAI's) own.
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_DISPLAY = ("summarized", "omitted")
_THINKING_KEYS = {"adaptive": {"display"}, "between_tools": set(), "disabled": set(),
                  "enabled": {"budget_tokens", "display"}}
_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}
#: The fields ``count_tokens`` takes (MessageCountTokensParams, anthropic 2.17.0).
_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                 "cache_control", "speed")


@dataclass(frozen=True)
class ModelFacts:
    """What a body depends on besides the request: the API version and the model's catalog facts.

    Attributes:
        api_version: The ``anthropic-version`` the connector sends.
        default_max_tokens: ``max_tokens`` when the caller gives none (room for default thinking).
        max_output_tokens: The model's output limit, when the catalog knows it.
        thinking_types: The ``thinking`` types the model takes (its catalog rule); ``None``: any.
    """

    api_version: str = API_VERSION
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    max_output_tokens: int | None = None
    thinking_types: tuple[str, ...] | None = None

    @classmethod
    def of(cls, api_version: str, info: ModelInfo | None) -> ModelFacts:
        """The facts for a model's catalog entry (``None``: a model the catalog does not know)."""
        if info is None:
            return cls(api_version)
        limit = info.max_output_tokens
        default = info.default_max_tokens or DEFAULT_MAX_TOKENS
        thinking = next((tuple(rule.allowed) for rule in info.rules
                         if rule.option == "thinking" and rule.allowed is not None), None)
        return cls(api_version, min(default, limit) if limit else default, limit, thinking)

    @property
    def thinking_off(self) -> str | None:
        """How this model turns thinking off: ``disabled``, else ``between_tools``; ``None`` if it cannot."""
        for kind in ("disabled", "between_tools"):
            if self.thinking_types is None or kind in self.thinking_types:
                return kind
        return None


def check_thinking(value: Any, provider: str) -> None:
    """Refuse a ``thinking`` option the API would reject (a budget below 1024, an unknown type or key)."""
    if value is None:
        return
    kind = value.get("type")
    keys = _THINKING_KEYS.get(kind) if isinstance(kind, str) else None
    budget = value.get("budget_tokens")
    ok = (keys is not None and not set(value) - keys - {"type"}
          and value.get("display", "summarized") in _DISPLAY
          and (kind != "enabled" or (isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1024)))
    if not ok:
        raise InvalidRequestError(f"option 'thinking' must be {THINKING_HINT} for {provider}, "
                                  f"got {value!r}", provider=provider)


def check_reasoning(params: Mapping[str, Any], facts: ModelFacts, model: str, provider: str) -> None:
    """Refuse ``reasoning_effort`` combined with what contradicts it, before anything is sent."""
    effort = params.get("reasoning_effort")
    if effort is None:
        return
    if "effort" in params:
        raise InvalidRequestError("options 'reasoning_effort' and 'effort' both set Claude's output_config.effort; "
                                  "pass one (reasoning_effort is the portable name)", provider=provider)
    thinking = params.get("thinking")
    if effort == "none" and thinking is not None and thinking.get("type") not in ("disabled", "between_tools"):
        raise InvalidRequestError(f"reasoning_effort='none' turns thinking off, but thinking={thinking!r} turns "
                                  "it on; pass one of them", provider=provider)
    if effort == "none" and thinking is None and facts.thinking_off is None:
        raise InvalidRequestError(f"reasoning_effort='none': {model} cannot turn thinking off (it takes thinking "
                                  f"{', '.join(facts.thinking_types or ())} only); use 'low'", provider=provider)


# -- the bodies ---------------------------------------------------------------------------------

def chat_body(request: ChatRequest, system: str | Blocks | None, messages: Blocks,
              facts: ModelFacts | None = None) -> dict[str, Any]:
    """The ``/v1/messages`` JSON body for already translated messages (see ``translate_messages``).

    A ``response_format`` other than ``json_schema`` is left out: refusing it takes the
    connector's capabilities, so the connector does that.
    """
    facts = facts or ModelFacts()
    params = request.params
    body: dict[str, Any] = {"model": request.model, "messages": messages,
                            "max_tokens": _max_tokens(params, facts)}
    if system is not None:
        body["system"] = system
    _apply_params(body, params, facts)
    if request.stream:
        body["stream"] = True
    return body


def count_tokens_body(request: ChatRequest, system: str | Blocks | None, messages: Blocks,
                      facts: ModelFacts | None = None) -> dict[str, Any]:
    """The ``/v1/messages/count_tokens`` body: the chat body's fields that endpoint takes, as the SDK sends them."""
    body = chat_body(request, system, messages, facts)
    return {name: body[name] for name in _COUNT_FIELDS if name in body}


def _max_tokens(params: Mapping[str, Any], facts: ModelFacts) -> int:
    value = params.get("max_tokens")
    if value is not None:
        return int(value)
    default = facts.default_max_tokens
    thinking = params.get("thinking") or {}
    budget = thinking.get("budget_tokens") if thinking.get("type") == "enabled" else None
    if isinstance(budget, int) and budget >= default:
        # The thinking budget counts toward max_tokens and must stay below it (WIRE.md §1.2);
        # leave the old default's worth of room for the answer itself.
        default = budget + DEFAULT_MAX_TOKENS
    limit = facts.max_output_tokens
    return min(default, limit) if limit else default


def _apply_params(body: dict[str, Any], params: Mapping[str, Any], facts: ModelFacts) -> None:
    # Under 2026-10-21 the model rules refuse (or drop) sampling options before this point; one that
    # still arrives (a request built by hand) is left out rather than sent into a certain 400.
    sampling = SAMPLING_OPTIONS if facts.api_version == LEGACY_API_VERSION else ()
    for name in (*sampling, "thinking", "metadata", "service_tier"):
        if name in params:
            body[name] = params[name]
    if "stop" in params:
        body["stop_sequences"] = list(params["stop"])
    tools = params.get("tools")
    if tools:
        body["tools"] = [_wire_tool(t) for t in tools]
    choice = _wire_tool_choice(params.get("tool_choice"), params.get("parallel_tool_calls"), bool(tools))
    if choice is not None:
        body["tool_choice"] = choice
    output: dict[str, Any] = {}
    response_format = params.get("response_format")
    if response_format is not None and response_format["type"] == "json_schema":
        output["format"] = {"type": "json_schema", "schema": response_format["json_schema"]["schema"]}
    if "effort" in params:
        output["effort"] = params["effort"]
    _apply_reasoning(body, output, params.get("reasoning_effort"), facts)
    if output:
        body["output_config"] = output


def _apply_reasoning(body: dict[str, Any], output: dict[str, Any], effort: str | None, facts: ModelFacts) -> None:
    """``reasoning_effort``: ``none`` turns thinking off, the rest set the effort of adaptive thinking.

    ``none`` is ``thinking: disabled`` where the model takes it, else ``between_tools`` (thinking
    off; progress notes between tool calls still come back as thinking). ``minimal`` is Claude's
    lowest effort, ``low``. A ``thinking`` the caller gave is kept as given.
    """
    if effort is None:
        return
    if effort == "none":
        off = facts.thinking_off
        if "thinking" not in body and off is not None:
            body["thinking"] = {"type": off}
        return
    output["effort"] = "low" if effort == "minimal" else effort
    body.setdefault("thinking", {"type": "adaptive"})


def _wire_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool["function"]
    schema = dict(function["parameters"])
    schema.setdefault("type", "object")  # Claude requires an object schema; OpenAI tolerates its absence
    out: dict[str, Any] = {"name": function["name"], "input_schema": schema}
    if function.get("description"):
        out["description"] = function["description"]
    if "strict" in function:
        out["strict"] = function["strict"]
    if tool.get("cache_control") is not None:  # a cache breakpoint after the tool definitions up to here
        out["cache_control"] = dict(tool["cache_control"])
    return out


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
