"""The one place configuration is read from the environment; constructors stay pure."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .definition import ServiceDefinition


def settings_from_env(definition: ServiceDefinition, explicit: Mapping[str, Any],
                      environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Constructor keyword arguments: the explicit ones, then the provider's env variables."""
    env = os.environ if environ is None else environ
    settings = dict(explicit)
    key_var = definition.auth.env_var
    if settings.get("api_key") is None and key_var:
        value = env.get(key_var, "").strip()
        if value:
            settings["api_key"] = value
    url_var = definition.base_url_env
    if settings.get("base_url") is None and url_var:
        value = env.get(url_var, "").strip()
        if value:
            settings["base_url"] = value
    return settings


def provider_order(environ: Mapping[str, str] | None = None) -> list[str] | None:
    """``LLM_CONNECTORS_PROVIDERS`` as a list of ids, or None when unset."""
    env = os.environ if environ is None else environ
    raw = env.get("LLM_CONNECTORS_PROVIDERS", "").strip()
    if not raw:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


LOCAL_MODEL_ENV = "LLM_CONNECTORS_LOCAL_MODEL"


def local_model_path(environ: Mapping[str, str] | None = None) -> str | None:
    """``LLM_CONNECTORS_LOCAL_MODEL``: a ``.gguf`` file or a folder of them, or None when unset."""
    env = os.environ if environ is None else environ
    return env.get(LOCAL_MODEL_ENV, "").strip() or None
