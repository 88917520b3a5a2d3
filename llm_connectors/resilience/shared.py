"""Shared state in Redis: the connection, its failure behaviour, and the keys of each endpoint.

``shared_state="redis://host:6379/0"`` moves rate limits, circuit state and the response cache
into Redis (docs/redis.md). This module holds what the three have in common:

* :class:`SharedState`, the validated setting (the URL's password never appears in a repr, an
  error or a log line);
* :class:`RedisLink`, one per setting and process. Every call goes through the **synchronous**
  redis client in a worker thread, on asyncio and on trio alike: ``redis.asyncio`` is asyncio-
  only and its pools are bound to one event loop (the sync API runs a loop per thread, tests a
  loop per test), while the sync client is thread-safe, needs no closing per loop, and lets the
  synchronous callbacks (a stream ending, a breaker opening) hand writes to a background thread.
  Measured on loopback: 180 µs per script call through a thread against 85 µs with
  ``redis.asyncio``; noise next to a provider call, and status reads are cached anyway.
  Each call is bounded by ``timeout`` (socket timeouts plus a cancel scope that abandons the
  thread), so a dead or hung Redis costs a user call at most one timeout, once per backoff;
* the degraded mode: the first failure switches the link to local limits (``limit /
  processes``) and per-process breakers, logs **one** warning, then retries with backoff (0.1 s
  doubling to 1 s) on the next calls that need Redis. No user call ever fails because of Redis;
* :class:`Scope`, the keys of one provider endpoint and the status this process caches for
  ``refresh_interval`` (circuit phase, 429 cooldown, processes seen).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import math
import os
import queue
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._asynclib import current_loop_token
from ..errors import ConfigurationError
from . import redis_scripts

if TYPE_CHECKING:
    import redis

__all__ = ["RedisLink", "Scope", "SharedState", "SharedUnavailable", "coerce_shared_state", "link_for",
           "mask_url", "reset_links", "scope_for"]

logger = logging.getLogger("llm_connectors.shared")

T = TypeVar("T")

_SCHEMES = ("redis", "rediss", "unix")
_OPTIONS = ("expected_processes", "key_prefix", "timeout", "refresh_interval", "window_margin")
_PREFIX = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
BACKOFF_FIRST = 0.1  # seconds before the first reconnect attempt
BACKOFF_MAX = 1.0  # so shared accounting resumes within ~1 s of Redis returning (under traffic)
WARN_EVERY = 600.0  # a flapping Redis warns at most once per 10 minutes; the rest is DEBUG
WRITE_QUEUE = 10_000  # fire-and-forget writes waiting for the writer thread; more are dropped
THREADS_PER_LOOP = 8  # worker threads one event loop may hold in Redis calls at once
PROCESS_WINDOW_MS = 60_000  # a process counts as present for a minute after its last call


def mask_url(url: str) -> str:
    """``url`` with its password (or a lone user name, which may be one) replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return "<unparseable redis URL>"
    netloc = parts.netloc
    if user is not None or password is not None:
        host = netloc.rpartition("@")[2]
        shown = f"{user}:***" if password is not None and user else "***"
        netloc = f"{shown}@{host}"
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(name.lower() in ("password", "username") for name, _ in query):
        query = [(n, "***" if n.lower() in ("password", "username") else v) for n, v in query]
    # Built by hand: urlunsplit would turn unix:///path into unix:/path.
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")


def _with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    return url.partition("?")[0] + (f"?{urllib.parse.urlencode(pairs)}" if pairs else "")


def _secrets_of(url: str) -> list[str]:
    try:
        parts = urllib.parse.urlsplit(url)
        found = [parts.password, parts.username]
        found += [v for n, v in urllib.parse.parse_qsl(parts.query) if n.lower() in ("password", "username")]
    except ValueError:
        return []
    return [s for s in found if s]


