"""Process-wide HTTP clients, one per (event loop, provider, base URL).

Connectors to the same endpoint share one ``httpx.AsyncClient`` (and so one connection pool),
however many chains, registries or ``get_connector`` calls create them. A client is bound to
the event loop it was made on, so the loop is part of the key. Reference counts close a client
when its last connector closes.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

from ._http import PoolLimits, Timeouts, make_client
from ._transport import make_transport, resolve


class _Entry:
    __slots__ = ("client", "loop", "users")

    def __init__(self, client: httpx.AsyncClient, users: int, loop: object) -> None:
        self.client = client
        self.users = users
        self.loop = loop  # held so an id() can never be reused by a new loop while the entry lives


_clients: dict[tuple[Any, ...], _Entry] = {}
_lock = threading.Lock()


def current_loop_token() -> object:
    """An object identifying the running event loop (asyncio loop or trio run)."""
    import sniffio

    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        return trio.lowlevel.current_root_task()
    import asyncio

    return asyncio.get_running_loop()


def acquire(provider: str, base_url: str, timeouts: Timeouts, limits: PoolLimits,
            transport: str = "auto") -> tuple[httpx.AsyncClient, tuple[Any, ...]]:
    """The shared client for this endpoint, engine and loop; the caller must :func:`release` the key.

    The first connector's pool limits size the shared pool; timeouts are set per request.
    """
    loop = current_loop_token()
    kind = resolve(transport)
    key = (id(loop), provider, base_url, kind)
    with _lock:
        entry = _clients.get(key)
        if entry is None or entry.client.is_closed or entry.loop is not loop:
            engine = make_transport(kind, limits.httpx_limits())
            entry = _clients[key] = _Entry(make_client(timeouts, limits, engine), 0, loop)
        entry.users += 1
        return entry.client, key


async def release(key: tuple[Any, ...]) -> None:
    """Drop one user of a shared client; close it when nobody uses it any more."""
    with _lock:
        entry = _clients.get(key)
        if entry is None:
            return
        entry.users -= 1
        if entry.users > 0:
            return
        del _clients[key]
    await entry.client.aclose()


def open_clients() -> int:
    """How many shared clients are open (for tests and diagnostics)."""
    with _lock:
        return sum(1 for entry in _clients.values() if not entry.client.is_closed)
