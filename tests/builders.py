"""The one way the suite builds a connector: :func:`build_connector`, on the wire kits.

Every built-in provider ships a wire kit (``llm_connectors.testing.<provider>_wire``) whose
``make_connector`` gives the connector the canary key :data:`~llm_connectors.testing.kit.TEST_KEY`
(which tests/conftest.py watches for leaks) and ``retry=False, circuit_breaker=False``: a
wire-mapping test sees each reply's own outcome, and no breaker state carries over to the next
test. Pass any connector setting to override those.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from llm_connectors.base import BaseConnector
from llm_connectors.registry import connector_class
from llm_connectors.testing.conformance import BUILTIN_KITS, kit_id, load_kit
from llm_connectors.testing.kit import WireKit

__all__ = ["build_connector", "wire_kit"]


@cache
def wire_kit(provider: str) -> WireKit:
    """The wire kit of a built-in provider (``"openai"``, ``"claude"``, ...)."""
    for path in BUILTIN_KITS:
        if kit_id(path) == provider:
            return load_kit(path)
    raise LookupError(f"no wire kit for {provider!r}; the kits are {[kit_id(p) for p in BUILTIN_KITS]}")


def build_connector(provider: str | WireKit, base_url: str | None = None, **settings: Any) -> BaseConnector:
    """A connector of ``provider`` (a built-in id or a kit) for a test, built by its kit.

    Args:
        provider: ``"openai"``, ``"claude"``, ``"mistral"``, ``"ollama"``, ``"sample"``, or a
            :class:`WireKit` (a third-party or deliberately broken one).
        base_url: A :class:`~llm_connectors.testing.FakeServer`'s ``url``; the kit appends the
            provider's path prefix (``/v1`` for OpenAI). ``None`` keeps the provider's real
            address, for tests whose requests never leave the process (respx, build-only).
        **settings: Connector settings; ``api_key``, ``retry`` and ``circuit_breaker`` override
            the kit's test defaults.
    """
    kit = provider if isinstance(provider, WireKit) else wire_kit(provider)
    if base_url is None:
        base_url = connector_class(kit.provider_id).definition.base_url.removesuffix(kit.base_path)
    return kit.make_connector(base_url, **settings)