@dataclass(frozen=True, slots=True, repr=False)
class SharedState:
    """Where rate limits, circuit state and the cache are shared, and how to behave without it.

    Pass it (or just the URL) as ``shared_state=``; the options can also ride in the URL's query,
    ``redis://host:6379/0?expected_processes=8&key_prefix=billing``.

    Attributes:
        url: ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL, credentials included. Never
            shown: reprs, errors and logs use :attr:`masked_url`.
        expected_processes: How many processes share the limits. While Redis is unreachable each
            process allows ``limit / N``, where N is the larger of this and the number of
            processes seen in Redis during the last minute. ``None``: only what was seen.
        key_prefix: First part of every key (letters, digits, ``_.:-``), to share one Redis
            between applications or environments.
        timeout: Seconds any one Redis operation may take before the call goes on without it.
        refresh_interval: Seconds this process reuses the circuit state and 429 cooldown it read,
            so a circuit opened elsewhere stops this process within about this long (plus one
            round trip). 0 reads Redis on every call.
        window_margin: Seconds added to each minute of the shared limits: the fleet paces at
            ``limit`` per ``60 + margin`` seconds. The pacing is exact on the Redis clock, but
            the provider counts arrivals, and from many hosts the delay from admission to arrival
            varies (a cold connection, a busy host); the margin absorbs that, at the cost of
            ``margin / 60`` of the limit. 0: pace at exactly the limit.
    """

    url: str
    expected_processes: int | None = None
    key_prefix: str = "llmc"
    timeout: float = 0.25
    refresh_interval: float = 0.5
    window_margin: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url:
            raise ConfigurationError("shared_state needs a redis URL like 'redis://host:6379/0'")
        masked = mask_url(self.url)
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in _SCHEMES:
            raise ConfigurationError(f"shared_state URL {masked!r} must start with redis://, rediss:// or unix://")
        if parts.scheme != "unix" and not parts.hostname:
            raise ConfigurationError(f"shared_state URL {masked!r} has no host")
        if self.expected_processes is not None and (
                isinstance(self.expected_processes, bool) or not isinstance(self.expected_processes, int)
                or not 1 <= self.expected_processes <= 100_000):
            raise ConfigurationError(
                f"SharedState.expected_processes must be an integer from 1 to 100000, got {self.expected_processes!r}")
        if not isinstance(self.key_prefix, str) or not _PREFIX.fullmatch(self.key_prefix):
            raise ConfigurationError(f"SharedState.key_prefix must be 1-64 characters from A-Z a-z 0-9 _ . : -, "
                                     f"got {self.key_prefix!r}")
        for name, low, high in (("timeout", 0.001, 30.0), ("refresh_interval", 0.0, 60.0),
                                ("window_margin", 0.0, 10.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ConfigurationError(f"SharedState.{name} must be a number of seconds from {low} to {high}, "
                                         f"got {value!r}")
        try:
            import redis.connection
        except ImportError:
            raise ConfigurationError(
                "shared_state needs the redis client: pip install 'llm-connectors-sdk[redis]'") from None
        try:
            redis.connection.parse_url(self.redis_url)  # type: ignore[no-untyped-call]
        except (ValueError, TypeError) as exc:
            # redis-py's message can quote the URL: say only what kind of problem it is.
            raise ConfigurationError(f"shared_state URL {masked!r} is not a valid redis URL "
                                     f"({type(exc).__name__})") from None

    @classmethod
    def from_url(cls, url: str) -> SharedState:
        """Read the options this class owns from the URL's query; the rest is redis-py's."""
        if not isinstance(url, str):
            raise ConfigurationError(f"shared_state must be a redis URL, a SharedState or a dict; "
                                     f"got {type(url).__name__}")
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError:
            raise ConfigurationError(f"shared_state URL {mask_url(url)!r} cannot be parsed") from None
        ours: dict[str, Any] = {}
        rest = []
        for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if name not in _OPTIONS:
                rest.append((name, value))
                continue
            try:
                ours[name] = (value if name == "key_prefix" else
                              int(value) if name == "expected_processes" else float(value))
            except ValueError:
                raise ConfigurationError(f"shared_state URL {mask_url(url)!r}: {name}={value!r} is not a "
                                         "number") from None
        return cls(_with_query(url, rest), **ours)

    @property
    def redis_url(self) -> str:
        """The URL as redis-py reads it (our own query options removed)."""
        query = urllib.parse.urlsplit(self.url).query
        return _with_query(self.url, [(n, v) for n, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
                                      if n not in _OPTIONS])

    @property
    def masked_url(self) -> str:
        """The URL with its password replaced by ``***``: safe to log."""
        return mask_url(self.url)

    def __repr__(self) -> str:
        return (f"SharedState({self.masked_url!r}, expected_processes={self.expected_processes!r}, "
                f"key_prefix={self.key_prefix!r})")

    __str__ = __repr__


def coerce_shared_state(value: Any) -> SharedState | None:
    """A :class:`SharedState` from a URL, an instance, a dict of its fields, or ``None``/``False`` (off)."""
    if value is None or value is False:
        return None
    if isinstance(value, SharedState):
        return value
    if isinstance(value, str):
        return SharedState.from_url(value)
    if isinstance(value, Mapping):
        known = {"url", *_OPTIONS}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigurationError(f"unknown shared_state setting(s) {unknown}; known: {sorted(known)}")
        if "url" not in value:
            raise ConfigurationError("shared_state needs 'url': a redis URL like 'redis://host:6379/0'")
        base = SharedState.from_url(value["url"])
        options = {name: getattr(base, name) for name in _OPTIONS}
        options.update({k: v for k, v in value.items() if k != "url"})
        return SharedState(base.url, **options)
    raise ConfigurationError(f"shared_state must be a redis URL like 'redis://host:6379/0', a SharedState or a "
                             f"dict; got {type(value).__name__}")


class SharedUnavailable(Exception):
    """Redis could not be used for this operation; the caller goes on with local state."""


class RedisLink:
    """One :class:`SharedState`'s connection in this process, and whether Redis is usable now.

    Args:
        config: The setting.

    Attributes:
        outages: How many times the link went from usable to degraded.
        recoveries: How many times it came back.
        dropped: Fire-and-forget writes dropped (degraded, or the queue was full).
    """

    def __init__(self, config: SharedState) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.config = config
        self.pid = os.getpid()
        #: Identifies this process in Redis (the heartbeat that sizes degraded-mode shares).
        import uuid  # here, not at import: shared state is opt-in

        self.process_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._ids = itertools.count(1)
        self.client: redis.Redis = redis.Redis.from_url(
            config.redis_url, socket_timeout=config.timeout, socket_connect_timeout=config.timeout,
            retry=Retry(NoBackoff(), 0),  # never repeat a script: an ACQUIRE retried after a timeout admits twice
            health_check_interval=0, client_name="llm-connectors")
        self.scripts = {name: self.client.register_script(getattr(redis_scripts, name))
                        for name in redis_scripts.__all__}
        self._lock = threading.Lock()
        self._healthy = True  # optimistic: the first operation finds out
        self._probing = False
        self._retry_at = 0.0
        self._backoff = BACKOFF_FIRST
        self._warned_at: float | None = None
        self._down_since: float | None = None
        self.outages = 0
        self.recoveries = 0
        self.dropped = 0
        self._queue: queue.Queue[Callable[[], object] | None] = queue.Queue(WRITE_QUEUE)
        self._writer: threading.Thread | None = None
        self._closed = False
        self._secrets = _secrets_of(config.url)
        # The writer is a daemon thread; without this a process that exits right after a 429 or a
        # circuit opening would take the news with it.
        atexit.register(self._flush_at_exit)

    def new_id(self) -> str:
        """A member id unique across every process (a call's admission, a probe's lease)."""
        return f"{self.process_id}-{next(self._ids)}"

    @property
    def healthy(self) -> bool:
        """Whether shared accounting is in use (``False``: degraded to local state)."""
        return self._healthy

    def script(self, name: str, keys: list[str], args: list[Any]) -> Callable[[], Any]:
        """An operation running one of :mod:`redis_scripts` (for :meth:`run` or :meth:`fire`)."""
        script = self.scripts[name]
        return lambda: script(keys=keys, args=args)

    # -- running operations --------------------------------------------------------------------

    async def run(self, op: Callable[[], T]) -> T:
        """Run ``op`` (a blocking redis call) in a worker thread, within ``timeout``.

        Raises:
            SharedUnavailable: Redis is degraded and not due for a retry, or this call failed
                (then the link is degraded). Cancellation propagates unchanged.
        """
        probe = self._admit()
        try:
            with anyio.move_on_after(self.config.timeout) as scope:
                # abandon_on_cancel: a hung Redis must not hold the caller; the thread ends at
                # its socket timeout and its late result is dropped.
                result = await anyio.to_thread.run_sync(op, limiter=_thread_limiter(), abandon_on_cancel=True)
            if scope.cancelled_caught:
                raise TimeoutError(f"no answer within {self.config.timeout} s")
        except Exception as exc:
            self._failed(exc, probe)
            raise SharedUnavailable(self._describe(exc)) from None
        except BaseException:
            if probe:
                with self._lock:
                    self._probing = False  # cancelled: proves nothing; the next call may try
            raise
        self._succeeded(probe)
        return result

    def fire(self, op: Callable[[], object]) -> None:
        """Queue a write that nobody waits for (reconcile, refund, cooldown, circuit change).

        Dropped while degraded: these are best effort, and the state they would correct is
        rebuilt once Redis is back (buckets refill, circuits reopen on failures).
        """
        if not self._healthy:
            self.dropped += 1
            return
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_loop, name="llm-connectors-redis",
                                                    daemon=True)
                    self._writer.start()
        try:
            self._queue.put_nowait(op)
        except queue.Full:
            self.dropped += 1

    def _write_loop(self) -> None:
        while True:
            op = self._queue.get()
            try:
                if op is None:
                    return
                if not self._healthy:
                    self.dropped += 1
                    continue
                try:
                    op()
                except Exception as exc:
                    self._failed(exc, probe=False)
            finally:
                self._queue.task_done()

    def _flush_at_exit(self) -> None:
        if self._writer is not None and self._healthy:
            self.flush(timeout=max(1.0, 4 * self.config.timeout))

    def close(self) -> None:
        """Stop the writer thread and close the connections (tests; ``reset_shared_state``)."""
        atexit.unregister(self._flush_at_exit)
        self._closed = True  # threads a hung Redis left behind must not report on a link nobody uses
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(queue.Full):  # a wedged writer is a daemon thread: let it be
                self._queue.put(None, timeout=1.0)
            writer.join(2 * self.config.timeout + 1.0)
        self.client.close()

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (blocking, at most ``timeout``) until the queued writes are done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    # -- health --------------------------------------------------------------------------------

    def available(self) -> bool:
        """Whether a Redis call would be attempted now (healthy, or due for a reconnect try)."""
        return self._healthy or (not self._probing and time.monotonic() >= self._retry_at)

    def _admit(self) -> bool:
        """Let a call through; while degraded, one at a time and only after the backoff."""
        with self._lock:
            if self._healthy:
                return False
            if self._probing or time.monotonic() < self._retry_at:
                raise SharedUnavailable("redis is unavailable; using local state")
            self._probing = True
            return True

    def _failed(self, exc: BaseException, probe: bool) -> None:
        now = time.monotonic()
        with self._lock:
            if self._closed:
                return
            first = self._healthy
            if not first and not probe:
                return  # calls that were in flight when it broke: already degraded
            self._healthy = False
            self._probing = False
            if first:
                self.outages += 1
                self._down_since = now
                self._backoff = BACKOFF_FIRST
            else:
                self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            self._retry_at = now + self._backoff
            warn = first and (self._warned_at is None or now - self._warned_at >= WARN_EVERY)
            if warn:
                self._warned_at = now
        if first:
            # Pooled sockets to a Redis that died are useless: the reconnect try should get a fresh one.
            with contextlib.suppress(Exception):
                self.client.connection_pool.disconnect()
        if warn:
            logger.warning(
                "shared state at %s is unavailable (%s); using local limits (each limit divided by the number "
                "of processes) and per-process circuit breakers until it returns; calls go on",
                self.config.masked_url, self._describe(exc))
        else:
            logger.debug("shared state at %s still unavailable (%s); next try in %.1f s",
                         self.config.masked_url, self._describe(exc), self._backoff)

    def _succeeded(self, probe: bool) -> None:
        with self._lock:
            if self._healthy or not probe:
                return  # only the reconnect try ends an outage, not a call that was in flight when it began
            self._healthy = True
            self._probing = False
            self.recoveries += 1
            down = time.monotonic() - (self._down_since or time.monotonic())
        logger.info("shared state at %s is reachable again after %.1f s; shared accounting resumed",
                    self.config.masked_url, down)

    def _describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}"[:300]
        for secret in self._secrets:  # redis errors quote hosts, not passwords; be sure anyway
            text = text.replace(secret, "***")
        return text

    def snapshot(self) -> dict[str, Any]:
        return {"url": self.config.masked_url, "mode": "shared" if self._healthy else "degraded",
                "outages": self.outages, "recoveries": self.recoveries}


