"""Process-wide HTTP engines, one per (event loop, provider, base URL, engine kind, TLS trust).

Connectors to the same endpoint share one engine (and so one connection pool), however many
chains, registries or ``get_connector`` calls create them. An engine is bound to the event loop
it was made on, so the loop is part of the key; connectors that verify certificates differently
(``verify=``) must never share connections, so the trust setting is part of it too. Reference
counts close an engine when its last connector closes.
"""

from __future__ import annotations

import threading
from typing import Any

from .._asynclib import current_loop_token
from .engine_choice import make_engine, resolve
from .engines import Engine
from .settings import DEFAULT_TLS, PoolLimits, Timeouts, TLSVerify


class _Entry:
    __slots__ = ("client", "loop", "pinned", "users")

    def __init__(self, client: Engine, users: int, loop: object, pinned: object = None) -> None:
        self.client = client
        self.users = users
        self.loop = loop  # held so an id() can never be reused by a new loop while the entry lives
        self.pinned = pinned  # the same for a caller's SSLContext, whose id() is in the key


_clients: dict[tuple[Any, ...], _Entry] = {}
_lock = threading.Lock()


def acquire(provider: str, base_url: str, timeouts: Timeouts, limits: PoolLimits,
            transport: str = "auto", tls: TLSVerify = DEFAULT_TLS) -> tuple[Engine, tuple[Any, ...]]:
    """The shared engine for this endpoint, engine kind, trust and loop; the caller must :func:`release` the key.

    The first connector's pool limits size the shared pool; timeouts are set per request.
    """
    loop = current_loop_token()
    kind = resolve(transport)
    key = (id(loop), provider, base_url, kind, tls.key)
    with _lock:
        entry = _clients.get(key)
        if entry is None or entry.client.is_closed or entry.loop is not loop or entry.pinned is not tls.pinned:
            entry = _clients[key] = _Entry(make_engine(kind, timeouts, limits, tls), 0, loop, tls.pinned)
        entry.users += 1
        return entry.client, key


async def release(key: tuple[Any, ...]) -> None:
    """Drop one user of a shared engine; close it when nobody uses it any more."""
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
    """How many shared engines are open (for tests and diagnostics)."""
    with _lock:
        return sum(1 for entry in _clients.values() if not entry.client.is_closed)
