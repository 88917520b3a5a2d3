"""The HTTP plumbing every connector shares: client factory, timeouts, bounded reads, headers."""

from __future__ import annotations

import os
import ssl
import sys
import threading
import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import httpx

from .._version import __version__
from ..errors import ConfigurationError, InsecureTLSWarning
from ..wire.framing import MAX_MESSAGE_BYTES

USER_AGENT = f"llm-connectors/{__version__}"
#: The default of ``max_body_bytes``: a decoded non-stream body, and one stream line or event
#: (RELIABILITY.md §6.6). One bound for both, so what parses whole parses streamed.
MAX_BODY_BYTES = MAX_MESSAGE_BYTES
#: The range ``max_body_bytes`` may be set in: room for a small answer, and still a bound.
BODY_BYTES_RANGE = (64 << 10, 1 << 30)
MAX_ERROR_BODY_BYTES = 64 << 10


#: The longest timeout accepted: a week. Anything longer is a mistake, and inf would disarm every deadline.
MAX_TIMEOUT = 7 * 24 * 3600.0

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
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < MAX_TIMEOUT:
                raise ConfigurationError(
                    f"Timeouts.{name} must be a positive number of seconds under {MAX_TIMEOUT:g} (a week), "
                    f"got {str(value)[:40]}"
                )

    @classmethod
    def coerce(cls, value: float | Timeouts | None) -> Timeouts:
        """Accept ``Timeouts``, a number of seconds (the overall deadline) or ``None`` (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Timeouts):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not 0 < value < MAX_TIMEOUT:  # before float(): a huge int does not fit one
                raise ConfigurationError(f"timeout must be a positive number of seconds under {MAX_TIMEOUT:g} "
                                         f"(a week), got {str(value)[:40]}")
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


class TLSVerify:
    """A connector's ``verify=`` setting, checked at construction (RELIABILITY.md §6.5).

    Attributes:
        value: What the engines are given: ``True`` (httpx's trust store, honouring
            ``SSL_CERT_FILE``/``SSL_CERT_DIR``), an ``ssl.SSLContext``, or ``False``.
        key: Its identity in the shared pool's key: connectors that trust differently never share
            connections (a connection verified against one CA must not serve a connector that
            trusts another, nor an unverified one serve a verifying one).
        pinned: The caller's ``SSLContext`` when ``key`` holds its ``id()``; the pool entry keeps
            it so that id cannot be reused by another context while the entry lives.
        verifies: Whether server certificates and host names are checked.
    """

    __slots__ = ("key", "pinned", "value", "verifies")

    def __init__(self, value: ssl.SSLContext | bool, key: Hashable, *, pinned: ssl.SSLContext | None = None,
                 verifies: bool = True) -> None:
        self.value = value
        self.key = key
        self.pinned = pinned
        self.verifies = verifies

    @classmethod
    def coerce(cls, verify: object, *, allow_unverified_tls: bool = False) -> TLSVerify:
        """Validate ``verify`` (``True``, a CA bundle path, an ``SSLContext``, or ``False``).

        Raises:
            ConfigurationError: a wrong type, a CA path that does not exist or holds no
                certificates, or verification turned off without ``allow_unverified_tls=True``.
        """
        if verify is True:
            return DEFAULT_TLS
        if verify is False:
            _require_opt_in("verify=False", allow_unverified_tls)
            return cls(False, "unverified", verifies=False)
        if isinstance(verify, ssl.SSLContext):
            # A context that skips the certificate or host name check is verify=False in disguise.
            verifies = verify.verify_mode != ssl.CERT_NONE and verify.check_hostname
            if not verifies:
                _require_opt_in("an ssl.SSLContext that does not check certificates and host names",
                                allow_unverified_tls)
            return cls(verify, ("context", id(verify)), pinned=verify, verifies=verifies)
        if isinstance(verify, (str, os.PathLike)):
            return cls._ca_bundle(verify)
        raise ConfigurationError(
            "verify must be True (the default trust store), the path of a CA bundle, or an ssl.SSLContext; "
            f"got {type(verify).__name__}")

    @classmethod
    def _ca_bundle(cls, verify: str | os.PathLike[Any]) -> TLSVerify:
        raw = os.fspath(verify)
        if not isinstance(raw, str) or not raw:
            raise ConfigurationError("verify must be the path of a CA bundle as text, like '/etc/ssl/my-ca.pem'")
        path = os.path.abspath(os.path.expanduser(raw))
        if not os.path.exists(path):
            raise ConfigurationError(
                f"verify={raw!r}: no CA bundle at {path}. Pass the path of a PEM file (or a directory of "
                "hashed certificates) holding the CA that signed the server's certificate, or an ssl.SSLContext")
        try:  # loaded now, so a bad file fails at construction rather than at the first request
            context = (ssl.create_default_context(capath=path) if os.path.isdir(path)
                       else ssl.create_default_context(cafile=path))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigurationError(
                f"verify={raw!r}: could not load CA certificates from {path} ({type(exc).__name__}); "
                "it must hold PEM certificates (-----BEGIN CERTIFICATE-----)") from None
        # Keyed by path: every connector trusting the same bundle shares one pool.
        return cls(context, ("ca", path))


DEFAULT_TLS = TLSVerify(True, "default")
_warned_unverified = False
_warn_lock = threading.Lock()


def _require_opt_in(what: str, allowed: bool) -> None:
    if not allowed:
        raise ConfigurationError(
            f"{what} turns TLS certificate verification off, so anyone on the network path could read the API "
            "key. To trust a private or self-signed CA, pass verify='/path/to/ca.pem' or an ssl.SSLContext; if "
            "you really mean to skip verification, also pass allow_unverified_tls=True")


def warn_unverified(provider: str) -> None:
    """Warn, once per process, that a connector was built without certificate verification."""
    global _warned_unverified
    with _warn_lock:
        if _warned_unverified:
            return
        _warned_unverified = True
    warnings.warn(f"TLS certificate verification is off for the {provider} connector (allow_unverified_tls=True): "
                  "its traffic, API key included, can be read or altered on the network path. Pass verify=<CA "
                  "bundle path or ssl.SSLContext> instead. Shown once per process.", InsecureTLSWarning,
                  stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this package, so the warning names the line that
    built the connector (through a subclass, ``get_connector`` or a kit alike)."""
    frame: FrameType | None = sys._getframe(2)  # the frame that called warn_unverified: level 2
    level = 2
    while frame is not None and level < 64 and str(frame.f_globals.get("__name__")).startswith("llm_connectors."):
        frame, level = frame.f_back, level + 1
    return level


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


def make_client(timeouts: Timeouts, limits: PoolLimits, transport: httpx.AsyncBaseTransport | None = None,
                *, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """A pooled client: keep-alive on, redirects off, TLS verified, never ``timeout=None``, no cookies.

    ``verify`` (``TLSVerify.value``) applies to the connections httpx makes itself, proxied ones
    included; a ``transport`` brings its own TLS settings.
    """
    client = httpx.AsyncClient(
        timeout=timeouts.httpx_timeout(),
        limits=limits.httpx_limits(),
        follow_redirects=False,
        transport=transport,
        verify=verify,
        headers={"user-agent": USER_AGENT},
    )
    client._cookies = _NoCookies()  # httpx wraps anything passed as cookies= in a plain Cookies
    return client


PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def env_proxies() -> bool:
    """Whether a proxy is configured in the environment (httpx then applies it, NO_PROXY included)."""
    return any(os.environ.get(name) for name in PROXY_VARS)


def join_url(base_url: str, path: str) -> str:
    if not path:
        return base_url
    if path.startswith(("http://", "https://")):
        return path
    return base_url.rstrip("/") + "/" + path.lstrip("/")
