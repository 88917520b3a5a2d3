"""Declarative service definitions: what a provider is, what it can do, which options it takes.

A :class:`ServiceDefinition` is plain data. The connector validates every call's options
against it *before any I/O*, UIs can render forms from it, and ``lc.describe(id)`` returns it
as JSON-able data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidRequestError
from .json_values import INT64_MAX, check_json_value, check_text

__all__ = [
    "AuthSpec",
    "Capability",
    "ParameterDefinition",
    "ServiceDefinition",
    "common_parameters",
]

ParamType = Literal[
    "number", "integer", "boolean", "string", "string_list", "object",
    "tools", "tool_choice", "response_format", "any",
]


class Capability:
    """Capability names used in :attr:`ServiceDefinition.capabilities`."""

    CHAT = "chat"
    STREAMING = "streaming"
    TOOLS = "tools"
    VISION = "vision"
    JSON_MODE = "json_mode"
    JSON_SCHEMA = "json_schema"
    EMBEDDINGS = "embeddings"
    LIST_MODELS = "list_models"
    REASONING = "reasoning"
    DOCUMENTS = "documents"


@dataclass(frozen=True)
class AuthSpec:
    """How a provider authenticates.

    Attributes:
        kind: ``bearer`` (``Authorization: Bearer``), ``header`` (a named header such as
            ``x-api-key``) or ``none``.
        header: The header name for ``kind="header"``.
        env_var: The environment variable that holds the key.
        required: Whether a key must be configured (False for local servers).
    """

    kind: Literal["bearer", "header", "none"] = "bearer"
    header: str = "authorization"
    env_var: str | None = None
    required: bool = True


@dataclass(frozen=True)
class ParameterDefinition:
    """One option a provider accepts, with its type and allowed range."""

    name: str
    type: ParamType
    description: str = ""
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    max_items: int | None = None
    options_source: str | None = None

    def validate(self, value: Any, provider: str) -> Any:
        """Return the normalised value, or raise :class:`InvalidRequestError` saying what is allowed."""
        checker = _CHECKERS[self.type]
        return checker(self, value, provider)

    def describe_range(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"between {_num(self.minimum)} and {_num(self.maximum)}"
        if self.minimum is not None:
            return f">= {_num(self.minimum)}"
        if self.maximum is not None:
            return f"<= {_num(self.maximum)}"
        return f"a {self.type}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        for key in ("description", "default", "minimum", "maximum", "max_items", "options_source"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


@dataclass(frozen=True)
class ServiceDefinition:
    """Everything static about a provider.

    Attributes:
        id: Registry id (``"claude"``).
        name: Display name.
        base_url: Default API base URL.
        auth: How it authenticates.
        capabilities: Capability names (see :class:`Capability`).
        parameters: The options ``generate_*`` accepts, beyond ``timeout``, ``extra`` and
            ``provider_options``.
        aliases: Other ids it answers to (``"anthropic"``).
        base_url_env: Environment variable that overrides ``base_url``.
        default_model: Chat model used when a call passes ``model=None``.
        default_embedding_model: Embedding model used when a call passes ``model=None``.
        model_patterns: Prefixes of model ids this provider serves (``is_compatible_model``);
            empty means "any".
        docs_url: Where the provider documents its API.
    """

    id: str
    name: str
    base_url: str
    auth: AuthSpec
    capabilities: frozenset[str]
    parameters: tuple[ParameterDefinition, ...] = ()
    aliases: tuple[str, ...] = ()
    base_url_env: str | None = None
    default_model: str | None = None
    default_embedding_model: str | None = None
    model_patterns: tuple[str, ...] = ()
    docs_url: str | None = None
    _by_name: dict[str, ParameterDefinition] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.parameters})

    def parameter(self, name: str) -> ParameterDefinition | None:
        return self._by_name.get(name)

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check each option against its definition; return the normalised options.

        Raises:
            InvalidRequestError: for an unknown option (with a did-you-mean) or a value out of
                range (naming the allowed range).
        """
        out: dict[str, Any] = {}
        by_name = self._by_name
        for name, value in options.items():
            spec = by_name.get(name)
            if spec is None:
                raise unknown_option_error(name, by_name, self.id)
            if value is None:
                continue  # an explicit None means "provider default"
            out[name] = spec.validate(value, self.id)
        return out

    def with_changes(self, **changes: Any) -> ServiceDefinition:
        """A copy with some fields replaced (used to derive OpenAI-compatible services)."""
        fields = {
            k: getattr(self, k)
            for k in ("id", "name", "base_url", "auth", "capabilities", "parameters", "aliases",
                      "base_url_env", "default_model", "default_embedding_model", "model_patterns",
                      "docs_url")
        }
        fields.update(changes)
        return ServiceDefinition(**fields)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (what ``lc.describe(id)`` returns)."""
        return {
            "id": self.id,
            "name": self.name,
            "aliases": list(self.aliases),
            "base_url": self.base_url,
            "base_url_env": self.base_url_env,
            "auth": {"kind": self.auth.kind, "header": self.auth.header, "env_var": self.auth.env_var,
                     "required": self.auth.required},
            "capabilities": sorted(self.capabilities),
            "default_model": self.default_model,
            "default_embedding_model": self.default_embedding_model,
            "model_patterns": list(self.model_patterns),
            "model": {
                "type": "string",
                "default": self.default_model,
                "options_source": "list_models" if Capability.LIST_MODELS in self.capabilities else None,
            },
            "parameters": [p.to_dict() for p in self.parameters],
            "docs_url": self.docs_url,
        }


# The options every connector handles itself, outside the definition's parameter list.
RESERVED_OPTIONS = frozenset({"timeout", "extra", "provider_options", "drop_params"})


def unknown_option_error(name: str, known: Iterable[str], provider: str) -> InvalidRequestError:
    names = sorted(set(known) | RESERVED_OPTIONS)
    import difflib

    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return InvalidRequestError(
        f"unknown option {name!r} for {provider}.{hint} Accepted options: {', '.join(names)}. "
        f"Provider-specific body fields go in extra={{...}} or provider_options={{{provider!r}: {{...}}}}.",
        provider=provider,
    )


# --- value checkers -------------------------------------------------------------------------

def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bad(
    spec: ParameterDefinition, value: Any, provider: str, expected: str | None = None
) -> InvalidRequestError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidRequestError(
        f"option {spec.name!r} must be {expected or spec.describe_range()} for {provider}, got {shown}",
        provider=provider,
    )


def _check_range(spec: ParameterDefinition, value: float, provider: str) -> None:
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        raise _bad(spec, value, provider)
    if spec.choices is not None and value not in spec.choices:
        raise _bad(spec, value, provider)


def _check_number(spec: ParameterDefinition, value: Any, provider: str) -> float:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        raise _bad(spec, _short(value), provider, f"a number ({spec.describe_range()})")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(spec, value, provider, f"a number ({spec.describe_range()})")
    _check_range(spec, value, provider)
    return value


def _short(number: int) -> str:
    digits = str(number)
    return digits if len(digits) < 24 else f"{digits[:8]}...({len(digits)} digits)"


def _check_integer(spec: ParameterDefinition, value: Any, provider: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (isinstance(value, float) and not math.isfinite(value)):
        raise _bad(spec, value, provider, f"an integer ({spec.describe_range()})")
    if isinstance(value, float) and not value.is_integer():
        raise _bad(spec, value, provider, f"an integer ({spec.describe_range()})")
    number = int(value)
    if abs(number) > INT64_MAX:  # beyond what any provider parses; also a float like 1e30
        raise _bad(spec, _short(number), provider, f"an integer that fits in 64 bits ({spec.describe_range()})")
    _check_range(spec, number, provider)
    return number


def _check_boolean(spec: ParameterDefinition, value: Any, provider: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(spec, value, provider, "True or False")
    return value


def _check_string(spec: ParameterDefinition, value: Any, provider: str) -> str:
    if not isinstance(value, str):
        raise _bad(spec, value, provider, f"a string ({spec.describe_range()})")
    check_text(value, f"option {spec.name!r}", provider)
    if spec.choices is not None and value not in spec.choices:
        raise _bad(spec, value, provider)
    return value


def _check_string_list(spec: ParameterDefinition, value: Any, provider: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) and s for s in items):
        raise _bad(spec, value, provider, "a non-empty string or a list of non-empty strings")
    if spec.max_items is not None and len(items) > spec.max_items:
        raise _bad(spec, value, provider, f"at most {spec.max_items} strings")
    for index, item in enumerate(items):
        check_text(item, f"option {spec.name!r}[{index}]", provider)
    return list(items)


def _check_object(spec: ParameterDefinition, value: Any, provider: str) -> Any:
    if not isinstance(value, Mapping):
        raise _bad(spec, value, provider, "a dict")
    check_json_value(value, f"option {spec.name!r}", provider)
    return dict(value)


def _check_any(spec: ParameterDefinition, value: Any, provider: str) -> Any:
    if spec.choices is not None and value not in spec.choices:
        raise _bad(spec, value, provider)
    check_json_value(value, f"option {spec.name!r}", provider)
    return value


#: The lifetimes a prompt-cache marker may ask for.
CACHE_TTLS = ("5m", "1h")


def check_cache_control(value: Any, where: str, provider: str) -> dict[str, str]:
    """A prompt-cache marker: ``{"type": "ephemeral"}``, optionally with ``"ttl": "5m" | "1h"``."""
    if (not isinstance(value, Mapping) or value.get("type") != "ephemeral"
            or set(value) - {"type", "ttl"} or value.get("ttl", "5m") not in CACHE_TTLS):
        raise InvalidRequestError(f"{where} must be {{'type': 'ephemeral'}}, optionally with 'ttl': "
                                  f"{' or '.join(map(repr, CACHE_TTLS))}", provider=provider)
    return dict(value)


def _check_tools(spec: ParameterDefinition, value: Any, provider: str) -> list[dict[str, Any]]:
    """Tools in the OpenAI function shape; ``{"name", "description", "parameters"}`` also accepted."""
    if not isinstance(value, (list, tuple)):
        raise _bad(spec, value, provider, "a list of tool definitions")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, tool in enumerate(value):
        if not isinstance(tool, Mapping):
            raise _bad(spec, tool, provider, f"a dict at tools[{index}]")
        function = tool.get("function") if tool.get("type", "function") == "function" else None
        if function is None and "name" in tool and "function" not in tool:
            function = tool  # the flat shorthand
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str) \
                or not function["name"]:
            raise InvalidRequestError(
                f"tools[{index}] must look like {{'type': 'function', 'function': {{'name': ..., "
                f"'description': ..., 'parameters': {{JSON schema}}}}}}",
                provider=provider,
            )
        name = function["name"]
        if name in seen:
            raise InvalidRequestError(f"tools[{index}]: duplicate tool name {name!r}", provider=provider)
        seen.add(name)
        params = function.get("parameters")
        if params is not None and not isinstance(params, Mapping):
            raise InvalidRequestError(
                f"tools[{index}] ({name}): 'parameters' must be a JSON-schema dict", provider=provider
            )
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidRequestError(f"tools[{index}] ({name}): 'description' must be a string", provider=provider)
        check_json_value(tool, f"tools[{index}]", provider)
        fn: dict[str, Any] = {"name": name}
        if function.get("description"):
            fn["description"] = function["description"]
        fn["parameters"] = dict(params) if params is not None else {"type": "object", "properties": {}}
        if "strict" in function:
            fn["strict"] = bool(function["strict"])
        checked: dict[str, Any] = {"type": "function", "function": fn}
        if "cache_control" in tool:  # prompt caching: providers with explicit caching mark the tool
            checked["cache_control"] = check_cache_control(tool["cache_control"], f"tools[{index}].cache_control",
                                                           provider)
        out.append(checked)
    return out


def _check_tool_choice(spec: ParameterDefinition, value: Any, provider: str) -> str | dict[str, Any]:
    """``auto`` | ``none`` | ``required`` (``any`` is accepted as its alias) | a tool by name."""
    if isinstance(value, str):
        if value == "any":
            return "required"
        if value in ("auto", "none", "required"):
            return value
        raise _bad(spec, value, provider,
                   "'auto', 'none', 'required' or {'type': 'function', 'function': {'name': ...}}")
    if isinstance(value, Mapping):
        function = value.get("function")
        name = function.get("name") if isinstance(function, Mapping) else value.get("name")
        if isinstance(name, str) and name:
            return {"type": "function", "function": {"name": name}}
    raise _bad(spec, value, provider,
               "'auto', 'none', 'required' or {'type': 'function', 'function': {'name': ...}}")


def _check_response_format(spec: ParameterDefinition, value: Any, provider: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or value.get("type") not in ("text", "json_object", "json_schema"):
        raise _bad(spec, value, provider,
                   "{'type': 'json_object'} or {'type': 'json_schema', 'json_schema': {'name': ..., "
                   "'schema': {...}}}")
    if value["type"] == "json_schema":
        js = value.get("json_schema")
        if not isinstance(js, Mapping) or not isinstance(js.get("schema"), Mapping):
            raise InvalidRequestError(
                "response_format json_schema needs {'json_schema': {'name': ..., 'schema': {...}}}",
                provider=provider,
            )
        check_json_value(js, "response_format['json_schema']", provider)
        norm: dict[str, Any] = {"name": js.get("name") or "response", "schema": dict(js["schema"])}
        if "strict" in js:
            norm["strict"] = bool(js["strict"])
        if js.get("description"):
            norm["description"] = js["description"]
        return {"type": "json_schema", "json_schema": norm}
    return {"type": value["type"]}


_CHECKERS = {
    "number": _check_number,
    "integer": _check_integer,
    "boolean": _check_boolean,
    "string": _check_string,
    "string_list": _check_string_list,
    "object": _check_object,
    "any": _check_any,
    "tools": _check_tools,
    "tool_choice": _check_tool_choice,
    "response_format": _check_response_format,
}


def common_parameters(
    *,
    temperature_max: float,
    max_stop: int | None = None,
    max_tokens_min: int = 1,
    seed: bool = True,
    tools: bool = True,
    response_format: bool = True,
) -> tuple[ParameterDefinition, ...]:
    """The normalised options (API.md §2) with this provider's ranges."""
    params = [
        ParameterDefinition("temperature", "number", "Sampling temperature.", minimum=0.0,
                            maximum=temperature_max),
        ParameterDefinition("top_p", "number", "Nucleus sampling mass.", minimum=0.0, maximum=1.0),
        ParameterDefinition("max_tokens", "integer", "Most tokens to generate.", minimum=max_tokens_min),
        ParameterDefinition("stop", "string_list", "Stop sequences.", max_items=max_stop),
    ]
    if seed:
        params.append(ParameterDefinition("seed", "integer", "Sampling seed, for repeatable output.",
                                          minimum=0))
    if tools:
        params.append(ParameterDefinition("tools", "tools", "Functions the model may call."))
        params.append(ParameterDefinition("tool_choice", "tool_choice",
                                          "auto, none, required, or a tool by name."))
    if response_format:
        params.append(ParameterDefinition("response_format", "response_format",
                                          "JSON mode or a JSON schema for the answer."))
    return tuple(params)

