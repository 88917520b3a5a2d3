"""How one connector reaches its provider: the HTTP settings, checked once at construction.

:meth:`HTTPConfig.build` takes the connector's keyword arguments about the connection (address,
timeouts, headers, TLS, engine, pool, redirects, payload logging) and refuses a bad one before
anything is sent; :class:`~.sender.HTTPSender` then works from the result and nothing else.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from .._secrets import check_headers
from ..errors import ConfigurationError
from .engine_choice import check_choice
from .settings import BODY_BYTES_RANGE, DEFAULT_TLS, MAX_BODY_BYTES, PoolLimits, Timeouts, TLSVerify
from .urls import check_base_url

__all__ = ["HTTPConfig"]


@dataclass(frozen=True)
class HTTPConfig:
    """The connection settings of one connector (see :class:`~llm_connectors.BaseConnector`'s arguments).

    Attributes:
        base_url: The checked API base URL.
        timeouts: Overall deadline, connect, read (idle), write and first-token timeouts.
        headers: Extra headers for every request (validated).
        tls: How server certificates are checked.
        engine: ``"httpx"``, ``"aiohttp"`` or ``"auto"`` for the shared pool.
        transport: A caller's ``httpx.AsyncBaseTransport`` for a client of this connector's own.
        client: A caller's ``httpx.AsyncClient``, used as it is and never closed by us.
        pool: Connection pool limits.
        follow_redirects: Follow redirects (credentials dropped cross-origin, https never downgraded).
        log_payloads: Log scrubbed request and response bodies at DEBUG.
        max_body_bytes: The largest decoded non-streaming body, and the largest stream line or
            event: one bound, so an answer that parses whole parses streamed too.
    """

    base_url: str
    timeouts: Timeouts
    headers: Mapping[str, str]
    tls: TLSVerify
    engine: str
    transport: httpx.AsyncBaseTransport | None
    client: httpx.AsyncClient | None
    pool: PoolLimits
    follow_redirects: bool
    log_payloads: bool
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def build(cls, *, provider: str, default_base_url: str, sends_credentials: bool, base_url: str | None = None,
              timeout: float | Timeouts | None = None, headers: Mapping[str, str] | None = None,
              http_client: httpx.AsyncClient | None = None,
              transport: str | httpx.AsyncBaseTransport | None = None, pool: PoolLimits | None = None,
              follow_redirects: bool = False, log_payloads: bool = False, allow_insecure_http: bool = False,
              allow_private_network: bool = False, verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
              allow_unverified_tls: bool = False, max_body_bytes: int | None = None) -> HTTPConfig:
        """Check every connection setting; raise :class:`ConfigurationError` for the first bad one."""
        checked_url = check_base_url(base_url or default_base_url, allow_insecure_http=allow_insecure_http,
                                     allow_private_network=allow_private_network, sends_credentials=sends_credentials)
        if headers is not None and not isinstance(headers, Mapping):
            raise ConfigurationError(f"headers must be a dict of header names to values, got {type(headers).__name__}",
                                     provider=provider)
        extra_headers = dict(headers or {})
        check_headers(extra_headers)
        flags = {"follow_redirects": follow_redirects, "log_payloads": log_payloads,
                 "allow_insecure_http": allow_insecure_http, "allow_private_network": allow_private_network,
                 "allow_unverified_tls": allow_unverified_tls}
        for name, flag in flags.items():
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{name} must be True or False, got {type(flag).__name__}", provider=provider)
        if pool is not None and not isinstance(pool, PoolLimits):
            raise ConfigurationError(f"pool must be lc.PoolLimits(...), got {type(pool).__name__}", provider=provider)
        if transport is not None and not isinstance(transport, (str, httpx.AsyncBaseTransport)):
            raise ConfigurationError(f"transport must be 'httpx', 'aiohttp', 'auto' or an httpx transport, got "
                                     f"{type(transport).__name__}", provider=provider)
        tls = TLSVerify.coerce(verify, allow_unverified_tls=allow_unverified_tls)
        if http_client is not None and tls is not DEFAULT_TLS:
            raise ConfigurationError("verify= configures the connector's own client; with http_client=, set it "
                                     "on your client instead: httpx.AsyncClient(verify=...)", provider=provider)
        own_transport = transport if isinstance(transport, httpx.AsyncBaseTransport) else None
        engine = check_choice(transport if isinstance(transport, str) or transport is None else "auto")
        return cls(base_url=checked_url, timeouts=Timeouts.coerce(timeout), headers=extra_headers, tls=tls,
                   engine=engine, transport=own_transport, client=http_client, pool=pool or PoolLimits(),
                   follow_redirects=bool(follow_redirects), log_payloads=bool(log_payloads),
                   max_body_bytes=_body_bound(max_body_bytes, provider))


def _body_bound(value: object, provider: str) -> int:
    """``max_body_bytes``: ``None`` for the default, else a whole number of bytes within ``BODY_BYTES_RANGE``."""
    if value is None:
        return MAX_BODY_BYTES
    low, high = BODY_BYTES_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"max_body_bytes must be a whole number of bytes from {low} to {high} "
                                 f"(default {MAX_BODY_BYTES}), got {str(value)[:40]}", provider=provider)
    return value

