"""Response cache: cachetools storage behind our own async single-flight layer.

cachetools has no coroutine support (``@cached`` on an ``async def`` caches the coroutine
object), so it only stores values here; the waiting is ours. Concurrent identical calls share
one upstream call. Errors are never stored, nor are answers cut short (``length``/``error``
finish reasons): only complete non-streaming chat answers and embeddings.

With ``shared_state`` the answers live in Redis instead (JSON with a TTL, see
:mod:`.cache_codec`), so one process's answer serves the others; single-flight stays per event
loop. While Redis is unavailable the local store takes over.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._asynclib import current_loop_token
from ..errors import ConfigurationError
from ..types import ChatResponse, EmbeddingResponse
from . import cache_codec

if TYPE_CHECKING:
    from cachetools import TTLCache

    from .shared import RedisLink, SharedState

__all__ = ["CacheConfig", "ResponseCache", "SharedCacheStore", "cache_key", "reset_caches", "shared_cache"]

logger = logging.getLogger("llm_connectors.cache")

R = TypeVar("R")
_UNCACHEABLE_FINISH = frozenset({"length", "error"})


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """An opt-in response cache.

    Attributes:
        maxsize: Most entries kept (least recently used go first).
        ttl: Seconds an answer stays valid.
        models_ttl: Seconds a provider's model list stays valid.
    """

    maxsize: int = 1024
    ttl: float = 300.0
    models_ttl: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.maxsize, bool) or not isinstance(self.maxsize, int) or self.maxsize < 1:
            raise ConfigurationError(f"CacheConfig.maxsize must be an integer >= 1, got {self.maxsize!r}")
        for name in ("ttl", "models_ttl"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigurationError(f"CacheConfig.{name} must be a positive number of seconds, got {value!r}")


def cache_key(*, provider: str, base_url: str, credential: str | None, path: str, body: Any) -> str:
    """A digest of everything that determines the answer. The credential is a fingerprint
    (an HMAC of the key), so answers never cross tenants and no key material is in the key."""
    canonical = json.dumps({"p": provider, "u": base_url, "c": credential, "path": path, "b": body},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    import hashlib  # with the first cached call: hashlib loads OpenSSL, which a plain import need not

    return hashlib.sha256(canonical.encode()).hexdigest()


def cacheable(result: object) -> bool:
    if isinstance(result, ChatResponse):
        return result.finish_reason not in _UNCACHEABLE_FINISH
    return isinstance(result, (EmbeddingResponse, list))


@dataclass
class _Flight:
    done: anyio.Event
    result: Any = None
    error: Exception | None = None
    abandoned: bool = False  # the leader was cancelled: followers must try themselves


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    shared: int = 0  # calls answered by another caller's in-flight request


class SharedCacheStore:
    """Cached answers in Redis: ``{key_prefix}:cache:{digest}`` (and ``:models:``), JSON, with a TTL."""

    def __init__(self, link: RedisLink, config: CacheConfig) -> None:
        self.link = link
        self.config = config

    def _name(self, key: str, models: bool) -> str:
        return f"{self.link.config.key_prefix}:{'models' if models else 'cache'}:{key}"

    async def get(self, key: str, *, models: bool = False) -> Any:
        """The stored value, or ``None``. Raises :class:`SharedUnavailable` when Redis is away."""
        name = self._name(key, models)
        client = self.link.client
        blob = await self.link.run(lambda: client.get(name))
        if blob is None:
            return None
        value = cache_codec.decode(blob) if isinstance(blob, bytes) else None
        if value is None:
            logger.debug("cache entry %s is not readable by this version; treated as a miss", key[:12])
        return value

    def put(self, key: str, value: object, *, models: bool = False) -> bool:
        """Store (fire-and-forget); ``False`` when the value cannot be shared (too big, not JSON)."""
        blob = cache_codec.encode(value)  # encoded now: the caller may change its copy afterwards
        if blob is None:
            return False
        name = self._name(key, models)
        ttl_ms = max(1, round((self.config.models_ttl if models else self.config.ttl) * 1000))
        client = self.link.client
        self.link.fire(lambda: client.set(name, blob, px=ttl_ms))
        return True


class ResponseCache:
    """One process-wide store (per :class:`CacheConfig`), with per-event-loop single-flight.

    Args:
        config: Size and TTLs.
        timer: Clock of the local store (tests).
        shared: Keep answers in Redis (falls back to the local store while Redis is away).
    """

    def __init__(self, config: CacheConfig, timer: Callable[[], float] = time.monotonic,
                 shared: SharedCacheStore | None = None) -> None:
        self.config = config
        self.shared = shared
        from cachetools import TTLCache  # with the first cache, not at import

        self._answers: TTLCache[str, Any] = TTLCache(config.maxsize, config.ttl, timer=timer)
        self._models: TTLCache[str, Any] = TTLCache(256, config.models_ttl, timer=timer)
        self._lock = threading.Lock()  # cachetools is not thread-safe (the sync API has threads)
        self._flights: dict[tuple[int, str], _Flight] = {}
        self.stats = CacheStats()

    def _get(self, store: TTLCache[str, Any], key: str) -> Any:
        with self._lock:
            return store.get(key)

    def _put(self, store: TTLCache[str, Any], key: str, value: Any) -> None:
        with self._lock:
            store[key] = value

    async def _lookup(self, store: TTLCache[str, Any], key: str, models: bool) -> Any:
        shared = self.shared
        if shared is not None and shared.link.available():
            from .shared import SharedUnavailable

            try:
                return await shared.get(key, models=models)  # a fresh object: no copy needed
            except SharedUnavailable:
                pass  # degraded: the local store serves until Redis returns
        hit = self._get(store, key)
        return copy.copy(hit) if hit is not None else None

    def _store(self, store: TTLCache[str, Any], key: str, value: Any, models: bool) -> None:
        shared = self.shared
        if shared is not None and shared.link.healthy and shared.put(key, value, models=models):
            return
        self._put(store, key, value)

    async def get_or_call(self, key: str, call: Callable[[], Awaitable[R]], *, models: bool = False) -> R:
        """The cached answer for ``key``, or the result of ``call()`` shared with concurrent callers."""
        store = self._models if models else self._answers
        for _ in range(100):  # bounded: each turn either answers or follows a live leader
            hit = await self._lookup(store, key, models)
            if hit is not None:
                self.stats.hits += 1
                return hit  # type: ignore[no-any-return]
            flight_key = (id(current_loop_token()), key)
            flight = self._flights.get(flight_key)
            if flight is not None:
                await flight.done.wait()
                if flight.abandoned:
                    continue
                self.stats.shared += 1
                if flight.error is not None:
                    raise flight.error
                return copy.copy(flight.result)  # type: ignore[no-any-return]
            flight = self._flights[flight_key] = _Flight(anyio.Event())
            self.stats.misses += 1
            try:
                result = await call()
            except Exception as exc:
                flight.error = exc
                raise
            except BaseException:
                flight.abandoned = True
                raise
            finally:
                del self._flights[flight_key]
                flight.done.set()
            flight.result = result
            if cacheable(result):
                self._store(store, key, result, models)
            return result
        raise RuntimeError("cache single-flight did not settle")  # pragma: no cover

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._models.clear()

    def snapshot(self) -> Mapping[str, int]:
        with self._lock:
            size = len(self._answers)
        return {"hits": self.stats.hits, "misses": self.stats.misses, "shared": self.stats.shared,
                "entries": size}


_caches: dict[tuple[CacheConfig, SharedState | None], ResponseCache] = {}
_caches_lock = threading.Lock()


def shared_cache(value: Any, shared_state: SharedState | None = None) -> ResponseCache | None:
    """The process-wide cache for a ``cache=`` setting (a config, a dict, ``True``), or ``None``.

    With ``shared_state`` its answers are kept in that Redis.
    """
    if value is None or value is False:
        return None
    if value is True:
        config = CacheConfig()
    elif isinstance(value, CacheConfig):
        config = value
    elif isinstance(value, Mapping):
        unknown = sorted(set(value) - {"maxsize", "ttl", "models_ttl"})
        if unknown:
            raise ConfigurationError(f"unknown cache setting(s) {unknown}; known: maxsize, ttl, models_ttl")
        config = CacheConfig(**value)
    else:
        raise ConfigurationError(f"cache must be a CacheConfig, a dict of its fields, True or False; "
                                 f"got {type(value).__name__}")
    link = None
    if shared_state is not None:
        from .shared import link_for

        link = link_for(shared_state)
    with _caches_lock:
        cache = _caches.get((config, shared_state))
        if cache is None or (cache.shared is not None and cache.shared.link is not link):
            store = SharedCacheStore(link, config) if link is not None else None
            cache = _caches[(config, shared_state)] = ResponseCache(config, shared=store)
        return cache


def reset_caches() -> None:
    """Drop every shared cache (tests)."""
    with _caches_lock:
        _caches.clear()
