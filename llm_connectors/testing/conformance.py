"""The conformance suite: one set of behaviour tests for every connector, built-in or third-party.

Each test scripts a real :class:`~llm_connectors.testing.FakeServer` (a socket on 127.0.0.1)
with replies built by the connector's :class:`~llm_connectors.testing.kit.WireKit`, then
checks what the connector sent and what it returned. A plugin author reuses it in five lines::

    from llm_connectors.testing.conformance import ConnectorConformance
    from megachat_llm.testing import MegaChatWireKit

    class TestMegaChatConformance(ConnectorConformance):
        kit = MegaChatWireKit()

The async tests carry ``pytest.mark.anyio`` (anyio's pytest plugin, installed with anyio);
they run on asyncio unless your ``conftest.py`` defines an ``anyio_backend`` fixture with
``params=["asyncio", "trio"]``. To run the suite over several kits, override the
``wire_kit`` fixture with ``params`` (``tests/providers/test_conformance.py`` does that for the
built-ins, :data:`BUILTIN_KITS`: every kit :func:`discover_kits` finds in this package).

What it checks: the request (path, model, options, messages, tools and tool results, images,
the key in a header and nowhere else), parsing (text, tool calls, usage, finish reasons),
stream-vs-non-stream parity (also with the bytes cut at arbitrary places), the chunk contract
(finish reason and usage only on the last chunk), the status -> error-class table with
``retryable`` / ``retry_after`` / ``request_id``, in-band stream errors before and after the
first delta, cut streams, validation and capability errors before any I/O, embeddings, model
lists, health checks, concurrent calls, deadlines, and that ``aclose()`` leaves no connection
open. Connectors are built with ``retry=False, circuit_breaker=False``: one scripted reply,
one outcome.

The tests live in mixins, one module per theme: :mod:`.conformance_requests`,
:mod:`.conformance_streams`, :mod:`.conformance_errors` and :mod:`.conformance_lifecycle`, on
the fixtures of :mod:`.conformance_base`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, ClassVar

import pytest

from .conformance_base import API_KEY as API_KEY  # the key every connector gets: importable here, as before
from .conformance_errors import ERROR_STATUSES, EXPECTED_ERRORS, ErrorConformance
from .conformance_lifecycle import LifecycleConformance, wait_for_closed_connections
from .conformance_requests import RequestConformance
from .conformance_streams import STREAM_SCENARIOS, StreamConformance, StreamScenario, assert_same_response
from .kit import WireKit

__all__ = [
    "BUILTIN_KITS",
    "ERROR_STATUSES",
    "EXPECTED_ERRORS",
    "STREAM_SCENARIOS",
    "ConnectorConformance",
    "StreamScenario",
    "assert_same_response",
    "builtin_kit_params",
    "discover_kits",
    "kit_id",
    "load_kit",
    "load_kit_or_skip",
    "wait_for_closed_connections",
]

# -- finding and loading kits ------------------------------------------------------------------

def discover_kits(package: str = "llm_connectors.testing") -> tuple[str, ...]:
    """``"module:Class"`` of every wire kit defined in ``package``'s ``*_wire`` modules.

    A kit is a public, concrete :class:`WireKit` subclass defined in the module itself (a kit
    imported from another module counts only there). The order is stable: modules by name, then
    classes as they are defined. A new built-in provider's kit (``testing/<provider>_wire.py``)
    so joins :data:`BUILTIN_KITS`, and the conformance run over it, with no list to edit.
    """
    found: list[str] = []
    modules = pkgutil.iter_modules(importlib.import_module(package).__path__)
    for name in sorted(info.name for info in modules if info.name.endswith("_wire")):
        module = importlib.import_module(f"{package}.{name}")
        found += [f"{module.__name__}:{attr}" for attr, value in vars(module).items()
                  if inspect.isclass(value) and issubclass(value, WireKit) and not inspect.isabstract(value)
                  and value.__module__ == module.__name__ and not attr.startswith("_")]
    return tuple(found)


#: Wire kits of the built-in connectors, by import path: what :func:`discover_kits` finds here.
BUILTIN_KITS: tuple[str, ...] = discover_kits()


def load_kit(path: str) -> WireKit:
    """Import ``"package.module:ClassName"`` and instantiate the kit."""
    module_name, _, attr = path.partition(":")
    kit = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(kit, WireKit):
        raise TypeError(f"{path} is not a llm_connectors.testing.kit.WireKit")
    return kit


def load_kit_or_skip(path: str) -> WireKit:
    """Like :func:`load_kit`, but skip the test while the kit or its connector module is missing.

    Only a *missing module* skips; a kit or connector that fails to import for any other
    reason fails the test.
    """
    module_name = path.partition(":")[0]
    try:
        kit = load_kit(path)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        pytest.skip(f"wire kit {path} is not importable yet ({exc.name} does not exist)")
    from ..registry import connector_class, is_provider_id

    if is_provider_id(kit.provider_id):
        try:
            connector_class(kit.provider_id)
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("llm_connectors.connectors."):
                raise
            pytest.skip(f"connector for {kit.provider_id!r} is not importable yet "
                        f"({exc.name} does not exist)")
    return kit


def kit_id(path: str) -> str:
    """``"llm_connectors.testing.openai_wire:OpenAIWireKit"`` -> ``"openai"``."""
    return path.partition(":")[0].rpartition(".")[2].removesuffix("_wire")


def builtin_kit_params() -> list[Any]:
    """``pytest.param`` per built-in kit path, with the provider as the test id."""
    return [pytest.param(path, id=kit_id(path)) for path in BUILTIN_KITS]


# -- the suite ---------------------------------------------------------------------------------

# pytest runs inherited tests base class first (reverse MRO): listed this way, requests run
# first and lifecycle last, as they did before the suite was split into modules.
class ConnectorConformance(LifecycleConformance, ErrorConformance, StreamConformance, RequestConformance):
    """Behaviour every connector must have. Subclass it and set :attr:`kit`.

    Fixtures you may override: ``wire_kit`` (the kit under test, ``self.kit`` by default),
    ``scripted_handler`` and ``fake_server``.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]