# -- per endpoint -------------------------------------------------------------------------------

CLOSED, OPEN, HALF_OPEN, PROBING = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Status:
    """What this process last read of an endpoint's shared state (times in ``time.monotonic``)."""

    phase: int
    until: float  # OPEN: when the open period ends; PROBING: when the probe's lease ends
    cooldown_until: float
    read_at: float


class Scope:
    """The Redis keys of one provider endpoint, and the status cached for ``refresh_interval``.

    Every key of an endpoint carries the same ``{hash tag}``, so the scripts that touch several
    of them stay within one slot.
    """

    def __init__(self, link: RedisLink, provider: str, base_url: str) -> None:
        self.link = link
        import hashlib

        endpoint = hashlib.sha256(base_url.encode()).hexdigest()[:12]  # no URL (or its secrets) in key names
        base = f"{link.config.key_prefix}:{{{provider}:{endpoint}}}"
        self.requests = f"{base}:rl:req:tat"  # GCRA buckets (strings: when each is full again)
        self.tokens = f"{base}:rl:tok:tat"
        self.request_pace = f"{base}:rl:req:pace"  # the provider's slower pace, while it lasts
        self.token_pace = f"{base}:rl:tok:pace"
        self.cooldown = f"{base}:rl:cooldown"
        self.circuit = f"{base}:cb"
        self.probe = f"{base}:cb:probe"
        self.processes = f"{base}:procs"
        #: Processes that used this endpoint through Redis in the last minute (this one included).
        self.processes_seen = 1
        self._status: Status | None = None
        self._refreshing = False
        self._lock = threading.Lock()

    def share(self) -> int:
        """How many processes a limit is divided among while Redis is unavailable."""
        return max(self.link.config.expected_processes or 1, self.processes_seen, 1)

    async def status(self) -> Status | None:
        """The endpoint's circuit phase and cooldown, at most ``refresh_interval`` old.

        ``None`` when Redis is unavailable: the caller goes on with local state only.
        """
        now = time.monotonic()
        with self._lock:
            cached = self._status
            if cached is not None and (now - cached.read_at < self.link.config.refresh_interval
                                       or self._refreshing):
                return cached if self.link.healthy else None
            self._refreshing = True
        try:
            reply = await self.link.run(self.link.script(
                "STATUS", [self.circuit, self.probe, self.cooldown, self.processes], [self.link.process_id]))
        except SharedUnavailable:
            return None
        finally:
            self._refreshing = False
        phase, ms, cooldown_ms, processes = int(reply[0]), float(reply[1]), int(reply[2]), int(reply[3])
        self.processes_seen = max(1, processes)
        return self.note(phase, ms, cooldown_ms)

    def note(self, phase: int, ms: float, cooldown_ms: float | None = None) -> Status:
        """Cache a phase read now (by the status read, or by an election)."""
        now = time.monotonic()
        previous = self._status
        cooldown_until = (now + cooldown_ms / 1000 if cooldown_ms is not None
                          else previous.cooldown_until if previous is not None else 0.0)
        status = self._status = Status(phase, now + ms / 1000, cooldown_until, now)
        return status

    def forget(self) -> None:
        """Drop the cached status (after this process changed the circuit)."""
        self._status = None

    def publish_cooldown(self, seconds: float) -> None:
        """Block the endpoint for every process (fire-and-forget)."""
        if seconds > 0 and math.isfinite(seconds):
            self.link.fire(self.link.script("COOLDOWN", [self.cooldown], [max(1, math.ceil(seconds * 1000))]))


