"""Which HTTP engine a connector's requests run on: httpx's, or aiohttp's.

The sender speaks to an engine through the small interface of ``engines.py``; this module chooses
the engine (the aiohttp one lives in ``aiohttp_engine.py``). Under asyncio, when the optional
``fast`` extra (``aiohttp``) is installed, :class:`AiohttpEngine` replaces httpx's connection
pool — the part of httpx that limits throughput under concurrency — with aiohttp's, and no httpx
request or response object is built on the way. Under trio only httpx's engine can run.

Choosing (``transport=`` on a connector, resolved when its first request is sent):

* ``"httpx"``: httpx's engine, on any event loop.
* ``"aiohttp"``: :class:`AiohttpEngine`; asyncio only, needs ``pip install 'llm-connectors-sdk[fast]'``.
* ``"auto"`` (the default): aiohttp under asyncio when it is installed, else httpx. The
  ``LLM_CONNECTORS_TRANSPORT`` environment variable (``httpx``, ``aiohttp`` or ``auto``) overrides
  what ``auto`` means, process-wide. ``auto`` also keeps httpx when a proxy is configured in the
  environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``), httpx's proxy handling being the
  reference.

Both engines give the same results and raise the same httpx exceptions (so the same typed errors),
with these documented differences on aiohttp: ``PoolLimits.max_keepalive_connections`` is not
enforced (aiohttp keeps up to ``max_connections`` idle connections, each for ``keepalive_expiry``);
there is no separate write timeout (the call's overall deadline still bounds sending); a pool wait
and a connect share the ``connect`` timeout.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .._asynclib import current_async_library
from ..errors import ConfigurationError
from .engines import ClientEngine, Engine, HttpcoreEngine
from .settings import env_proxies

if TYPE_CHECKING:  # pragma: no cover

    from .settings import PoolLimits, Timeouts, TLSVerify

__all__ = ["ENV_VAR", "TRANSPORTS", "aiohttp_installed", "check_choice", "make_engine", "resolve"]

TRANSPORTS = ("auto", "httpx", "aiohttp")
ENV_VAR = "LLM_CONNECTORS_TRANSPORT"
_installed: bool | None = None


def check_choice(choice: str | None) -> str:
    """Validate a ``transport=`` argument at construction time."""
    if choice is None:
        return "auto"
    if choice not in TRANSPORTS:
        raise ConfigurationError(f"transport must be one of {', '.join(TRANSPORTS)} or an httpx transport, "
                                 f"got {choice!r}")
    return choice


def aiohttp_installed() -> bool:
    """Whether the ``fast`` extra (aiohttp) can be imported; looked up once, without importing it."""
    global _installed
    if _installed is None:
        import importlib.util

        _installed = importlib.util.find_spec("aiohttp") is not None
    return _installed


def resolve(choice: str) -> str:
    """The engine to use now, in the running event loop: ``"httpx"`` or ``"aiohttp"``."""
    if choice == "auto":
        override = os.environ.get(ENV_VAR, "").strip().lower()
        if override and override not in TRANSPORTS:
            raise ConfigurationError(f"{ENV_VAR} must be one of {', '.join(TRANSPORTS)}, got {override!r}")
        choice = override or "auto"
    if choice == "httpx":
        return "httpx"
    library = current_async_library()
    if choice == "aiohttp":
        if library != "asyncio":
            raise ConfigurationError(f"transport='aiohttp' needs asyncio, but this code runs on {library}; "
                                     "use transport='httpx' (or 'auto')")
        if not aiohttp_installed():
            raise ConfigurationError("transport='aiohttp' needs the fast extra: pip install 'llm-connectors-sdk[fast]'")
        return "aiohttp"
    return "aiohttp" if library == "asyncio" and aiohttp_installed() and not env_proxies() else "httpx"


def make_engine(kind: str, timeouts: Timeouts, limits: PoolLimits, tls: TLSVerify | None = None) -> Engine:
    """A pooled engine of ``kind`` (``"httpx"`` or ``"aiohttp"``, from :func:`resolve`), verifying
    certificates as ``tls`` says (``None``: httpx's default trust store), whichever engine it is."""
    verify = True if tls is None else tls.value
    if kind == "aiohttp":
        from .aiohttp_engine import AiohttpEngine  # imports nothing of aiohttp until the first request

        return AiohttpEngine(limits.httpx_limits(), verify=verify)
    if env_proxies():  # httpx's client applies HTTP(S)_PROXY, ALL_PROXY and NO_PROXY; keep all of it
        from .settings import make_client

        return ClientEngine(make_client(timeouts, limits, verify=verify), owned=True, enforces_timeouts=True)
    return HttpcoreEngine(limits, verify=verify)
