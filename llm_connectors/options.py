"""The settings every connector takes beside its key, address, timeout and default models.

:class:`ConnectorOptions` types ``BaseConnector(**options)``. They fall in three groups, each
checked by the object it configures: :data:`HTTP_OPTIONS` by :meth:`.http.config.HTTPConfig.build`
(the connection), :data:`CALL_OPTIONS` by :meth:`.pipeline.CallPipeline.build` (policies,
cache, hooks) and :data:`REQUEST_OPTIONS` by the connector itself (how requests are prepared).
``get_connector`` reads the same table to know which settings a chain shares.
Each option is documented on :class:`~llm_connectors.BaseConnector`.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any, TypedDict

import httpx

from .hooks import Hooks
from .http.settings import PoolLimits

__all__ = ["CALL_OPTIONS", "HTTP_OPTIONS", "REQUEST_OPTIONS", "ConnectorOptions"]


class ConnectorOptions(TypedDict, total=False):
    """Keyword settings of :class:`~llm_connectors.BaseConnector` (all optional)."""

    # The connection (HTTPConfig).
    headers: Mapping[str, str] | None
    http_client: httpx.AsyncClient | None
    transport: str | httpx.AsyncBaseTransport | None
    pool: PoolLimits | None
    follow_redirects: bool
    log_payloads: bool
    allow_insecure_http: bool
    allow_private_network: bool
    verify: bool | str | os.PathLike[str] | ssl.SSLContext
    allow_unverified_tls: bool
    max_body_bytes: int | None
    # The call sequence (CallPipeline).
    retry: Any
    circuit_breaker: Any
    rate_limit: Any
    cache: Any
    shared_state: Any
    hooks: Hooks | None
    # The requests (BaseConnector.prepare_chat).
    drop_params: bool


CALL_OPTIONS = frozenset({"retry", "circuit_breaker", "rate_limit", "cache", "shared_state", "hooks"})
REQUEST_OPTIONS = frozenset({"drop_params"})
HTTP_OPTIONS = frozenset(ConnectorOptions.__annotations__) - CALL_OPTIONS - REQUEST_OPTIONS