# -- registries ---------------------------------------------------------------------------------

_lock = threading.Lock()
_links: dict[SharedState, RedisLink] = {}
_scopes: dict[tuple[SharedState, str, str], Scope] = {}
_limiters: dict[int, tuple[object, anyio.CapacityLimiter]] = {}


def link_for(config: SharedState) -> RedisLink:
    """This process's link for ``config`` (a new one after a fork: sockets and threads do not survive it)."""
    with _lock:
        link = _links.get(config)
        if link is None or link.pid != os.getpid():
            link = _links[config] = RedisLink(config)
            for key in [k for k in _scopes if k[0] == config]:
                del _scopes[key]
        return link


def scope_for(config: SharedState, provider: str, base_url: str) -> Scope:
    """The process-wide :class:`Scope` of one endpoint."""
    link = link_for(config)
    with _lock:
        scope = _scopes.get((config, provider, base_url))
        if scope is None or scope.link is not link:
            scope = _scopes[(config, provider, base_url)] = Scope(link, provider, base_url)
        return scope


def _thread_limiter() -> anyio.CapacityLimiter:
    # Per event loop (anyio's limiter is loop-bound); bounds the threads a dead Redis can hold.
    loop = current_loop_token()
    with _lock:
        found = _limiters.get(id(loop))
        if found is None or found[0] is not loop:
            found = _limiters[id(loop)] = (loop, anyio.CapacityLimiter(THREADS_PER_LOOP))
        return found[1]


def reset_links() -> None:
    """Close every link and forget every scope (tests; ``reset_shared_state``)."""
    with _lock:
        links = list(_links.values())
        _links.clear()
        _scopes.clear()
        _limiters.clear()
    for link in links:
        link.close()
