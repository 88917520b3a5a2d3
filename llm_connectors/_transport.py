"""Which HTTP engine a connector's client runs on: httpx's own pool, or aiohttp underneath httpx.

The rest of the SDK always speaks httpx's API. Under asyncio, when the optional ``fast`` extra
(``httpx-aiohttp``) is installed, an aiohttp-backed transport removes httpx's connection pool
from the hot path; under trio only httpx's own transport can run.
"""

from __future__ import annotations

import importlib.util

import httpx
import sniffio

from .errors import ConfigurationError

__all__ = ["TRANSPORTS", "check_choice", "make_transport", "resolve"]

TRANSPORTS = ("auto", "httpx", "aiohttp")


def check_choice(choice: str | None) -> str:
    """Validate a ``transport=`` argument at construction time."""
    if choice is None:
        return "auto"
    if choice not in TRANSPORTS:
        raise ConfigurationError(f"transport must be one of {', '.join(TRANSPORTS)} or an httpx transport, "
                                 f"got {choice!r}")
    return choice


def _aiohttp_installed() -> bool:
    return importlib.util.find_spec("httpx_aiohttp") is not None


def resolve(choice: str) -> str:
    """The engine to use now, in the running event loop: ``"httpx"`` or ``"aiohttp"``."""
    library = sniffio.current_async_library()
    if choice == "httpx":
        return "httpx"
    if choice == "aiohttp":
        if library != "asyncio":
            raise ConfigurationError(f"transport='aiohttp' needs asyncio, but this code runs on {library}; "
                                     "use transport='httpx'")
        if not _aiohttp_installed():
            raise ConfigurationError("transport='aiohttp' needs the fast extra: pip install 'llm-connectors[fast]'")
        return "aiohttp"
    return "aiohttp" if library == "asyncio" and _aiohttp_installed() else "httpx"


def make_transport(kind: str, limits: httpx.Limits) -> httpx.AsyncBaseTransport | None:
    """The transport for ``kind`` (``None``: httpx's default)."""
    if kind != "aiohttp":
        return None
    from httpx_aiohttp import AiohttpTransport

    transport: httpx.AsyncBaseTransport = AiohttpTransport(limits=limits)
    return transport
