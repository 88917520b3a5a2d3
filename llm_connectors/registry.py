"""Finding connectors by id: built-ins (imported lazily), registered classes, plugins."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from typing import Any

from .base import BaseConnector
from .connectors.presets import PRESETS, Preset
from .definition import AuthSpec, ServiceDefinition
from .errors import ConfigurationError
from .ids import (
    ALIASES,
    BUILTINS,
    HIDDEN,
    REGISTERED_IDS,
    canonical_id,
    did_you_mean,
    is_provider_id,
    plugin_entry_points,
    provider_ids,
)

__all__ = [
    "canonical_id",
    "connector_class",
    "describe",
    "is_provider_id",
    "provider_ids",
    "register_connector",
    "register_openai_compatible",
]

_REGISTERED: dict[str, type[BaseConnector]] = {}
_LOCK = threading.Lock()
# The OpenAI-compatible presets (connectors/presets.py) are built-ins too, each class built on first use.
BUILTINS.update({pid: f"llm_connectors.connectors.preset_connector:{pid}" for pid in PRESETS if pid not in BUILTINS})


def register_connector(provider_id: str, cls: type[BaseConnector], *, aliases: Iterable[str] = (),
                       replace: bool = False) -> None:
    """Make ``cls`` available as ``get_connector(provider_id)``.

    Raises:
        ConfigurationError: if the id is taken (pass ``replace=True`` to override) or ``cls`` is
            not a :class:`BaseConnector` with a ``definition``.
    """
    if not isinstance(provider_id, str) or not provider_id or ":" in provider_id:
        raise ConfigurationError(f"provider id must be a non-empty string without ':', got {provider_id!r}")
    if not (isinstance(cls, type) and issubclass(cls, BaseConnector)):
        raise ConfigurationError(f"{cls!r} is not a subclass of llm_connectors.BaseConnector")
    if not isinstance(getattr(cls, "definition", None), ServiceDefinition):
        raise ConfigurationError(f"{cls.__name__} has no `definition` (a ServiceDefinition)")
    with _LOCK:
        names = [provider_id, *aliases]
        if not replace:
            for name in names:
                if name in _REGISTERED or name in BUILTINS or name in ALIASES:
                    raise ConfigurationError(
                        f"provider id {name!r} is already registered; pass replace=True to override")
        _remember(provider_id, cls)
        HIDDEN.discard(provider_id)  # a connector registered over a template is a real provider
        for alias in aliases:
            ALIASES[alias] = provider_id


def _remember(provider_id: str, cls: type[BaseConnector]) -> type[BaseConnector]:
    """Record a class under an id (the caller holds ``_LOCK``); the first one recorded wins for loads."""
    REGISTERED_IDS.add(provider_id)
    _REGISTERED[provider_id] = cls
    return cls


def _load_plugin(name: str) -> type[BaseConnector] | None:
    """Load a third-party connector registered under the entry-point group, if there is one."""
    ep = plugin_entry_points().get(name)
    if ep is None:
        return None
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plugin must say which one it is
        raise ConfigurationError(f"provider plugin {name!r} ({ep.value}) failed to load: "
                                 f"{type(exc).__name__}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseConnector)):
        raise ConfigurationError(f"provider plugin {name!r} ({ep.value}) is not a BaseConnector subclass")
    with _LOCK:
        return _REGISTERED.get(name) or _remember(name, cls)


def connector_class(provider_id: str) -> type[BaseConnector]:
    """The connector class for an id or alias: registered, built-in (imported on first use), or a
    plugin from the ``llm_connectors.providers`` entry-point group (looked up on first unknown id)."""
    name = canonical_id(provider_id)
    registered = _REGISTERED.get(name)
    if registered is not None:
        return registered
    path = BUILTINS.get(name)
    if path is None:
        plugin = _load_plugin(name)
        if plugin is not None:
            return plugin
        raise ConfigurationError(f"unknown provider {provider_id!r}." + did_you_mean(provider_id))
    module_name, _, attr = path.partition(":")
    cls: type[BaseConnector] = getattr(importlib.import_module(module_name), attr)
    with _LOCK:
        return _REGISTERED.get(name) or _remember(name, cls)


def describe(provider_id: str) -> dict[str, Any]:
    """A provider's service definition as plain JSON-able data."""
    cls = connector_class(provider_id)
    data = cls.definition.to_dict()
    data["id"] = canonical_id(provider_id)
    preset = PRESETS.get(data["id"])
    own: object = getattr(cls, "preset", None)
    if preset is not None and own is preset:  # not once a registration replaced the preset
        data["preset"] = _preset_data(preset)
    return data


