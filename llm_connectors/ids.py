"""Which provider ids exist: built-ins, registered ids, aliases, plugins. A leaf module.

Everything that only needs to *know* an id (validation in ``base``, routing in ``fallback``,
did-you-mean hints) asks here; :mod:`.registry` owns the classes and fills these tables when a
connector is registered. Importing this module imports no connector.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import InvalidRequestError

__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "canonical_id",
    "check_provider_ids",
    "did_you_mean",
    "is_provider_id",
    "plugin_entry_points",
    "provider_ids",
]

#: Built-ins by import path, so `import llm_connectors` imports no provider module.
BUILTINS: dict[str, str] = {
    "azure_openai": "llm_connectors.connectors.azure_openai:AzureOpenAIConnector",
    "claude": "llm_connectors.connectors.claude:ClaudeConnector",
    "gemini": "llm_connectors.connectors.gemini:GeminiConnector",
    "local": "llm_connectors.connectors.local:LocalConnector",
    "mistral": "llm_connectors.connectors.mistral:MistralConnector",
    "ollama": "llm_connectors.connectors.ollama:OllamaConnector",
    "openai": "llm_connectors.connectors.openai:OpenAIConnector",
    "sample": "llm_connectors.connectors.sample:SampleConnector",
}
#: Templates and examples: usable by id (`get_connector("sample")`), never listed among the real
#: providers (`provider_ids()`, `llm-connectors providers`, did-you-mean suggestions).
HIDDEN: set[str] = {"sample"}
ALIASES: dict[str, str] = {"anthropic": "claude"}
#: Ids with a class in the registry (registered, or built-ins and plugins once loaded).
REGISTERED_IDS: set[str] = set()
ENTRY_POINT_GROUP = "llm_connectors.providers"
_plugin_names: frozenset[str] | None = None


def plugin_entry_points() -> dict[str, Any]:
    """Installed third-party connectors (the ``llm_connectors.providers`` entry-point group), by id."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _plugins() -> frozenset[str]:
    global _plugin_names
    if _plugin_names is None:
        _plugin_names = frozenset(plugin_entry_points())
    return _plugin_names


def provider_ids() -> list[str]:
    """Every known provider id (built-in, registered and installed plugins), sorted; no aliases.

    The ``sample`` template (the fictional MegaChat) is left out, though ``get_connector("sample")``
    and ``describe("sample")`` work.
    """
    return sorted((set(BUILTINS) | REGISTERED_IDS | set(plugin_entry_points())) - HIDDEN)


def canonical_id(name: str) -> str:
    return ALIASES.get(name, name)


def is_provider_id(name: str) -> bool:
    name = canonical_id(name)
    return name in REGISTERED_IDS or name in BUILTINS or name in _plugins()


def check_provider_ids(names: Iterable[str], *, what: str) -> None:
    """Raise :class:`InvalidRequestError` for the first name that is no provider id (with a hint)."""
    for name in names:
        if not isinstance(name, str) or not is_provider_id(name):
            raise InvalidRequestError(f"{what} has an entry for unknown provider {name!r}." + did_you_mean(str(name)))


def did_you_mean(name: str) -> str:
    """`` Did you mean 'x'? Registered providers: ...`` for an unknown id."""
    import difflib  # only on this error path: building a connector must not load it

    known = provider_ids() + sorted(ALIASES)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{hint} Registered providers: {', '.join(provider_ids())}."
