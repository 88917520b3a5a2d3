"""The connector class of each preset (``presets.py``), built on first use.

The registry names ``llm_connectors.connectors.preset_connector:<id>``; this module's
``__getattr__`` builds (once) a :class:`PresetConnector` subclass from the row. Quirks reach the
pre-I/O checks as :class:`~llm_connectors.types.OptionRule` s from :meth:`model_rules`, so
``drop_params`` and fallback chains treat them like the model catalog's rules.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, ClassVar

from ..definition import AuthSpec, ParameterDefinition, ServiceDefinition, common_parameters
from ..errors import InvalidRequestError
from ..requests import ChatRequest
from ..types import MessageInput, ModelInfo, OptionRule
from .openai_compat import OpenAICompatibleConnector
from .presets import MESSAGE_NAME, PRESETS, Preset, Quirk

__all__ = ["PresetConnector", "preset_class"]

#: Options of OpenAI's dialect a preset may take beyond the normalised ones; a preset's quirks
#: refuse the ones its service rejects (so the error names the service, and drop_params drops them).
EXTRA_PARAMETERS = (
    ParameterDefinition("frequency_penalty", "number", "Penalise repeated tokens.", minimum=-2.0, maximum=2.0),
    ParameterDefinition("presence_penalty", "number", "Penalise tokens already present.", minimum=-2.0,
                        maximum=2.0),
    ParameterDefinition("parallel_tool_calls", "boolean", "Allow several tool calls in one turn."),
    ParameterDefinition("logprobs", "boolean", "Return log probabilities of output tokens."),
    ParameterDefinition("top_logprobs", "integer", "Most likely tokens per position.", minimum=0, maximum=20),
    ParameterDefinition("logit_bias", "object", "Token id -> bias (-100..100)."),
    ParameterDefinition("user", "string", "An id for your end user."),
)

_classes: dict[str, type[PresetConnector]] = {}
_lock = threading.Lock()


class PresetConnector(OpenAICompatibleConnector):
    """An OpenAI-compatible service from the preset table; subclasses set :attr:`preset`."""

    preset: ClassVar[Preset]

    def model_rules(self, model: str, info: ModelInfo | None) -> tuple[OptionRule, ...]:
        """The catalog's rules (a user catalog keyed by the preset id), then the preset's enforced quirks."""
        own = tuple(_rule(q) for q in self.preset.quirks
                    if not q.ignored and q.option != MESSAGE_NAME and q.applies_to(model))
        return (*super().model_rules(model, info), *own)

    def prepare_chat(self, model: str | None, messages: Iterable[MessageInput] | str,
                     options: Mapping[str, Any], *, stream: bool) -> ChatRequest:
        request = super().prepare_chat(model, messages, options, stream=stream)
        quirk = next((q for q in self.preset.quirks
                      if q.option == MESSAGE_NAME and not q.ignored and q.applies_to(request.model)), None)
        if quirk is None:
            return request
        named = [i for i, m in enumerate(request.messages) if m.name and m.role != "tool"]
        if not named:
            return request
        drop = options.get("drop_params")
        if not (self.drop_params if drop is None else drop):
            raise InvalidRequestError(
                f"{self.provider} does not take a name on messages (messages[{named[0]}].name): {quirk.why} "
                f"({quirk.source}). Remove the name, or pass drop_params=True to drop it",
                provider=self.provider, code="model_rule")
        # Tool messages never carry a name on this dialect's wire (tool_message_name is False).
        return replace(request, messages=tuple(replace(m, name=None) if m.name and m.role != "tool" else m
                                               for m in request.messages))


def _rule(quirk: Quirk) -> OptionRule:
    return OptionRule(option=quirk.option, rejected=True, why=f"{quirk.why} ({quirk.source})")


def definition_of(preset: Preset) -> ServiceDefinition:
    """The service definition a preset's connector carries."""
    base = OpenAICompatibleConnector.definition
    return ServiceDefinition(
        id=preset.id,
        name=preset.name,
        base_url=preset.base_url,
        auth=AuthSpec(kind="bearer", env_var=preset.api_key_env, required=not preset.local),
        capabilities=base.capabilities - preset.lacks,
        parameters=(*common_parameters(temperature_max=2.0), *EXTRA_PARAMETERS),
        base_url_env=preset.base_url_env,
        default_model=preset.default_model,
        docs_url=preset.docs_url,
    )


def preset_class(preset_id: str) -> type[PresetConnector]:
    """The connector class of a preset, built once per process."""
    cls = _classes.get(preset_id)
    if cls is not None:
        return cls
    preset = PRESETS[preset_id]
    name = "".join(part.capitalize() for part in preset_id.split("_")) + "Connector"
    with _lock:
        cls = _classes.get(preset_id)
        if cls is None:
            attrs = {"definition": definition_of(preset), "preset": preset, "__module__": __name__,
                     "__doc__": f"{preset.name} ({preset.docs_url}), an OpenAI-compatible preset."}
            cls = _classes[preset_id] = type(name, (PresetConnector,), attrs)
    return cls


def __getattr__(name: str) -> type[PresetConnector]:
    """``preset_connector.groq`` and the like: the path the registry's table names."""
    if name in PRESETS:
        return preset_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