def _preset_data(preset: Preset) -> dict[str, Any]:
    return {
        "sources": dict(preset.sources),
        "lacks": sorted(preset.lacks),
        "quirks": [{"option": q.option, "ignored": q.ignored, "why": q.why, "source": q.source,
                    "models": list(q.models), "except_models": list(q.except_models)} for q in preset.quirks],
        "notes": list(preset.notes),
    }


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"provider"`` or ``"provider:model"`` -> (provider id, model or None)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(f"a provider must be a non-empty string like 'openai' or 'ollama:llama3.2', "
                                 f"got {spec!r}")
    provider, sep, model = spec.strip().partition(":")
    if not provider or (sep and not model):
        raise ConfigurationError(f"malformed provider spec {spec!r}: expected 'provider' or 'provider:model'")
    return provider, (model or None)


def create_connector(spec: str, **kwargs: Any) -> BaseConnector:
    """Build one connector from ``"provider"`` / ``"provider:model"``, reading its env variables."""
    provider, model = split_spec(spec)
    cls = connector_class(provider)
    if model is not None:
        kwargs.setdefault("default_model", model)
    kwargs.setdefault("provider_id", canonical_id(provider))
    return cls.from_env(**kwargs)


def register_openai_compatible(
    provider_id: str,
    *,
    base_url: str,
    api_key_env: str | None = None,
    default_model: str | None = None,
    default_embedding_model: str | None = None,
    name: str | None = None,
    max_tokens_field: str = "max_tokens",
    send_stream_options: bool = True,
    capabilities: Iterable[str] | None = None,
    replace: bool = False,
) -> type[BaseConnector]:
    """Register any OpenAI-compatible service by id (the presets cover Groq, vLLM, LM Studio...;
    ``replace=True`` overrides one).

    Args:
        base_url: The service's base URL including ``/v1`` if it has one.
        api_key_env: Environment variable holding its key; ``None`` for keyless local servers.
        max_tokens_field: ``max_tokens`` (most servers) or ``max_completion_tokens``.
        send_stream_options: False for servers that reject ``stream_options``.
        capabilities: Override the default capability set (chat, streaming, tools, vision,
            json_mode, json_schema, embeddings, list_models).

    Returns:
        The generated connector class (also registered).
    """
    from .connectors.openai_compat import OpenAICompatibleConnector
    from .http.urls import check_base_url

    base = OpenAICompatibleConnector.definition
    definition = base.with_changes(
        id=provider_id,
        name=name or provider_id,
        base_url=check_base_url(base_url, sends_credentials=api_key_env is not None),
        auth=AuthSpec(kind="bearer", env_var=api_key_env, required=api_key_env is not None),
        base_url_env=None,
        default_model=default_model,
        default_embedding_model=default_embedding_model,
        capabilities=frozenset(capabilities) if capabilities is not None else base.capabilities,
    )
    attrs = {"definition": definition, "max_tokens_field": max_tokens_field,
             "send_stream_options": send_stream_options, "__module__": __name__}
    cls = type(f"{_class_name(provider_id)}Connector", (OpenAICompatibleConnector,), attrs)
    register_connector(provider_id, cls, replace=replace)
    return cls


def _class_name(provider_id: str) -> str:
    return "".join(part.capitalize() for part in provider_id.replace("-", "_").split("_") if part)

