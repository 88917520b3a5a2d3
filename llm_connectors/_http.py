"""The HTTP plumbing every connector shares: client factory, timeouts, bounded reads, headers."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._version import __version__
from .errors import ConfigurationError, ProtocolError

USER_AGENT = f"llm-connectors/{__version__}"
MAX_BODY_BYTES = 32 << 20  # decoded non-stream body (RELIABILITY.md §6.6)
MAX_ERROR_BODY_BYTES = 64 << 10


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Time limits for one call, in seconds. ``None`` never means "forever" here.

    Attributes:
        total: Overall deadline for a call, shared by retries, limiter waits and fallbacks.
        connect: Time to open a connection.
        read: Longest silence between two network reads (the stream idle timer).
        write: Time to send the request body.
        first_token: For streams, longest wait for the first content chunk (pings do not count);
            ``None`` leaves it to ``total``.
    """

    total: float = 600.0
    connect: float = 5.0
    read: float = 300.0
    write: float = 60.0
    first_token: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read", "write", "first_token"):
            value = getattr(self, name)
            if value is None and name == "first_token":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 \
                    or math.isinf(value):
                raise ConfigurationError(
                    f"Timeouts.{name} must be a positive number of seconds, got {value!r}"
                )

    @classmethod
    def coerce(cls, value: float | Timeouts | None) -> Timeouts:
        """Accept ``Timeouts``, a number of seconds (the overall deadline) or ``None`` (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Timeouts):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total = float(value)
            default = cls()
            return cls(total=total, connect=min(default.connect, total), read=min(default.read, total),
                       write=min(default.write, total))
        raise ConfigurationError(
            f"timeout must be a number of seconds or llm_connectors.Timeouts, got {type(value).__name__}"
        )

    def httpx_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.connect)


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """Connection pool size for one connector's HTTP client."""

    max_connections: int = 100
    max_keepalive_connections: int = 20
    keepalive_expiry: float = 30.0

    def httpx_limits(self) -> httpx.Limits:
        return httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_keepalive_connections,
            keepalive_expiry=self.keepalive_expiry,
        )


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing.

    Provider APIs authenticate with keys, not cookies; the ``Set-Cookie`` some send (CDN bot
    management) need not come back. A pooled client is shared by every connector to an
    endpoint, whatever their keys, so keeping cookies would carry one caller's cookies into
    another's requests; and parsing them costs about a tenth of a millisecond per response.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None

    def __bool__(self) -> bool:
        return False


def make_client(timeouts: Timeouts, limits: PoolLimits,
                transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """A pooled client: keep-alive on, redirects off, TLS verified, never ``timeout=None``, no cookies."""
    client = httpx.AsyncClient(
        timeout=timeouts.httpx_timeout(),
        limits=limits.httpx_limits(),
        follow_redirects=False,
        transport=transport,
        headers={"user-agent": USER_AGENT},
    )
    client._cookies = _NoCookies()  # httpx wraps anything passed as cookies= in a plain Cookies
    return client


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``retry-after``.

    ``retry-after`` may be a (possibly fractional) number of seconds or an HTTP date.
    Anything unparseable, negative, NaN or infinite gives ``None``; never raises.
    """
    try:
        value = headers.get("retry-after-ms")
        if value:
            ms = float(value)
            if math.isfinite(ms) and ms >= 0:
                return ms / 1000.0
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                return None
            seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
        if not math.isfinite(seconds):
            return None
        return max(0.0, seconds)
    except (ValueError, OverflowError, TypeError):
        return None


def should_retry_header(headers: Mapping[str, str]) -> bool | None:
    """The provider's explicit ``x-should-retry`` verdict, if it sent one."""
    value = headers.get("x-should-retry")
    if value == "true":
        return True
    if value == "false":
        return False
    return None


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """Read a response body, refusing to hold more than ``limit`` decoded bytes."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit \
            and "content-encoding" not in response.headers:
        raise ProtocolError(f"response body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(f"response body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def join_url(base_url: str, path: str) -> str:
    if not path:
        return base_url
    if path.startswith(("http://", "https://")):
        return path
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def check_base_url(url: str) -> str:
    """Validate a configured base URL; return it without a trailing slash."""
    if not isinstance(url, str):
        raise ConfigurationError(f"base_url must be a str, got {type(url).__name__}")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ConfigurationError(f"base_url {url!r} is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"base_url {url!r} must be an absolute http:// or https:// URL, like https://api.example.com/v1"
        )
    if parsed.userinfo:
        raise ConfigurationError("base_url must not contain a user name or password; use api_key")
    return url.rstrip("/")


def header_subset(headers: httpx.Headers, prefixes: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in headers.items() if k.lower().startswith(prefixes)}
